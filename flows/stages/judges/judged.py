"""The judged stages after generation, each switched on in the recipe:

    minhash_dedup     MinHash LSH near-duplicates (filters/dedup.py)
    embedding_dedup   embedding cosine near-duplicates (filters/dedup.py)
    rating            Alpagasus rating judge, keep score >= threshold (filters/rating.py)
    s3ft              own answer / paraphrase / gold training targets (filters/s3ft.py)
    self_refine       SELF feedback + refinement, keep what its feedback accepts
                      (filters/self_refine.py); meta-skill tuples -> export/self_feedback.jsonl
    multicritique     critics, meta-critique, aggregated critiques -> export/critique_sft.jsonl,
                      revisions judged against the original -> export/dpo.jsonl

A judge that failed calibration with `on_low: skip` (flows/stages/calibrate.py:skipped_judges; its stage
gets the reason as `skipped`) decides nothing: its stage passes records through with the reason in
`meta`, S3FT compares with exact match instead, and MultiCritique still critiques but makes no
preference pairs. SELF and MultiCritique return their extra datasets with their records.

Every model call goes through `Run.llm_all` (cached batches, so reruns and resumes are free); the
prompt building and parsing are the pure functions of `filters/`, and MultiCritique's model rounds
are in `flows/stages/judges/critique_rounds.py`. Each stage writes its stage folder and keeps its verdicts in
the records' `meta`, dropped records included.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from filters import s3ft
from filters import self_refine as sr
from filters.dedup import embedding_dedup, minhash_dedup
from filters.multicritique_targets import critique_sft_row
from filters.rating import apply_ratings, build_rating_prompt, rating_sampling
from flows.export import Datasets
from flows.recipe import REPETITION_PENALTY
from flows.run import Run
from flows.stages.judges import critique_rounds as cr
from flows.stages.judges.critique_rounds import (
    MULTI as MULTI,  # flows.stages.calibrate keys its batches with it
)
from flows.stages.judges.critique_rounds import critic_names
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed, load_seeds

# The modules whose source keys each stage's cached LLM batches (see flows.tasks.code_version);
# MULTI, MultiCritique's, is with its rounds.
RATING, S3FT, SELF = (
    ("filters.rating", "filters.judge_io"),
    ("filters.s3ft", "filters.judge_io"),
    ("filters.self_refine", "filters.judge_io"),
)
# Model-written revisions repeat themselves on small models without a penalty (as in `respond`).
REWRITE_PENALTY = REPETITION_PENALTY


def log() -> logging.Logger:
    """The flow run's logger inside a flow, else the package logger (stages run in both)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("selfalign")


def first(replies: list[list[str]]) -> list[str]:
    """The one completion of each conversation: [["a"], ["b"]] -> ["a", "b"]."""
    return [samples[0] for samples in replies]


def dedup_stages(run: Run, records: list[Record]) -> list[Record]:
    cfg = run.recipe.dedup
    if cfg.minhash:
        with run.timed("minhash_dedup"):
            kept, dropped = minhash_dedup(records, cfg.jaccard, hasher=run.minhasher())
        run.stage("minhash_dedup", len(records), kept, dropped)
        records = kept
    if cfg.embedding:
        with run.timed("embedding_dedup"):
            kept, dropped = embedding_dedup(records, run.encoder().encode, cfg.cosine)
        run.stage("embedding_dedup", len(records), kept, dropped)
        records = kept
    return records


def passed_through(run: Run, stage: str, key: str, reason: str, records: list[Record]):
    """A skipped judge's stage: every record kept, meta[key] = {"skipped": reason}."""
    kept = [replace(r, meta={**r.meta, key: {"skipped": reason}}) for r in records]
    run.stage(stage, len(records), kept, [])
    log().warning("%s: not filtering, the judge is %s", stage, reason)
    return kept


