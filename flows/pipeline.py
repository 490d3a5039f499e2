"""The Self-Specialization flow: seeds + domain corpus -> curated, exported instruction data.

    corpus      ingest, chunk, drop duplicate passages; index with the embedder + faiss
    generate    Self-Instruct prompts (seed + machine demos, grounded in passages) -> numbered lists
    heuristics  length, blocked words, punctuation, truncation, in-batch duplicates
    novelty     ROUGE-L against seeds and everything kept so far
    classify    is the task a classification task?
    instances   retrieve passages, then write one input for each task
    respond     answer each task grounded in its retrieved passages (or the one it came from)
    backtrans.  the model writes the question each corpus span answers (mix.backtranslation)
    reading     reading-comprehension tasks mined from passages by rules (mix.reading)
    facts       closed-book rows on the passages' atomic facts, by rules (mix.facts)
    grounding   each answer's support by its passages; a floor when grounding.min_support is set
    judged      dedup, rating, S3FT, SELF, MultiCritique when the recipe switches them on
                (flows/stages/judges/judged.py), after calibrating the judges they use (flows/stages/calibrate.py)
    mix         origins cut to the recipe's shares (when more than one is on)
    select      utility-diversity selection to a budget, when switched on (flows/stages/select.py)
    decontam.   drop records sharing a 13-gram with a held-out question or answer
    export      train.jsonl / train.parquet / hf / rejected.jsonl / extra datasets / data card

Generation runs in batches of prompts because later prompts show earlier kept tasks as demos; the
per-record stages run in batches of `batch_records`. LLM and retrieval batches are cached tasks
(flows/tasks.py), so a rerun makes no LLM calls and a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from filters.heuristics import heuristic_filter
from filters.novelty import NoveltyPool, novelty_filter
from flows.ops.serve import trigger_fine_tune
from flows.recipe import Recipe, with_overrides
from flows.run import Run
from flows.rundir import write_manifest
from flows.stages.calibrate import JUDGES, calibrate, judges_in, judges_to_skip
from flows.stages.decontaminate import decontaminate_stage
from flows.stages.ingest import ingest, stream_ingest
from flows.stages.judges.judged import judge_records
from flows.stages.mix import (
    backtranslate_records,
    facts_records,
    grounding_stage,
    mix_stage,
    reading_records,
)
from flows.stages.origins import self_instruct_steps as stages
from flows.stages.select import select_stage
from flows.train import fine_tune, write_rounds
from generators.corpus import Passage
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import load_seeds

CLASSIFY_MAX_TOKENS = 4  # "Yes" / "No" and a little slack


@task(cache_policy=NO_CACHE)
def filter_heuristics(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Self-Instruct's heuristic filters, with reasons."""
    return heuristic_filter(records)


@task(cache_policy=NO_CACHE)
def filter_novelty(records: list[Record], pool: NoveltyPool) -> tuple[list[Record], list[Record]]:
    """ROUGE-L novelty against the pool; kept records join the pool."""
    return novelty_filter(records, pool)


def generation_sampling(run: Run, batch: int) -> Sampling:
    """The generate stage's sampling for one batch, its seed derived from the recipe's."""
    cfg = run.recipe.generate
    return Sampling(
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        seed=stages.derive_seed(run.recipe.seed, "generate", batch),
    )


