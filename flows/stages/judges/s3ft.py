"""S3FT, selective self-to-supervised fine-tuning targets (filters/s3ft.py): the model's own
answer where a judge finds it equivalent to the gold, else its paraphrase of the gold where that
is equivalent, else the gold. Drops nothing. Seed instances with outputs and the recipe's gold
set join as gold examples."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from filters import s3ft
from flows.stages.base import (
    AUTO,
    PATH_FIELD,
    REPETITION_PENALTY,
    Judge,
    Outcome,
    Strict,
    Tools,
    log,
    one_step,
)
from flows.stages.judges.passthrough import first
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed, load_seeds

# The modules whose source keys the stage's cached LLM batches (see flows.tasks.code_version).
S3FT = ("filters.s3ft", "filters.judge_io")
SCORED = ("f1", "cosine")  # the equivalence scorers (filters/s3ft.py)


class S3FTConfig(Strict):
    """Selective self-to-supervised targets (filters/s3ft.py); never drops a record."""

    enabled: bool = False
    judge: Literal["exact", "numeric", "llm", "f1", "cosine", "auto"] = Field(
        "llm",
        description="equivalence judge of the model's own answer vs the gold: a rule (exact, "
        "numeric), the model's verdict (llm), a scorer (f1: token F1, cosine: the embedder's; "
        "both also need the numbers and the polarity to agree) or auto (calibration picks)",
    )
    min_f1: float = Field(s3ft.MIN_F1, gt=0, le=1, description="token F1 the f1 scorer needs")
    min_cosine: float = Field(
        s3ft.MIN_COSINE, gt=0, le=1, description="cosine the cosine scorer needs"
    )
    max_tokens: int = Field(160, ge=8, description="own answers and paraphrases")
    judge_max_tokens: int = Field(s3ft.JUDGE_MAX_TOKENS, ge=16)
    include_seeds: bool = Field(False, description="add seed instances with outputs as gold")
    gold_set: str | None = Field(
        None, description="extra gold examples, in any seeds format", json_schema_extra=PATH_FIELD
    )


def gold_records(tools: Tools, seeds: list[Seed]) -> list[Record]:
    """Seed instances with outputs (if asked) and the recipe's gold set, as S3FT gold examples."""
    cfg = tools.recipe.s3ft
    sources = [("seed", seeds)] if cfg.include_seeds else []
    if cfg.gold_set:
        sources.append(("gold_set", load_seeds(cfg.gold_set)))
    records = []
    for source, items in sources:
        for seed in items:
            for input_text, output in seed.instances:
                if output.strip():
                    meta = {**tools.lineage, "source": source, "seed_id": seed.id}
                    records.append(
                        Record(
                            instruction=seed.instruction, input=input_text, output=output, meta=meta
                        )
                    )
    return records


def s3ft_judge(tools: Tools, skipped: str | None = None, scorer: str | None = None) -> str:
    """The S3FT judge: calibration's `scorer`, else the recipe's; exact match when calibration
    `skipped` the judge (or found no scorer for `auto`)."""
    judge = scorer or tools.recipe.s3ft.judge
    if skipped is not None or judge == AUTO:
        return "exact"
    return judge


def scored_equivalence(tools: Tools, judge: str, golds: list[str], candidates: list[str]):
    """The f1 or cosine scorer's verdicts ({"judge", "equivalent", "f1"|"cosine"}) per pair."""
    cfg = tools.recipe.s3ft
    if judge == "f1":
        pairs = zip(golds, candidates, strict=True)
        return [s3ft.f1_equivalent(c, g, cfg.min_f1) for g, c in pairs]
    if not golds:
        return []
    encoder = tools.encoder()
    cosines = (encoder.encode(golds) * encoder.encode([c or " " for c in candidates])).sum(-1)
    return [
        s3ft.cosine_equivalent(c, g, float(x), cfg.min_cosine)
        for g, c, x in zip(golds, candidates, cosines, strict=True)
    ]


