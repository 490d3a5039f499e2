"""Judge calibration: a labelled check set built from held-out QA, and agreement metrics.

Each QA pair gives one "gold" item (its own answer, label True) and one corrupted item (label
False), tried in this order:

- "numeric": every standalone number in the answer is changed (integers n -> 2n+1, decimals x3,
  same decimal places and thousands commas); when that would push a percentage over 100, all
  numbers go down instead (n // 2, /3). Digits inside names are left alone (TLR4, Aquaporin-2,
  HLA-B*57:01, 5'-NGG-3'), so an answer with only such digits is not numeric.
- "negated": the leftmost word or phrase from `NEGATIONS` is flipped ("is" -> "is not",
  "cannot" -> "can", "inhibits" -> "activates", "minus" -> "plus", ...).
- "swapped": the answer of another question, from a seeded derangement (a random cycle over all
  QAs, repaired so that no answer is swapped for an identical text).

Not handled: spelled-out numbers ("four", "threefold"), changed numbers that are implausible
(a year 1977 -> 3955) or plausible again through units, leading zeros (dropped), capitalised
phrases ("Is ..." is not flipped), negations inside conditional clauses (the leftmost match is
flipped blindly), and a swapped answer that happens to answer its new question too (only
identical texts are excluded). The seed only picks swap partners; numeric and negated items
do not depend on it.

Multiple choice (`mc_items`, for log-likelihood ranking): each QA gets its gold answer and
`n_choices - 1` distractors, tried in this order: its numeric corruption, its negation, then
answers of other questions, picked by a generator seeded with (seed, id) from the QAs sorted by
id. All choices differ from each other after `_norm`; their order is shuffled by the same
generator, so the gold index varies. `distractor_kinds` names the non-gold choices in choice
order ("numeric", "negated", "swapped"). A QA set with too few different answers raises. Not
handled: a distractor that is also correct (a paraphrase of the gold), and distractors of very
different length from the gold (`acc_norm` divides by length; `acc` favours short choices).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from generators.errors import SelfAlignError
from generators.io import iter_jsonl_objects, json_type, refuse_control_chars

KINDS = ("gold", "swapped", "numeric", "negated")
# One-word flips that keep the sentence grammatical and make it false; longer keys win over
# their prefixes ("does not" before "does"). Comparatives (more/less) are left out: they often
# appear twice in one answer and flipping one of them can leave it true.
NEGATIONS = {
    "is not": "is", "are not": "are", "does not": "does", "do not": "do", "cannot": "can",
    "is": "is not", "are": "are not", "was": "was not", "were": "were not", "does": "does not",
    "can": "cannot", "increases": "decreases", "decreases": "increases", "raises": "lowers",
    "lowers": "raises", "rises": "falls", "falls": "rises", "inhibits": "activates",
    "activates": "inhibits", "stimulates": "inhibits", "stimulate": "inhibit",
    "induces": "suppresses", "retains": "loses", "lacks": "has", "minus": "plus",
    "irreversibly": "reversibly", "negative": "positive", "positive": "negative",
}  # fmt: skip
_NEGATION_RE = re.compile(r"\b(" + "|".join(sorted(NEGATIONS, key=len, reverse=True)) + r")\b")
# A standalone number: not part of a name such as TLR4, DPP-4, B*57:01, 5'-NGG or CYP2C19.
_NUMBER_RE = re.compile(
    r"(?<![\w.*:'’])(?<![A-Za-z]-)-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w'’′]|[.,:]\d)"
)
_PERCENT_RE = re.compile(r"\s?(%|percent\b)")


@dataclass(frozen=True)
class CheckItem:
    """One question-answer pair to judge; `label` is True when `answer` is correct."""

    id: str
    question: str
    reference: str
    answer: str
    label: bool
    kind: str


def _field(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """Required non-empty string without control characters (but tab and newline), stripped:
    `_field({"answer": 1}, "answer", w)` raises."""
    if key not in obj and default is None:
        raise SelfAlignError(f"{where}: missing '{key}'")
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise SelfAlignError(f"{where}: '{key}' must be a string, got {json_type(value)}")
    refuse_control_chars(value, where, key)
    if not value.strip():
        raise SelfAlignError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def load_qa(path: str | Path) -> list[dict]:
    """QA pairs [{"id", "question", "answer"}] from JSONL; other keys are ignored."""
    path = Path(path)
    if not path.is_file():
        raise SelfAlignError(f"{path}: no such file")
    qa: list[dict] = []
    seen: dict[str, int] = {}  # id -> first line
    for lineno, obj in iter_jsonl_objects(path):
        where = f"{path}:{lineno}"
        row = {key: _field(obj, key, where) for key in ("question", "answer")}
        qa_id = _field(obj, "id", where, default=f"qa_{lineno}")
        if qa_id in seen:
            raise SelfAlignError(f"{where}: duplicate id {qa_id!r} (first on line {seen[qa_id]})")
        seen[qa_id] = lineno
        qa.append({"id": qa_id, **row})
    if not qa:
        raise SelfAlignError(f"{path}: empty file")
    return qa


def _shift(token: str, down: bool) -> str:
    """Another number, formatted alike: '37' -> '75', '0.5' -> '1.5', '8,400' -> '16,801'."""
    places = len(token.partition(".")[2])
    value = Decimal(token.replace(",", ""))
    if places:
        new = (value / 3 if down else value * 3).quantize(Decimal(1).scaleb(-places))
    else:
        new = value // 2 if down else value * 2 + 1
    spec = f"{',' if ',' in token else ''}.{places}f"
    text = format(new, spec)
    return text if text != token else format(value + 1, spec)


def numeric(answer: str) -> str | None:
    """Every standalone number changed: 'About 25%.' -> 'About 51%.'; None without numbers."""
    matches = list(_NUMBER_RE.finditer(answer))
    if not matches:
        return None
    over = any(
        _PERCENT_RE.match(answer, m.end()) and Decimal(_shift(m[0], False).replace(",", "")) > 100
        for m in matches
    )
    return _NUMBER_RE.sub(lambda m: _shift(m[0], over), answer)


def negate(answer: str) -> str | None:
    """The leftmost `NEGATIONS` phrase flipped: 'It can bind.' -> 'It cannot bind.'; else None."""
    match = _NEGATION_RE.search(answer)
    if match is None:
        return None
    return answer[: match.start()] + NEGATIONS[match[0]] + answer[match.end() :]


def _norm(text: str) -> str:
    """Text compared for identity: ' The  Rb.' -> 'the rb' (case, spacing, final stop)."""
    return " ".join(text.split()).rstrip(".!").casefold()


def _derangement(answers: list[str], seed: int) -> list[int]:
    """Partner per answer, never itself or an identical text (Sattolo cycle, then repairs)."""
    texts, n, rng = [_norm(a) for a in answers], len(answers), random.Random(seed)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):  # Sattolo: a uniformly random single cycle
        j = rng.randrange(i)
        perm[i], perm[j] = perm[j], perm[i]
    for i in range(n):
        if perm[i] != i and texts[i] != texts[perm[i]]:
            continue
        for j in rng.sample(range(n), n):
            a, b = perm[j], perm[i]  # exchange partners: i gets a, j gets b
            if a != i and b != j and texts[i] != texts[a] and texts[j] != texts[b]:
                perm[i], perm[j] = a, b
                break
    return perm


def corrupt(qa: list[dict], seed: int = 0) -> list[CheckItem]:
    """Gold and one corrupted item per QA, in input order (numeric, else negated, else swapped)."""
    answers = [row["answer"] for row in qa]
    partners = _derangement(answers, seed)
    items: list[CheckItem] = []
    for i, row in enumerate(qa):
        qid, question, answer = row["id"], row["question"], row["answer"]
        items.append(CheckItem(f"{qid}:gold", question, answer, answer, True, "gold"))
        kind, wrong = "numeric", numeric(answer)
        if wrong is None:
            kind, wrong = "negated", negate(answer)
        if wrong is None:
            kind, wrong = "swapped", answers[partners[i]]
            if partners[i] == i or _norm(answer) == _norm(wrong):
                raise SelfAlignError(f"calibration: {qid}: no different answer to swap in")
        items.append(CheckItem(f"{qid}:{kind}", question, answer, wrong, False, kind))
    return items


def _distractors(row: dict, pool: list[str], rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Up to n (kind, text), all different from the gold and each other after `_norm`."""
    seen, out = {_norm(row["answer"])}, []
    candidates = [("numeric", numeric(row["answer"])), ("negated", negate(row["answer"]))]
    candidates += [("swapped", text) for text in rng.sample(pool, len(pool))]
    for kind, text in candidates:
        if text is not None and _norm(text) not in seen and len(out) < n:
            seen.add(_norm(text))
            out.append((kind, text))
    return out