def generate_instructions(run: Run, seeds, passages) -> list[Record]:
    """Bootstrapping: batches of prompts, each batch filtered before the next one samples demos."""
    cfg, log = run.recipe.generate, get_run_logger()
    pool = NoveltyPool(run.recipe.novelty.threshold)
    for seed in seeds:
        pool.add(seed.id, seed.instruction)
    kept: list[Record] = []
    parsed: list[Record] = []
    unparsed: list[Record] = []
    heur_kept: list[Record] = []
    heur_out: list[Record] = []
    nov_out: list[Record] = []
    batches = math.ceil(cfg.prompts / cfg.batch_prompts)
    for b in range(batches):
        indices = range(b * cfg.batch_prompts, min(cfg.prompts, (b + 1) * cfg.batch_prompts))
        prompts = [
            stages.generation_prompt(i, cfg, run.recipe.seed, seeds, kept, passages)
            for i in indices
        ]
        with run.timed("generate"):
            conversations = [p.conversation for p in prompts]
            replies = run.llm("generate", b, conversations, generation_sampling(run, b))
            candidates, bad = stages.instructions_from_replies(prompts, replies, run.lineage)
        with run.timed("heuristics"):
            after_heuristics, dropped_h = filter_heuristics(candidates)
        with run.timed("novelty"):
            novel, dropped_n = filter_novelty(after_heuristics, pool)
        kept += novel
        parsed += candidates
        unparsed += bad
        heur_kept += after_heuristics
        heur_out += dropped_h
        nov_out += dropped_n
        log.info(
            "generate batch %d/%d: %d prompts -> %d tasks, %d pass heuristics, %d novel (total %d)",
            b + 1,
            batches,
            len(prompts),
            len(candidates),
            len(after_heuristics),
            len(novel),
            len(kept),
        )
    run.stage("generate", cfg.prompts, parsed, unparsed)
    run.stage("heuristics", len(parsed), heur_kept, heur_out)
    run.stage("novelty", len(heur_kept), kept, nov_out)
    return kept


def stage_sampling(cfg, seed: int, stage: str, batch: int) -> Sampling:
    """Sampling for a per-record stage from its recipe section, seeded per (stage, batch)."""
    return Sampling(
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        repetition_penalty=getattr(cfg, "repetition_penalty", 1.0),
        seed=stages.derive_seed(seed, stage, batch),
    )


def complete_records(run: Run, instructions: list[Record], texts: dict[str, str]) -> list[Record]:
    """Classify, retrieve, write an input, and answer each task, in batches of records."""
    r, log = run.recipe, get_run_logger()
    size = r.batch_records
    batches = [instructions[i : i + size] for i in range(0, len(instructions), size)]
    classified: list[Record] = []
    inst_kept: list[Record] = []
    inst_out: list[Record] = []
    answered: list[Record] = []
    resp_out: list[Record] = []
    for b, batch in enumerate(batches):
        with run.timed("classify"):
            replies = run.llm(
                "classify",
                b,
                stages.classification_prompts(batch),
                Sampling(max_tokens=CLASSIFY_MAX_TOKENS),
            )
            batch = stages.apply_classification(batch, replies)
        classified += batch
        with run.timed("instances"):
            hits = run.retrieve(b, [x.instruction for x in batch])
            if r.grounding.source_passage:
                batch = stages.attach_source_passages(batch, hits, r.grounding.min_score)
            else:
                batch = stages.attach_passages(batch, hits)
            sampling = stage_sampling(r.instances, r.seed, "instances", b)
            replies = run.llm("instances", b, stages.instance_prompts(batch, texts), sampling)
            with_input, dropped = stages.apply_instances(batch, replies)
        inst_kept += with_input
        inst_out += dropped
        with run.timed("respond"):
            sampling = stage_sampling(r.respond, r.seed, "respond", b)
            prompts = stages.response_prompts(with_input, texts, r.grounding.source_passage)
            replies = run.llm("respond", b, prompts, sampling)
            done, dropped = stages.apply_responses(with_input, replies)
        answered += done
        resp_out += dropped
        log.info(
            "records batch %d/%d: %d answered (total %d)",
            b + 1,
            len(batches),
            len(done),
            len(answered),
        )
    run.stage("classify", len(instructions), classified, [])
    run.stage("instances", len(classified), inst_kept, inst_out)
    run.stage("respond", len(inst_kept), answered, resp_out)
    return answered


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


def curate(recipe: Recipe, round: int = 1) -> Path:
    """One round of curation: corpus -> generate -> judge -> select -> export."""
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
    skipped = judges_to_skip(run, log)
    mix, records = run.recipe.mix, []
    if mix.self_instruct:
        instructions = generate_instructions(run, seeds, passages)
        records += complete_records(run, instructions, texts)
    if mix.backtranslation:
        records += backtranslate_records(run, passages)
    if mix.reading:
        records += reading_records(run, passages)
    if mix.facts:
        records += facts_records(run, passages)
    records = grounding_stage(run, records, texts)
    records, datasets = judge_records(run, records, seeds, skipped)
    records = mix_stage(run, records)
    records = select_stage(run, records, skipped.get("rating"))
    records = decontaminate_stage(run, records)
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
    return calibrate(run, chosen, log=get_run_logger(), enforce=False)
