"""MultiCritique's reply readers: critique units, meta-critique verdicts, revisions, comparisons.

The prompts are in `filters.multicritique`. Parsing is lenient like every judge's
(`filters.judge_io.find_object`): the first JSON or Python-style object with the key wins; a
critique cut off inside a unit keeps the units before it; "Flaw: ... Severity: ... Suggestion: ..."
lines are read too. A reply that cannot be read gives a reason instead of a value.

Not handled here: hedged free-text verdicts beyond a few key words, and retrying unparseable
replies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from filters.judge_io import EMPTY_REPLY, UNPARSEABLE, find_object

SEVERITIES = ("minor", "major", "critical")  # ascending
DEFAULT_SEVERITY = "major"  # a flaw the critic did not grade is taken as worth fixing
MAX_UNITS = 3  # per critic: bounds the meta-critique calls and keeps critiques to real flaws


def severity(value: Any) -> str:
    """One of SEVERITIES: 'Critical.' -> 'critical'; unknown or missing -> 'major'."""
    text = value.strip().strip(".*").lower() if isinstance(value, str) else ""
    return text if text in SEVERITIES else DEFAULT_SEVERITY


def _unit(item: Any) -> dict[str, str] | None:
    """A clean unit, or None without a flaw: {'flaw': ' x '} -> {'flaw': 'x', 'severity': ...}."""
    flaw = item.get("flaw") if isinstance(item, dict) else None
    if not isinstance(flaw, str) or not flaw.strip():
        return None
    fix = item.get("suggestion")
    fix = fix.strip() if isinstance(fix, str) else ""
    return {
        "flaw": flaw.strip(),
        "severity": severity(item.get("severity")),
        "suggestion": fix,
    }


def _items(text: str) -> Any:
    """The "units" of the first object with one, else the first non-empty list of objects."""
    obj = find_object(text, "units")
    if obj is not None:
        return obj["units"]
    start = text.find("[")
    while start != -1:  # '[]' alone is no critique: it could be "[]" inside a cut-off flaw
        try:
            value = json.JSONDecoder().raw_decode(text, start)[0]
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return value
        start = text.find("[", start + 1)
    return None


# "- Flaw: x. Severity: major. Suggestion: y." (one line or three); a label opens the line, so
# "No flaw: ..." is prose.
_LABELLED_RE = re.compile(
    r"^[\s\-*\d.)]*flaw\**\s*:\**\s*(.+?)[\s\-*|]*(?:severity\**\s*:\**\s*(\w+)\W*)?"
    r"(?:\**suggestion\**\s*:\**\s*(.+?))?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def parse_critique(reply: str) -> list[dict] | str:
    """Critique units from a critic's reply, or a reason.

    '{"units": [{"flaw": "Wrong dose.", "severity": "Critical", "suggestion": "Say 5 mg."}]}' ->
    [{'flaw': 'Wrong dose.', 'severity': 'critical', 'suggestion': 'Say 5 mg.'}];
    '{"units": []}' -> []; '' -> 'judge_empty_reply'; 'Looks fine.' -> 'judge_unparseable'.
    Items without a flaw are skipped (none usable out of several -> unparseable); at most 3 kept.
    A reply cut off inside a unit keeps the complete units before it.
    """
    text = reply.strip()
    if not text:
        return EMPTY_REPLY
    items = _items(text)
    if items is None and "}" in text:  # cut off: close after the last complete unit
        items = _items(text[: text.rfind("}") + 1] + "]}")
    if items is None:
        one = find_object(text, "flaw")  # a single unit on its own
        labelled = [
            {"flaw": m[1], "severity": m[2], "suggestion": m[3]}
            for m in _LABELLED_RE.finditer(text)
        ]
        items = [one] if one is not None else labelled or None
    if not isinstance(items, list):
        return UNPARSEABLE
    units = [u for u in map(_unit, items) if u is not None]
    return units[:MAX_UNITS] if units or not items else UNPARSEABLE


_TRUE, _FALSE = {"true", "yes", "valid"}, {"false", "no", "invalid"}
_VALID_KEY_RE = re.compile(r"\bvalid\b[\s*\"'`]*[:=][\s*\"'`]*(true|false|yes|no)\b", re.IGNORECASE)
_INVALID_RE = re.compile(r"\b(?:invalid|not\s+(?:a\s+)?valid)\b", re.IGNORECASE)
_VALID_RE = re.compile(r"\bvalid\b", re.IGNORECASE)


def parse_meta_verdict(reply: str) -> bool | str:
    """True/False from a meta-critique reply, or a reason.

    '{"valid": false, "reason": "..."}' -> False; 'Invalid: not in the response.' -> False;
    '{"valid": "yes"}' -> True; 'The critique is valid.' -> True; 'Hmm.' -> 'judge_unparseable'.
    """
    text = reply.strip()
    if not text:
        return EMPTY_REPLY
    obj = find_object(text, "valid")
    if obj is not None:
        value = obj["valid"]
        if isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) else ""
    elif key := _VALID_KEY_RE.search(text):
        word = key.group(1).lower()
    elif _INVALID_RE.search(text):
        return False
    else:
        word = "valid" if _VALID_RE.search(text) else re.sub(r"\W", "", text.lower())
    return True if word in _TRUE else False if word in _FALSE else UNPARSEABLE


_LABEL_RE = re.compile(r"^[\s*#]*revised\s+response\s*\**\s*:\s*\**", re.IGNORECASE)


def parse_revision(reply: str) -> str | None:
    """The revised text: '**Revised response:** Insulin.' -> 'Insulin.'; '' -> None."""
    return _LABEL_RE.sub("", reply.strip(), count=1).strip() or None


# the value's case matters: "Better: a detailed answer" is prose
_BETTER_KEY_RE = re.compile(r"\b(?i:better)\b[\s*\"'`]*[:=][\s*\"'`]*(A|B|(?i:tie))\b")
_TIE_RE = re.compile(r"\b(?:tie|equal|equally|neither)\b", re.IGNORECASE)
# "Response B", "response_b"; not "answer a question"
_NAMED_RE = re.compile(r"\b(?i:response|answer)(?:\s*\**([AB])|_([abAB]))\b")
_CHOICES = {"a": "A", "b": "B", "tie": "tie", "equal": "tie", "neither": "tie"}


def parse_comparison(reply: str) -> str:
    """'A', 'B' or 'tie' from a comparison reply, or a reason.

    '{"better": "B"}' -> 'B'; 'Response A is better.' -> 'A'; 'They are equal.' -> 'tie';
    '**B**' -> 'B'; 'A better answer would cite a source.' -> 'judge_unparseable'.
    """
    text = reply.strip()
    if not text:
        return EMPTY_REPLY
    obj = find_object(text, "better")
    if obj is not None:
        value = obj["better"]
        word = re.sub(r"^response\s*", "", value.strip().lower()) if isinstance(value, str) else ""
    elif key := _BETTER_KEY_RE.search(text):
        word = key.group(1).lower()
    elif _TIE_RE.search(text):  # before names: a mistaken tie only loses a pair
        return "tie"
    elif named := _NAMED_RE.search(text):
        return (named[1] or named[2]).upper()
    else:
        word = re.sub(r"\W", "", text).lower()  # a bare letter only: 'A' is also an article
    return _CHOICES.get(word, UNPARSEABLE)
