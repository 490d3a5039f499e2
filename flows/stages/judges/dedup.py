"""Near-duplicate removal after generation (filters/dedup.py): MinHash LSH over word 3-grams of
the whole record, and embedding cosine of instruction + input; both off by default."""

from __future__ import annotations

from pydantic import Field

from filters.dedup import COSINE_MAX, JACCARD_MIN, embedding_dedup, minhash_dedup
from flows.stages.base import Judge, Outcome, Step, Strict, Tools
from generators.records import Record
from generators.seeds import Seed


class DedupConfig(Strict):
    """Near-duplicate removal after generation (filters/dedup.py); both off by default."""

    minhash: bool = Field(False, description="MinHash LSH over word 3-grams of the whole record")
    jaccard: float = Field(JACCARD_MIN, gt=0, le=1, description="drop at estimated Jaccard >= this")
    embedding: bool = Field(False, description="embedding cosine of instruction + input (faiss)")
    cosine: float = Field(COSINE_MAX, gt=0, le=1, description="drop at cosine > this")


def dedup_stages(
    tools: Tools,
    records: list[Record],
    seeds: list[Seed] = (),
    skipped: str | None = None,
    scorer: str | None = None,  # no scorers: the model's verdict only
) -> Outcome:
    """MinHash, then embedding near-duplicates, each where the recipe switches it on."""
    cfg = tools.recipe.dedup
    steps: list[Step] = []
    if cfg.minhash:
        with tools.timed("minhash_dedup"):
            kept, dropped = minhash_dedup(records, cfg.jaccard, hasher=tools.minhasher())
        steps.append(Step("minhash_dedup", len(records), kept, dropped))
        records = kept
    if cfg.embedding:
        with tools.timed("embedding_dedup"):
            kept, dropped = embedding_dedup(records, tools.encoder().encode, cfg.cosine)
        steps.append(Step("embedding_dedup", len(records), kept, dropped))
        records = kept
    return Outcome(records, steps)


JUDGE = Judge("dedup", DedupConfig, ("minhash_dedup", "embedding_dedup"),
              switched_on=lambda cfg: cfg.minhash or cfg.embedding, apply=dedup_stages)  # fmt: skip
