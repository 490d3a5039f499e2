"""The Self-Specialization flow: seeds + domain corpus -> curated, exported instruction data.

    corpus      ingest, chunk, drop duplicate passages; index with the embedder + faiss
    origins     every origin the mix gives a share (flows/stages/registry.py ORIGINS, in order):
                self_instruct, backtranslation, reading, facts (flows/stages/origins/)
    grounding   each answer's support by its passages; a floor when grounding.min_support is set
    judged      every judge the recipe switches on (registry JUDGES, in order: dedup, rating,
                S3FT, SELF, MultiCritique), after calibrating the verdicts they use
    mix         origins cut to the recipe's shares (when more than one is on)
    select      utility-diversity selection to a budget, when switched on
    decontam.   drop records sharing a 13-gram with a held-out question or answer
    export      train.jsonl / train.parquet / hf / rejected.jsonl / extra datasets / data card

Each stage is a function of the run's `Tools` (flows/stages/base.py) that returns an `Outcome`;
the run (flows/run.py) writes its stage folders and manifest sections. LLM and retrieval batches
are cached tasks (flows/tasks.py), so a rerun makes no LLM calls and a killed run resumes where it
stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.ops.trigger import trigger_fine_tune
from flows.recipe import Recipe, with_overrides
from flows.run import Run
from flows.rundir import write_manifest
from flows.stages.base import Datasets, Outcome, Sources, Tools
from flows.stages.calibrate import (
    JUDGES,
    calibrate,
    chosen_scorers,
    judges_in,
    judges_to_skip,
)
from flows.stages.decontaminate import decontaminate_stage
from flows.stages.grounding import grounding_stage
from flows.stages.ingest import ingest, stream_ingest
from flows.stages.mix import mix_stage
from flows.stages.registry import JUDGES as JUDGE_STAGES
from flows.stages.registry import ORIGINS
from flows.stages.select import select_stage
from flows.train import fine_tune, write_rounds
from generators.corpus import Passage
from generators.records import Record
from generators.seeds import Seed, load_seeds


def corpus_and_index(run: Run) -> tuple[list[Passage], Mapping[str, str]]:
    """Ingest and index the corpus; returns the passages generation draws from and texts by id.

    In memory by default; `corpus.stream`: straight into the index, generation drawing from a
    seeded sample and texts read back from index/passages.parquet (flows/stages/ingest.py)."""
    cfg = run.recipe.corpus
    if cfg.stream:
        with run.timed("corpus"):
            streamed = stream_ingest(cfg, run.dir / "index", run.encoder(), run.recipe.seed)
        run.streamed_corpus_stage(streamed)
        return streamed.sample, streamed.texts
    with run.timed("corpus"):
        corpus = ingest(cfg)
    run.corpus_stage(corpus)
    with run.timed("corpus"):
        run.index(corpus.passages)
    return corpus.passages, {p.id: p.text for p in corpus.passages}


Stage = Callable[[Tools, list[Record]], Outcome]


def judged_stages(
    recipe: Recipe,
    seeds: list[Seed],
    skipped: Mapping[str, str],
    scorers: Mapping[str, str] | None = None,
) -> list[Stage]:
    """Every judge the recipe switches on, in the registry's order, each told why its verdict is
    not to be used where calibration says so (`skipped`: verdict -> why) and which scorer
    calibration chose (`scorers`: verdict -> scorer)."""
    scorers = scorers or {}
    return [
        partial(
            judge.apply,
            seeds=seeds,
            skipped=skipped.get(judge.verdict or ""),
            scorer=scorers.get(judge.verdict or ""),
        )
        for judge in JUDGE_STAGES
        if judge.switched_on(getattr(recipe, judge.section))
    ]


def stage_chain(
    recipe: Recipe,
    seeds: list[Seed],
    texts: Mapping[str, str],
    skipped: Mapping[str, str],
    scorers: Mapping[str, str] | None = None,
) -> list[Stage]:
    """The stages after the origins, in order: grounding, the judges, the mix, selection and
    decontamination; each takes the records the one before kept."""
    return [
        partial(grounding_stage, texts=texts),
        *judged_stages(recipe, seeds, skipped, scorers),
        mix_stage,
        partial(select_stage, rating_skipped=skipped.get("rating")),
        decontaminate_stage,
    ]


def run_chain(
    run: Run, tools: Tools, stages: list[Stage], records: list[Record]
) -> tuple[list[Record], Datasets]:
    """Each stage on the records the one before kept, its outcome written by the run; returns the
    records left and the stages' extra datasets."""
    datasets: Datasets = {}
    for stage in stages:
        outcome = stage(tools, records)
        records = run.record(outcome)
        datasets.update(outcome.datasets)
    return records, datasets


