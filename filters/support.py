"""Support: how much of an answer its passages back, with no LLM.

    support("ATP synthase makes ATP.", ["ATP synthase sits in the inner membrane..."]) -> 0.67

The unit is the *content word*: a lowercased run of letters and digits (hyphens and apostrophes
inside kept), 3 characters or more, not a stopword, with a plural "s"/"es" removed. An answer's
support is the share of its distinct content words that also occur in its passages. A word-level
share is crude (a negated claim scores as high as the claim), but it needs no model, is the same
on every machine, and separates an answer copied or condensed from the corpus (support near 1)
from the model's free recall (support near 0: in the demo export before this score existed, 9%).
Numbers count whatever their length ("25%" -> '25', "pH 7" -> '7'): a short answer that is a
number ("25%.") is a fact the passage states or not. An answer with no content word and no
number ("Yes.") has support 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from filters.base import split
from generators.records import Record

_WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_NUMBER_RE = re.compile(r"(?<![a-z0-9.])\d+(?:\.\d+)?(?![a-z0-9])")
MIN_WORD_CHARS = 3
STOPWORDS = frozenset(
    """
    about above after again against all also although among and any are aren't because been
    before being below between both but can cannot could did does doing done down during each
    either else etc even ever every few for from further had has have having her here hers
    herself him himself his how however into its itself just least less like made make many may
    might more most much must myself near neither nor not now off once one only onto other
    others our ours ourselves out over own per rather same she should since some such than that
    the their theirs them themselves then there therefore these they this those though through
    thus too under until upon very via was way we were what whatever when where whereas whether
    which while who whom whose why will with within without would yet you your yours yourself
    the first second third two three four five use used uses using well get gets also often
    usually called known include includes including
    """.split()
)


def stem(word: str) -> str:
    """'proteins' -> 'protein', 'classes' -> 'class', "cell's" -> 'cell'; short words unchanged."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Distinct stemmed content words: 'The cells divide.' -> {'cell', 'divide'}."""
    return {
        stem(w)
        for w in _WORD_RE.findall(text.lower())
        if len(w) >= MIN_WORD_CHARS and w not in STOPWORDS
    }


def support_words(text: str) -> set[str]:
    """Content words and numbers: '25% of 4 cells' -> {'25', '4', 'cell'}."""
    return content_words(text) | set(_NUMBER_RE.findall(text.lower()))


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
