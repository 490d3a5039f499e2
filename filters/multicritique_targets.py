"""What MultiCritique makes of its judged critiques: merged units, meta, and training rows.

The valid units of all critics are merged by flaw overlap (`merge_units`) into aggregated units;
`summary` gives a record's meta["multicritique"] before the comparisons; `critique_sft_row`
teaches the critique task from the aggregated units, and `preference_pair` turns a comparison
verdict into a DPO row (TRL's conversational prompt/chosen/rejected format).

Not handled here: weighting critics by reliability, merging by meaning (only word overlap), and
pairs from ties.
"""

from __future__ import annotations

import re

from filters.judge_io import response_blocks, user_message, user_turn
from filters.multicritique import CRITIQUE_TASK, NEUTRAL_FOCUS, SFT_FORMAT, render_critique
from filters.multicritique_parse import SEVERITIES, severity
from generators.errors import SelfAlignError
from generators.records import Record

# Another critic's wording of the same flaw keeps most of its words; half the distinct words in
# common merges those, while two different flaws of one response rarely share half. Rough (stop
# words count): lower it and distinct flaws merge, raise it and paraphrases stay apart.
MERGE_JACCARD = 0.5


def _words(text: str) -> frozenset[str]:
    """Lowercase words without punctuation: 'Wrong dose!' -> {'wrong', 'dose'}."""
    return frozenset(re.sub(r"[^\w\s]", " ", text.lower()).split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|; 1.0 for two empty sets: ({'a', 'b'}, {'b', 'c'}) -> 0.333."""
    return len(a & b) / len(a | b) if a | b else 1.0


def merge_units(units: list[dict]) -> list[dict]:
    """Valid units from all critics (each with "critic"), merged by flaw overlap, worst first.

    A unit joins the first group whose first flaw shares >= MERGE_JACCARD of its words; a group
    keeps its first flaw, the highest severity, the first non-empty suggestion and the critics.
    """
    groups: list[tuple[frozenset[str], list[dict]]] = []
    for unit in units:
        words = _words(unit.get("flaw", ""))
        group = next((g for w, g in groups if jaccard(words, w) >= MERGE_JACCARD), None)
        if group is None:
            groups.append((words, group := []))
        group.append(unit)
    merged = [
        {
            "flaw": group[0].get("flaw", ""),
            "severity": max((severity(u.get("severity")) for u in group), key=SEVERITIES.index),
            "suggestion": next((u["suggestion"] for u in group if u.get("suggestion")), ""),
            "critics": sorted({u["critic"] for u in group if u.get("critic")}),
        }
        for _, group in groups
    ]
    return sorted(merged, key=lambda u: -SEVERITIES.index(u["severity"]))  # stable: ties in order


def summary(record_units: dict[str, list[dict] | str], validity: list[bool | str]) -> dict:
    """meta["multicritique"] up to the comparisons: critics, meta_verdicts, valid_units, aggregated.

    `validity` has one meta-critique verdict per unit, critics in `record_units` order; only True
    is valid. A critic whose reply was unreadable has {"error": reason} and no verdicts.
    """
    flat = [
        {**unit, "critic": critic}
        for critic, units in record_units.items()
        if not isinstance(units, str)
        for unit in units
    ]
    if len(flat) != len(validity):
        raise SelfAlignError(f"multicritique: {len(flat)} units but {len(validity)} verdicts")
    verdicts: dict[str, list[bool | str]] = {critic: [] for critic in record_units}
    for unit, verdict in zip(flat, validity, strict=True):
        verdicts[unit["critic"]].append(verdict)
    valid = [unit for unit, verdict in zip(flat, validity, strict=True) if verdict is True]
    critics = {c: {"error": u} if isinstance(u, str) else u for c, u in record_units.items()}
    return {
        "critics": critics,
        "meta_verdicts": verdicts,
        "valid_units": valid,
        "aggregated": merge_units(valid),
    }


def critique_sft_row(record: Record, units: list[dict]) -> dict:
    """A chat row teaching the critique task: persona-neutral prompt -> rendered units."""
    task = f"{CRITIQUE_TASK} {NEUTRAL_FOCUS}"
    blocks = response_blocks(record.instruction, record.input, record.output)
    messages = [
        {"role": "user", "content": user_turn(task, blocks, SFT_FORMAT)},
        {"role": "assistant", "content": render_critique(units)},
    ]
    return {"id": record.id, "messages": messages}


def preference_pair(
    record: Record, original: str, revision: str, verdict: str, revision_is_a: bool, critic: str
) -> dict | None:
    """A DPO row (TRL conversational prompt/chosen/rejected) from a comparison verdict.

    'A'/'B' names the better response, A being the revision when `revision_is_a`; 'tie', a
    reason, or a revision identical to the original (after stripping) gives None.
    """
    if verdict not in ("A", "B") or original.strip() == revision.strip():
        return None
    revision_won = (verdict == "A") == revision_is_a
    chosen, rejected = (revision, original) if revision_won else (original, revision)
    return {
        "id": record.id,
        "critic": critic,
        "prompt": [{"role": "user", "content": user_message(record)}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "revision_preferred": revision_won,
    }