def mc_items(qa: list[dict], seed: int = 0, n_choices: int = 4) -> list[dict]:
    """One multiple-choice item per QA, in input order (see the module docstring):
    {"id", "question", "choices", "gold" (index into choices), "distractor_kinds"}."""
    if n_choices < 2:
        raise SelfAlignError(f"calibration: n_choices must be >= 2, got {n_choices}")
    by_id = sorted(qa, key=lambda row: row["id"])  # swap partners do not depend on input order
    items = []
    for row in qa:
        qid, answer = row["id"], row["answer"]
        rng = random.Random(f"mc:{seed}:{qid}")  # str seeds hash stably (sha512), unlike hash()
        pool = [other["answer"] for other in by_id if other["id"] != qid]
        picked = _distractors(row, pool, rng, n_choices - 1)
        if len(picked) < n_choices - 1:
            raise SelfAlignError(
                f"calibration: {qid}: only {len(picked)} different distractors, "
                f"need {n_choices - 1}"
            )
        choices = [("gold", answer), *picked]
        rng.shuffle(choices)
        items.append({
            "id": qid,
            "question": row["question"],
            "choices": [text for _, text in choices],
            "gold": next(i for i, (kind, _) in enumerate(choices) if kind == "gold"),
            "distractor_kinds": [kind for kind, _ in choices if kind != "gold"],
        })  # fmt: skip
    return items


