"""The reading origin (AdaptLLM): reading-comprehension tasks mined from every passage by rules,
no LLM (generators/reading.py)."""

from __future__ import annotations

from pydantic import Field

from flows.stages.base import Origin, Outcome, Sources, Strict, Tools, one_step
from generators.reading import KINDS, mine_corpus
from generators.reading import Kind as ReadingKind


class ReadingConfig(Strict):
    """Reading-comprehension tasks mined from passages by rules, no LLM (generators/reading.py)."""

    kinds: list[ReadingKind] = Field(
        default_factory=lambda: list(KINDS), description="blank is opt-in (generators/reading.py)"
    )
    per_kind: int = Field(1, ge=1, le=8, description="tasks of each kind per passage at most")


def reading_records(tools: Tools, sources: Sources) -> Outcome:
    """Reading-comprehension tasks mined from every passage (no LLM)."""
    cfg = tools.recipe.reading
    with tools.timed("reading"):
        mined = mine_corpus(sources.passages, cfg.kinds, cfg.per_kind)
    records = [r.with_meta(**tools.lineage) for r in mined]
    return one_step("reading", len(sources.passages), records, [])


ORIGIN = Origin("reading", "reading", ReadingConfig, share=0.0, make=reading_records,
                share_doc="reading-comprehension tasks mined by rules")  # fmt: skip
