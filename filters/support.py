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

The same question asked of the model's likelihoods, for the judges' scorers (calibration weighs
them against the model's own verdicts): "passage_gain" calls an answer backed when its own
passages make it likelier than another question's passages do, by >= MIN_GAIN nats a token on
average, with no token made more than MAX_DROP nats less likely (a number or a polarity the
passage contradicts); unrelated passages rather than none as the control, so that text of the
domain in the prompt, which makes any answer of the domain likelier, does not count. "ifd" calls
it so when its task makes it likelier (IFD < MAX_IFD). A refinement is kept only where its
support does not fall (`support_holds`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

from filters.base import split
from generators.records import Record
from generators.text import support_words

# The likelihood scorers' thresholds, chosen on the biomedical dev check set (benchmarks/RESULTS.md)
MIN_GAIN = 0.5  # nats per answer token its own passages add over unrelated ones
MAX_DROP = 3.0  # nats: the most one answer token may lose to its own passages
MAX_IFD = 1.0


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


def passage_gain(with_passages: Sequence[float], alone: Sequence[float]) -> dict:
    """Per-token NLLs of one answer after its passages and after the control (unrelated
    passages, or none) -> {"gain": mean nats gained per token, "worst": the largest loss of one
    token (>= 0)}: ([0.5, 1.0], [2.0, 1.5]) -> {'gain': 1.0, 'worst': 0.0}."""
    if not alone or not with_passages:
        return {"gain": 0.0, "worst": 0.0}
    if len(with_passages) != len(alone):  # the answer tokenized apart: compare the means only
        gain = sum(alone) / len(alone) - sum(with_passages) / len(with_passages)
        return {"gain": round(gain, 4), "worst": 0.0}
    diffs = [a - w for w, a in zip(with_passages, alone, strict=True)]
    return {"gain": round(sum(diffs) / len(diffs), 4), "worst": round(max(0.0, -min(diffs)), 4)}


def gain_verdict(score: dict, min_gain: float = MIN_GAIN, max_drop: float = MAX_DROP) -> bool:
    """Correct when the passages help on average and contradict no token:
    ({'gain': 0.8, 'worst': 0.3}) -> True; ({'gain': 0.8, 'worst': 4.1}) -> False."""
    return score["gain"] >= min_gain and score["worst"] <= max_drop


def control_order(keys: Sequence[str], seed: int = 0) -> list[int | None]:
    """For each item, the index of an item with another key whose passages serve as its
    control (a seeded cycle over the distinct keys), or None when all share one key:
    ['q1', 'q1', 'q2'] -> [2, 2, 0]."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) < 2:
        return [None] * len(keys)
    cycle = distinct[:]
    random.Random(seed).shuffle(cycle)
    following = {k: cycle[(i + 1) % len(cycle)] for i, k in enumerate(cycle)}
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    return [first[following[key]] for key in keys]


def ifd_verdict(ifd: float | None, max_ifd: float = MAX_IFD) -> bool:
    """Correct when the question helps predict the answer: 0.7 -> True, 1.2 -> False."""
    return ifd is not None and math.isfinite(ifd) and ifd < max_ifd


def support_holds(before: float, after: float) -> bool:
    """A refinement is kept when its support is no lower than the answer it replaces."""
    return after >= before
