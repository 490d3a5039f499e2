"""The facts origin: closed-book rows on every passage's atomic facts, found by rules, no LLM and
no passage in the prompt (generators/facts.py); the mix never cuts them."""

from __future__ import annotations

from pydantic import Field

from flows.stages.base import Origin, Outcome, Sources, Strict, Tools, one_step
from generators.facts import DEFAULT_FORMS, facts_corpus
from generators.facts import Form as FactForm


class FactsConfig(Strict):
    """Closed-book rows on each passage's atomic facts, found by rules, no LLM and no passage in
    the prompt (generators/facts.py); train.exposures sets how often each is seen."""

    forms: list[FactForm] = Field(
        default_factory=lambda: list(DEFAULT_FORMS),
        description="question (short answer), statement, cloze, notes (per passage), relation, "
        "passage (the passage whole as the answer to its topic)",
    )
    per_passage: int = Field(6, ge=1, le=32, description="facts per passage at most")
    phrasings: int = Field(2, ge=1, le=4, description="question phrasings per fact")


def facts_records(tools: Tools, sources: Sources) -> Outcome:
    """Closed-book rows on every passage's atomic facts (no LLM, no passage in the prompt)."""
    r = tools.recipe
    cfg = r.facts
    with tools.timed("facts"):
        made = facts_corpus(sources.passages, cfg.forms, cfg.per_passage, cfg.phrasings, r.seed)
    records = [x.with_meta(**tools.lineage) for x in made]
    return one_step("facts", len(sources.passages), records, [])


SHARE_DOC = ("closed-book rows on the passages' facts: > 0 switches them on; the mix never cuts "
             "them (their number follows the corpus and facts.per_passage)")  # fmt: skip
ORIGIN = Origin("facts", "facts", FactsConfig, share=0.0, share_doc=SHARE_DOC,
                make=facts_records, uncut=True)  # fmt: skip