def _judge_equivalence(
    tools: Tools, stage: str, records: list[Record], candidates: list[str], judge: str
) -> list[dict]:
    cfg = tools.recipe.s3ft
    golds = [r.output for r in records]
    if judge in SCORED:
        return scored_equivalence(tools, judge, golds, candidates)
    replies = None
    if s3ft.needs_llm(judge):
        prompts = [
            s3ft.equivalence_prompt(r.instruction, r.input, r.output, c)
            for r, c in zip(records, candidates, strict=True)
        ]
        replies = tools.llm(stage, prompts, s3ft.judge_sampling(cfg.judge_max_tokens), code=S3FT)
    return s3ft.verdicts(judge, golds, candidates, replies)


def s3ft_targets(
    tools: Tools, records: list[Record], skipped: str | None = None, scorer: str | None = None
) -> Outcome:
    """Own answer -> judged vs gold -> else paraphrase -> judged -> else gold. Drops nothing.
    `skipped`: why the equivalence judge is not used (calibration): exact match instead;
    `scorer`: the judge calibration chose."""
    cfg = tools.recipe.s3ft
    judge = s3ft_judge(tools, skipped, scorer)
    with tools.timed("s3ft"):
        sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REPETITION_PENALTY)
        prompts = [s3ft.own_answer_prompt(r.instruction, r.input) for r in records]
        own = [
            reply.strip() or None
            for reply in first(tools.llm("s3ft-own", prompts, sampling, code=S3FT))
        ]
        candidates = [o or "" for o in own]
        own_verdicts = _judge_equivalence(tools, "s3ft-judge-own", records, candidates, judge)
        rest = [
            r
            for r, o, v in zip(records, own, own_verdicts, strict=True)
            if not (o and v["equivalent"])
        ]
        prompts = [s3ft.paraphrase_prompt(r.instruction, r.input, r.output) for r in rest]
        replies = first(tools.llm("s3ft-paraphrase", prompts, sampling, code=S3FT))
        paraphrases = {r.id: s3ft.parse_paraphrase(t) for r, t in zip(rest, replies, strict=True)}
        judged = [r for r in rest if paraphrases[r.id]]
        verdicts = _judge_equivalence(
            tools, "s3ft-judge-paraphrase", judged, [paraphrases[r.id] for r in judged], judge
        )
        para_verdicts = {r.id: v for r, v in zip(judged, verdicts, strict=True)}
        out = s3ft.assign_targets(records, own, own_verdicts, paraphrases, para_verdicts)
    log().info("s3ft targets (judge %s): %s", judge, s3ft.target_split(out))
    return one_step("s3ft", len(records), out, [])


def s3ft_stage(
    tools: Tools,
    records: list[Record],
    seeds: list[Seed] = (),
    skipped: str | None = None,
    scorer: str | None = None,
) -> Outcome:
    """The records and the gold examples not among them, each given its S3FT target."""
    known = {x.id for x in records}
    gold = [g for g in gold_records(tools, seeds) if g.id not in known]
    unique_gold = list({g.id: g for g in gold}.values())
    return s3ft_targets(tools, records + unique_gold, skipped, scorer)


def equivalence_verdicts(tools: Tools, items: list) -> list[bool | None]:
    """Calibration: is the item's answer equivalent to its reference answer?"""
    cfg = tools.recipe.s3ft
    prompts = [s3ft.equivalence_prompt(it.question, "", it.reference, it.answer) for it in items]
    sampling = s3ft.judge_sampling(cfg.judge_max_tokens)
    replies = tools.llm("calibrate-s3ft", prompts, sampling, code=S3FT)
    parsed = [s3ft.parse_equivalence(reply) for (reply,) in replies]
    return [p if isinstance(p, bool) else None for p in parsed]


def scored_verdicts(judge: str):
    """Calibration by a scorer: is the item's answer equivalent to its reference answer?"""

    def verdicts(tools: Tools, items: list) -> list[bool | None]:
        golds, answers = [it.reference for it in items], [it.answer for it in items]
        return [v["equivalent"] for v in scored_equivalence(tools, judge, golds, answers)]

    return verdicts


JUDGE = Judge("s3ft", S3FTConfig, ("s3ft",), switched_on=lambda cfg: cfg.enabled, apply=s3ft_stage,
              verdict="s3ft_equivalence", verdicts=equivalence_verdicts,
              scorers={name: scored_verdicts(name) for name in SCORED},
              scorer_of=lambda cfg: cfg.judge)  # fmt: skip
