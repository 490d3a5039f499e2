"""Support: how much of an answer its passages back, with no LLM.

    support("ATP synthase makes ATP.", ["ATP synthase sits in the inner membrane..."]) -> 0.67

The unit is the *content word* (generators/text.py): a lowercased run of letters and digits
(hyphens and apostrophes inside kept), 3 characters or more, not a stopword, with a plural
"s"/"es" removed. An answer's support is the share of its distinct content words that also occur
in its passages. A word-level share is crude (a negated claim scores as high as the claim), but it
needs no model, is the same on every machine, and separates an answer copied or condensed from
the corpus (support near 1) from the model's free recall (support near 0: in the demo export
before this score existed, 9%). Numbers count whatever their length ("25%" -> '25', "pH 7" ->
'7'): a short answer that is a number ("25%.") is a fact the passage states or not. An answer with
no content word and no number ("Yes.") has support 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable

from filters.base import split
from generators.records import Record
from generators.text import support_words


def support(answer: str, passages: Iterable[str]) -> float:
    """Share of the answer's content words and numbers found in the passages (0.0 to 1.0, 4
    decimals)."""
    words = support_words(answer)
    if not words:
        return 0.0
    backed: set[str] = set()
    for text in passages:
        backed |= support_words(text)
    return round(len(words & backed) / len(words), 4)


def score_support(records: list[Record], texts: dict[str, str]) -> list[Record]:
    """Each record with `meta.support`: its output against the texts of its `passages`."""
    return [
        r.with_meta(support=support(r.output, (texts[p] for p in r.passages if p in texts)))
        for r in records
    ]


def support_filter(records: list[Record], min_support: float) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): records whose `meta.support` is below `min_support` are dropped with
    reason 'unsupported' (the score stays in meta, so the rejected file shows by how much)."""
    return split(
        records, "grounding", lambda r: "unsupported" if r.meta["support"] < min_support else None
    )


def distribution(values: list[float]) -> dict[str, float | int]:
    """n, mean and quartiles of support scores, for the manifest and the data card."""
    if not values:
        return {"n": 0}
    xs = sorted(values)

    def q(p: float) -> float:
        return round(xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))], 4)

    return {
        "n": len(xs),
        "mean": round(sum(xs) / len(xs), 4),
        "p25": q(0.25),
        "median": q(0.5),
        "p75": q(0.75),
    }
