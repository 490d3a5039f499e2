"""The training data of each ablation variant, and the equal training-token budget.

    corpus-only            one row per corpus passage: user = its first sentence, assistant = the
                           rest (no LLM involved); the control a pipeline must beat
    random                 a seeded random subset of the *unfiltered* generations (every record
                           the grounding stage scored, all origins), as many as the curated set has
    random-without-<origin>  the same, drawn without that origin's records: with facts rows,
                           which no filter drops, most of a random pool is the recipe's own rows;
                           random-without-facts asks what the facts rows add over random others
    recipe                 the curated export (export/train.jsonl)
    origin-<origin>        one origin's records (self_instruct, backtranslation, reading) as they
                           reached the mix stage, before its cut
    recipe-minus-judges    the same, for every judge stage of the run at once (the recipe
                           without its judges)
    recipe-minus-<stage>   the export plus the records <stage> dropped, as they were when it
                           dropped them; the other stages' verdicts stand. Exact for the last
                           stage of a run; for an earlier one, the records it dropped did not go
                           through the stages after it (an approximation, said in the report).
                           A stage that rewrites answers gives them back: recipe-minus-s3ft
                           trains on the gold targets, recipe-minus-self_refine on the responses
                           before refinement
    select-random          as many records as offline selection kept, at random from all it was
                           given (selection against chance, at the same size)

Every variant's rows go through the same decontamination as the export, then are repeated in
seeded passes until they hold the same number of training tokens (prompt + answer, as the
trainer sees them, cut at its max_length), so no variant wins by seeing more text.

Not handled: mixing variants; a budget smaller than one row (the first row is always taken).
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

from flows.rundir import read_records
from flows.stages.base import origin_of
from generators.errors import SelfAlignError
from generators.records import Record

# The first sentence ends at ., ! or ? followed by a space and an upper-case letter or digit
# ("e.g. the" and "3.5 nm" do not end it).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def first_sentence(text: str) -> tuple[str, str]:
    """('The cell divides.', 'It then grows.') from 'The cell divides. It then grows.'."""
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def corpus_rows(passages: list[tuple[str, str]]) -> list[Record]:
    """One record per (id, text) passage with a second sentence: first sentence -> the rest."""
    rows = []
    for pid, text in passages:
        head, rest = first_sentence(text)
        if rest.strip():
            rows.append(
                Record(head, output=rest, id=pid, passages=(pid,), meta={"origin": "corpus"})
            )
    return rows


def stage_records(run_dir: Path, stage: str, part: str = "kept") -> list[Record]:
    """A stage's kept (or rejected) records from its stages/NN-<stage>/ folder."""
    folders = sorted((run_dir / "stages").glob(f"[0-9][0-9]-{stage}"))
    if not folders:
        raise SelfAlignError(f"{run_dir}: no stage '{stage}' (stages/NN-{stage}/)")
    return read_records(folders[-1] / f"{part}.parquet")


def unfiltered_records(run_dir: Path) -> list[Record]:
    """Every record of every origin before any filter: what the grounding stage scored (for a
    run made before that stage existed, the respond stage's answers)."""
    try:
        return stage_records(run_dir, "grounding") + stage_records(run_dir, "grounding", "rejected")
    except SelfAlignError:
        return stage_records(run_dir, "respond")


def random_rows(run_dir: Path, size: int, seed: int, without: str | None = None) -> list[Record]:
    """`size` records picked at random before any filter, judge or selection ran (none of origin
    `without`)."""
    pool = unfiltered_records(run_dir)
    if without:
        pool = [r for r in pool if origin_of(r) != without]
    if not pool:
        raise SelfAlignError(f"ablate: variant random-without-{without}: no other records")
    return random.Random(seed).sample(pool, min(size, len(pool)))


REWRITES = ("s3ft", "self_refine")  # stages that change answers (their minus variant restores)


def unjudged(record: Record, stage: str) -> Record:
    """The record's answer as it was before `stage` rewrote it: S3FT's gold (meta.s3ft.gold) in
    place of its target, SELF's first response in place of its refinement; else unchanged."""
    if stage == "s3ft" and "s3ft" in record.meta:
        return replace(record, output=record.meta["s3ft"]["gold"])
    steps = record.meta.get("self", {}).get("steps") if stage == "self_refine" else None
    if steps:
        return replace(record, output=steps[0]["response"])
    return record


def minus_rows(run_dir: Path, curated: list[Record], *stages: str) -> list[Record]:
    """The curated records plus those any of `stages` dropped (in run order: curated first, then
    each stage's), each with the answer it had before the stages rewrote it (S3FT's gold
    targets, SELF's unrefined responses)."""
    rows, ids = list(curated), {r.id for r in curated}
    for stage in stages:
        for r in stage_records(run_dir, stage, "rejected"):
            if r.id not in ids:
                rows.append(r)
                ids.add(r.id)
    order = [s for s in ("self_refine", "s3ft") if s in stages]  # S3FT's gold is the earliest
    for stage in order:
        rows = [unjudged(r, stage) for r in rows]
    return rows


def select_random_rows(run_dir: Path, seed: int) -> list[Record]:
    """As many records as offline selection kept, picked at random from all it was given: the
    control that shows whether selection's choice beats chance."""
    kept = stage_records(run_dir, "select")
    pool = kept + stage_records(run_dir, "select", "rejected")
    return random.Random(seed).sample(pool, len(kept))


def origin_rows(run_dir: Path, curated: list[Record], name: str) -> list[Record]:
    """One origin's records as they reached the mix stage (kept and cut alike), so each origin is
    measured whole; a run without a mix stage gives that origin's curated records."""
    try:
        pool = stage_records(run_dir, "mix") + stage_records(run_dir, "mix", "rejected")
    except SelfAlignError:
        pool = curated
    rows = [r for r in pool if origin_of(r) == name]
    if not rows:
        raise SelfAlignError(f"ablate: variant origin-{name}: the run has no '{name}' records")
    return rows


def budget_rows(lengths: list[int], budget: int, seed: int) -> list[int]:
    """Row indices in seeded passes (each a new permutation) until their lengths reach `budget`.

    budget_rows([10, 10, 10], 25, 0) -> three indices, a permutation of [0, 1, 2].
    """
    if not lengths:
        raise SelfAlignError("ablate: a variant has no training rows")
    rng, order, total = random.Random(seed), [], 0
    while total < budget:
        batch = list(range(len(lengths)))
        rng.shuffle(batch)
        for i in batch:
            order.append(i)
            total += lengths[i]
            if total >= budget:
                break
    return order