def rating_stage(run: Run, records: list[Record], skipped: str | None = None) -> list[Record]:
    """Keep the records the rating judge scores at least `rating.threshold`; `skipped`: why the
    judge is not used (calibration), so every record passes."""
    cfg = run.recipe.rating
    if skipped is not None:
        return passed_through(run, "rating", "rating", skipped, records)
    with run.timed("rating"):
        prompts = [build_rating_prompt(r.instruction, r.input, r.output) for r in records]
        replies = run.llm_all("rating", prompts, rating_sampling(cfg.max_tokens), code=RATING)
        kept, dropped = apply_ratings(records, replies, cfg.threshold)
    run.stage("rating", len(records), kept, dropped)
    return kept


def gold_records(run: Run, seeds: list[Seed]) -> list[Record]:
    """Seed instances with outputs (if asked) and the recipe's gold set, as S3FT gold examples."""
    cfg = run.recipe.s3ft
    sources = [("seed", seeds)] if cfg.include_seeds else []
    if cfg.gold_set:
        sources.append(("gold_set", load_seeds(cfg.gold_set)))
    records = []
    for source, items in sources:
        for seed in items:
            for input_text, output in seed.instances:
                if output.strip():
                    meta = {**run.lineage, "source": source, "seed_id": seed.id}
                    records.append(
                        Record(
                            instruction=seed.instruction, input=input_text, output=output, meta=meta
                        )
                    )
    return records


def s3ft_judge(run: Run, skipped: str | None = None) -> str:
    """The recipe's S3FT judge, or exact match when the LLM judge is `skipped` (calibration)."""
    judge = run.recipe.s3ft.judge
    return "exact" if judge == "llm" and skipped is not None else judge


def _judge_equivalence(
    run: Run, stage: str, records: list[Record], candidates: list[str], judge: str
) -> list[dict]:
    cfg = run.recipe.s3ft
    golds = [r.output for r in records]
    replies = None
    if s3ft.needs_llm(judge):
        prompts = [
            s3ft.equivalence_prompt(r.instruction, r.input, r.output, c)
            for r, c in zip(records, candidates, strict=True)
        ]
        replies = run.llm_all(stage, prompts, s3ft.judge_sampling(cfg.judge_max_tokens), code=S3FT)
    return s3ft.verdicts(judge, golds, candidates, replies)


def s3ft_stage(run: Run, records: list[Record], skipped: str | None = None) -> list[Record]:
    """Own answer -> judged vs gold -> else paraphrase -> judged -> else gold. Drops nothing.
    `skipped`: why the LLM equivalence judge is not used (calibration): exact match instead."""
    cfg = run.recipe.s3ft
    judge = s3ft_judge(run, skipped)
    with run.timed("s3ft"):
        sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REWRITE_PENALTY)
        prompts = [s3ft.own_answer_prompt(r.instruction, r.input) for r in records]
        own = [
            reply.strip() or None
            for reply in first(run.llm_all("s3ft-own", prompts, sampling, code=S3FT))
        ]
        candidates = [o or "" for o in own]
        own_verdicts = _judge_equivalence(run, "s3ft-judge-own", records, candidates, judge)
        rest = [
            r
            for r, o, v in zip(records, own, own_verdicts, strict=True)
            if not (o and v["equivalent"])
        ]
        prompts = [s3ft.paraphrase_prompt(r.instruction, r.input, r.output) for r in rest]
        replies = first(run.llm_all("s3ft-paraphrase", prompts, sampling, code=S3FT))
        paraphrases = {r.id: s3ft.parse_paraphrase(t) for r, t in zip(rest, replies, strict=True)}
        judged = [r for r in rest if paraphrases[r.id]]
        verdicts = _judge_equivalence(
            run, "s3ft-judge-paraphrase", judged, [paraphrases[r.id] for r in judged], judge
        )
        para_verdicts = {r.id: v for r, v in zip(judged, verdicts, strict=True)}
        out = s3ft.assign_targets(records, own, own_verdicts, paraphrases, para_verdicts)
    run.stage("s3ft", len(records), out, [])
    log().info("s3ft targets: %s", s3ft.target_split(out))
    return out


