"""The seeds origin: the human-written seed instances that have an output, as curated records of
their own (a small set of gold answers beside the model-written ones). No LLM; the seeds are the
recipe's `seeds` file. A seed instance with an empty output is not a record."""

from __future__ import annotations

from flows.stages.base import Origin, Outcome, Sources, Tools, one_step
from generators.records import Record


def seed_records(tools: Tools, sources: Sources) -> Outcome:
    """One record per seed instance with an output; those without one are dropped with a reason."""
    kept: list[Record] = []
    dropped: list[Record] = []
    for seed in sources.seeds:
        for n, (input_text, output) in enumerate(seed.instances):
            meta = {**tools.lineage, "origin": "seeds", "seed_id": seed.id, "instance": n}
            record = Record(
                instruction=seed.instruction, input=input_text, output=output, meta=meta
            )
            if output.strip():
                kept.append(record)
            else:
                dropped.append(record.drop("seeds", "seed_without_output"))
    n_in = sum(len(seed.instances) for seed in sources.seeds)
    return one_step("seeds", n_in, kept, dropped)


ORIGIN = Origin("seeds", None, None, share=0.0, make=seed_records,
                share_doc="seed instances that have an output, as written")  # fmt: skip