def curate(recipe: Recipe, round: int = 1) -> Path:
    """One round of curation: corpus -> origins -> grounding -> judges -> mix -> select ->
    decontamination -> export."""
    started = time.time()
    run = Run.start(recipe, round)
    log = get_run_logger()
    seeds = load_seeds(run.recipe.seeds, run.recipe.seeds_max_chars)
    passages, texts = corpus_and_index(run)
    log.info(
        "round %d: %d seeds, %d passages (%d dropped), model %s; run folder %s",
        round,
        len(seeds),
        run.stages[0]["kept"],
        run.stages[0]["dropped"],
        run.model_id,
        run.dir,
    )
    tools = run.tools(texts)
    skipped, calibration = judges_to_skip(tools, log)
    run.sections["calibration"] = calibration
    sources, shares, records = Sources(seeds, passages, texts), run.recipe.mix.shares(), []
    for origin in ORIGINS:
        if shares[origin.name]:
            records += run.record(origin.make(tools, sources))
    chain = stage_chain(run.recipe, seeds, texts, skipped, chosen_scorers(calibration))
    records, datasets = run_chain(run, tools, chain, records)
    export = run.finish(records, started, datasets)
    log.info("%d records exported to %s", len(records), export)
    return run.dir


def round_recipe(recipe: Recipe, root: Path, round: int, model: str) -> Recipe:
    """Round t >= 2: its own run folder under the first one, the previous round's model, a new
    seed (so it writes new data), and no further rounds of its own."""
    return recipe.model_copy(
        update={
            "name": f"round-{round}",
            "runs_dir": str(root / "rounds"),
            "seed": recipe.seed + round - 1,
            "rounds": 1,
            "model": recipe.model.model_copy(update={"name": model}),
            "train": recipe.train.model_copy(update={"model": None}),
        }
    )


@flow(name="self-specialize")
def self_specialize(recipe: dict[str, Any], overrides: list[str] | None = None) -> str:
    """Run a recipe end to end (every round, training included); returns the run folder.

    `overrides` are `--set` assignments ("generate.prompts=8") laid over `recipe`, so a served
    deployment can be run with changes: `prefect deployment run ... --param overrides='[...]'`.
    """
    first = with_overrides(recipe, overrides or [])
    root: Path | None = None
    model, log = first.model.name, get_run_logger()
    for t in range(1, first.rounds + 1):
        r = first if t == 1 else round_recipe(first, root, t, model)
        run_dir = curate(r, t)
        root = root or run_dir
        if not first.train.enabled:
            break
        out = root / "train" / str(t)
        model = fine_tune(str(run_dir), r.model_dump(), round=t, out_dir=str(out))["next_model"]
    if first.train.enabled:
        write_rounds(root)
        log.info("after %d round(s) the model is %s", first.rounds, model)
    if first.serve.trigger_fine_tune:
        note_in_manifest(root, triggered_fine_tune=trigger_fine_tune(first, root))
    return str(root)


def note_in_manifest(run_dir: Path, **fields: Any) -> None:
    """Add fields to a finished run's manifest.json."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    write_manifest(run_dir, {**manifest, **fields})


@flow(name="calibrate-judges")
def calibrate_judges(recipe: dict[str, Any], judges: list[str] | None = None) -> dict[str, Any]:
    """Measure judges on the recipe's check set (default: the recipe's judges, else all)."""
    run = Run.start(Recipe.model_validate(recipe))
    chosen = judges or judges_in(run.recipe) or list(JUDGES)
    _, texts = corpus_and_index(run)  # the likelihood scorers read the questions' passages
    return calibrate(run.tools(texts), chosen, log=get_run_logger(), enforce=False)
