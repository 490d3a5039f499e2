"""The mix: the curated set's origins cut, seeded, to the recipe's shares (`mix`, one share per
origin of flows/stages/registry.py); origins declared `uncut` are never cut."""

from __future__ import annotations

import random

from flows.stages.base import Outcome, Step, Tools, derive_seed, origin_of
from flows.stages.registry import ORIGINS
from generators.records import Record

# kept whole by the mix (facts: their number follows the corpus and facts.per_passage)
UNCUT = tuple(o.name for o in ORIGINS if o.uncut)


def mix_counts(available: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """How many records of each origin the mix keeps: the largest set in the given proportions.

    mix_counts({"a": 100, "b": 30}, {"a": 1, "b": 1}) -> {"a": 30, "b": 30}; an origin with share
    0 keeps 0; an origin with a share but no records leaves the others whole (it cannot be met).
    """
    wanted = {o: s for o, s in shares.items() if s > 0 and available.get(o, 0) > 0}
    if not wanted:
        return {o: 0 for o in available}
    total = sum(wanted.values())
    scale = min(available[o] / (s / total) for o, s in wanted.items())
    return {
        o: min(available[o], round(scale * wanted[o] / total)) if o in wanted else 0
        for o in available
    }


def mix_stage(tools: Tools, records: list[Record]) -> Outcome:
    """Cut the origins to the recipe's shares (a seeded choice within each); the rest are dropped
    with reason 'mix_share_<origin>'. With a single origin nothing is cut (and no stage folder is
    written); uncut origins are never cut (their share only switches them on)."""
    shares = {o: s for o, s in tools.recipe.mix.shares().items() if o not in UNCUT}
    by_origin: dict[str, list[Record]] = {}
    for x in records:
        if origin_of(x) not in UNCUT:
            by_origin.setdefault(origin_of(x), []).append(x)
    if len([o for o in by_origin if shares.get(o, 0) > 0]) < 2:
        return Outcome(records)
    counts = mix_counts({o: len(xs) for o, xs in by_origin.items()}, shares)
    keep: set[str] = set()
    for o, xs in by_origin.items():
        rng = random.Random(derive_seed(tools.recipe.seed, "mix", o))
        keep |= {x.id for x in rng.sample(xs, counts[o])}
    cut = [x for x in records if origin_of(x) not in UNCUT]
    kept = [x for x in records if x.id in keep or origin_of(x) in UNCUT]
    dropped = [x.drop("mix", f"mix_share_{origin_of(x)}") for x in cut if x.id not in keep]
    return Outcome(kept, [Step("mix", len(records), kept, dropped)])