def self_refine_stage(
    run: Run, records: list[Record], skipped: str | None = None
) -> tuple[list[Record], Datasets]:
    """Feedback on each response; refine the rejected ones up to max_steps; keep the accepted.

    Returns (accepted, {"self_feedback": meta-skill rows}); `skipped`: why the feedback judge is
    not used (calibration), so every record passes and there are no rows.
    """
    cfg = run.recipe.self_refine
    if skipped is not None:
        return passed_through(run, "self_refine", "self", skipped, records), {}
    order = {r.id: i for i, r in enumerate(records)}
    accepted: list[Record] = []
    dropped: list[Record] = []
    active = records
    refine_sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REWRITE_PENALTY)
    with run.timed("self_refine"):
        for step in range(cfg.max_steps + 1):
            if not active:
                break
            prompts = [sr.feedback_prompt(r.instruction, r.input, r.output) for r in active]
            sampling = sr.feedback_sampling(cfg.feedback_max_tokens)
            replies = run.llm_all(f"self-feedback-{step}", prompts, sampling, code=SELF)
            ok, to_refine, out = sr.apply_feedback(active, replies, step, cfg.max_steps)
            accepted += ok
            dropped += out
            if not to_refine:
                break
            prompts = [
                sr.refine_prompt(
                    r.instruction, r.input, r.output, r.meta["self"]["steps"][-1]["analysis"]
                )
                for r in to_refine
            ]
            replies = run.llm_all(f"self-refine-{step}", prompts, refine_sampling, code=SELF)
            active, out = sr.apply_refinements(to_refine, replies, step)
            dropped += out
        accepted.sort(key=lambda r: order[r.id])
        rows = sr.meta_skill_rows(accepted + dropped)
    run.stage("self_refine", len(records), accepted, dropped)
    return accepted, {"self_feedback": rows}


def multicritique_stage(
    run: Run, records: list[Record], skipped: str | None = None
) -> tuple[list[Record], Datasets]:
    """Critiques -> meta-critique -> aggregated critique targets; revisions -> DPO pairs.

    Returns (records, {"critique_sft": rows, "dpo": pairs}); `skipped`: why the comparison judge
    is not used (calibration): it could not tell which is better, so no revisions, no pairs.
    """
    cfg = run.recipe.multicritique
    names = critic_names(cfg.critics)
    sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REWRITE_PENALTY)
    with run.timed("multicritique"):
        items = cr.critique_round(run, records, names)
        units = cr.meta_critique_round(run, items, names)
        revisions = [] if skipped else cr.revision_round(run, items, names, sampling)
        cr.compare_round(run, revisions)
        out = [
            replace(i.record, meta={**i.record.meta, "multicritique": i.meta(skipped)})
            for i in items
        ]
        sft = [critique_sft_row(i.record, i.summary["aggregated"]) for i in items if i.critiqued]
        dpo = [pair for i in items for pair in i.pairs]
    run.stage("multicritique", len(records), out, [])
    log().info(
        "multicritique: %d critique units, %d valid, %d revisions, %d preference pairs",
        len(units),
        sum(len(i.summary["valid_units"]) for i in items),
        len(revisions),
        len(dpo),
    )
    return out, {"critique_sft": sft, "dpo": dpo}


def judge_records(
    run: Run, records: list[Record], seeds: list[Seed], skipped: Mapping[str, str]
) -> tuple[list[Record], Datasets]:
    """Every judged stage the recipe switches on, in order; `skipped`: judge -> why it is not
    used (flows/stages/calibrate.py:skipped_judges). Returns the records and the extra datasets."""
    r = run.recipe
    datasets: Datasets = {}
    records = dedup_stages(run, records)
    if r.rating.enabled:
        records = rating_stage(run, records, skipped.get("rating"))
    if r.s3ft.enabled:
        known = {x.id for x in records}
        gold = [g for g in gold_records(run, seeds) if g.id not in known]
        unique_gold = list({g.id: g for g in gold}.values())
        records = s3ft_stage(run, records + unique_gold, skipped.get("s3ft_equivalence"))
    if r.self_refine.enabled:
        records, rows = self_refine_stage(run, records, skipped.get("self_feedback"))
        datasets.update(rows)
    if r.multicritique.enabled:
        records, rows = multicritique_stage(run, records, skipped.get("comparison"))
        datasets.update(rows)
    return records, datasets