def _qa_id(item: CheckItem) -> str:
    """The QA an item came from: 'qa-001:gold' -> 'qa-001'."""
    return item.id[: -len(item.kind) - 1]


def sample(items: list[CheckItem], size: int | None, seed: int = 0) -> list[CheckItem]:
    """At most `size` QA pairs (both items of each), seeded, in original order; None = all."""
    if size is not None and size < 1:
        raise SelfAlignError(f"calibration: sample size must be >= 1, got {size}")
    groups = list(dict.fromkeys(_qa_id(item) for item in items))
    if size is None or size >= len(groups):
        return list(items)
    chosen = set(random.Random(seed).sample(groups, size))
    return [item for item in items if _qa_id(item) in chosen]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def metrics(labels: list[bool], verdicts: list[bool | None]) -> dict:
    """Agreement, precision and recall of "correct" verdicts; None verdicts count as wrong.

    precision is None when the judge never said "correct", recall when no label is True, f1 when
    either is None. tp/fp/tn/fn count parsed verdicts only, so tp+fp+tn+fn+unparseable == n.
    """
    if len(labels) != len(verdicts):
        raise SelfAlignError(f"calibration: {len(labels)} labels but {len(verdicts)} verdicts")
    pairs = list(zip(map(bool, labels), verdicts, strict=True))
    tp, fn = pairs.count((True, True)), pairs.count((True, False))
    fp, tn = pairs.count((False, True)), pairs.count((False, False))
    n, positives = len(labels), sum(1 for label in labels if label)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, positives)
    # harmonic mean of precision and recall, from the counts (no double rounding)
    f1 = _ratio(2 * tp, tp + fp + positives) if tp + fp and positives else None
    unparseable = n - tp - fp - tn - fn
    return {
        "n": n, "agreement": _ratio(tp + tn, n), "precision": precision, "recall": recall,
        "f1": f1, "unparseable": unparseable, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "predicted_correct_rate": _ratio(tp + fp, n),
    }  # fmt: skip


def by_kind(items: list[CheckItem], verdicts: list[bool | None]) -> dict[str, dict]:
    """{kind: {"n", "agreement", "unparseable"}}: gold = how often accepted, others = caught."""
    if len(items) != len(verdicts):
        raise SelfAlignError(f"calibration: {len(items)} items but {len(verdicts)} verdicts")
    hits = [None if v is None else v == it.label for it, v in zip(items, verdicts, strict=True)]
    out: dict[str, dict] = {}
    for kind in KINDS:
        got = [hit for it, hit in zip(items, hits, strict=True) if it.kind == kind]
        if got:
            agreement = _ratio(got.count(True), len(got))
            out[kind] = {"n": len(got), "agreement": agreement, "unparseable": got.count(None)}
    return out


def summary_line(name: str, m: dict) -> str:
    """'rating: agreement 0.62, precision 0.58, recall 0.91 (n=80, unparseable 3)'."""

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    return (
        f"{name}: agreement {fmt(m['agreement'])}, precision {fmt(m['precision'])}, "
        f"recall {fmt(m['recall'])} (n={m['n']}, unparseable {m['unparseable']})"
    )
