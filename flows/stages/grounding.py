"""The grounding stage: every record's support by its passages (filters/support.py), and a floor
when the recipe sets one; the support of each origin goes to the manifest."""

from __future__ import annotations

from collections.abc import Mapping

from filters.support import distribution, score_support, support_filter
from flows.stages.base import Outcome, Step, Tools, origin_of
from flows.stages.registry import ORIGINS
from generators.records import Record


def grounding_stage(tools: Tools, records: list[Record], texts: Mapping[str, str]) -> Outcome:
    """Score each record's support against its passages; drop those under `min_support`.
    The manifest's `support` section: origin -> distribution of its records' support."""
    cfg = tools.recipe.grounding
    with tools.timed("grounding"):
        scored = score_support(records, texts)
        kept, dropped = support_filter(scored, cfg.min_support)
    present = {origin_of(x) for x in scored}
    support = {
        o.name: distribution([x.meta["support"] for x in scored if origin_of(x) == o.name])
        for o in ORIGINS
        if o.name in present
    }
    steps = [Step("grounding", len(records), kept, dropped)]
    return Outcome(kept, steps, manifest={"support": support})
