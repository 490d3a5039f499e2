"""SELF self-feedback and self-refinement (filters/self_refine.py): feedback on each response,
refinements of the rejected ones up to `max_steps`, the accepted kept; meta-skill tuples go to
export/self_feedback.jsonl. Calibrated on SELF's own verdict of an answer; a likelihood scorer
may judge in its place (`self_refine.scorer`, flows/stages/judges/scored.py), and a refinement is
kept only where its support does not fall (`self_refine.support_guard`)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Literal

from pydantic import Field

from filters import self_refine as sr
from filters.self_refine import FEEDBACK_MAX_TOKENS
from filters.support import support, support_holds
from flows.stages.base import REPETITION_PENALTY, Judge, Outcome, Step, Tools
from flows.stages.judges import scored
from flows.stages.judges.passthrough import passed_through
from flows.stages.judges.scored import ScoredConfig
from flows.stages.likelihood import named_texts
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed

# The modules whose source keys the stage's cached LLM batches (see flows.tasks.code_version).
SELF = ("filters.self_refine", "filters.judge_io")


class SelfRefineConfig(ScoredConfig):
    """SELF self-feedback and self-refinement (filters/self_refine.py)."""

    enabled: bool = False
    scorer: Literal["llm", "passage_gain", "ifd", "auto"] = Field(
        "llm",
        description="who judges a response: llm (the model's own feedback), passage_gain / ifd "
        "(a likelihood scorer, flows/stages/judges/scored.py), auto (calibration picks)",
    )
    support_guard: bool = Field(
        True,
        description="keep a refinement only where its support (filters/support.py) is no "
        "lower than the response it replaces",
    )
    max_steps: int = Field(1, ge=0, le=5, description="refinements before giving up")
    max_tokens: int = Field(160, ge=8, description="refined responses")
    feedback_max_tokens: int = Field(FEEDBACK_MAX_TOKENS, ge=16)


def scored_feedback(score: dict) -> str:
    """A likelihood scorer's verdict as a feedback reply apply_feedback parses:
    {"scorer": "ifd", "correct": False, "ifd": 1.2} -> '{"analysis": "...", "verdict": ...}'."""
    if score["scorer"] == "ifd":
        analysis = f"The task makes this answer {'more' if score['correct'] else 'no more'} likely"
        analysis += f" (IFD {score['ifd']})."
    elif score["correct"]:
        analysis = f"The passages back this answer (gain {score['gain']} nats per token)."
    else:
        analysis = (
            f"The passages do not back this answer (gain {score['gain']} nats per token, a "
            f"token contradicted by {score['worst']}): state only what the passages say."
        )
    verdict = "correct" if score["correct"] else "incorrect"
    return json.dumps({"analysis": analysis, "verdict": verdict})


def feedback_replies(
    tools: Tools, step: int, records: list[Record], scorer: str
) -> list[list[str]]:
    """One feedback reply per record: the model's own (scorer "llm") or a scorer's verdict."""
    cfg = tools.recipe.self_refine
    if scorer in scored.SCORED:
        return [[scored_feedback(x)] for x in scored.record_scores(tools, cfg, scorer, records)]
    prompts = [sr.feedback_prompt(r.instruction, r.input, r.output) for r in records]
    sampling = sr.feedback_sampling(cfg.feedback_max_tokens)
    return tools.llm(f"self-feedback-{step}", prompts, sampling, code=SELF)


def support_of(tools: Tools, record: Record, text: str) -> float:
    """`text`'s support against the record's passages (filters/support.py)."""
    return support(text, named_texts(tools, record))


def guard_support(
    tools: Tools, before: list[Record], after: list[Record]
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): a refinement whose support falls below its response's is dropped with
    'refinement_lowers_support' (both scores go in meta["self"])."""
    old = {r.id: r for r in before}
    kept, dropped = [], []
    for r in after:
        was, now = support_of(tools, r, old[r.id].output), support_of(tools, r, r.output)
        self_meta = {**r.meta["self"], "support_before": was, "support_after": now}
        r = replace(r, meta={**r.meta, "self": self_meta})
        if support_holds(was, now):
            kept.append(r)
        else:
            dropped.append(r.drop("self_refine", "refinement_lowers_support"))
    return kept, dropped


def self_refine_stage(
    tools: Tools,
    records: list[Record],
    seeds: list[Seed] = (),
    skipped: str | None = None,
    scorer: str | None = None,
) -> Outcome:
    """Feedback on each response; refine the rejected ones up to max_steps; keep the accepted.

    Its dataset: {"self_feedback": meta-skill rows}; `skipped`: why the feedback judge is not used
    (calibration), so every record passes and there are no rows; `scorer`: who judges (the one
    calibration chose, else the recipe's).
    """
    cfg = tools.recipe.self_refine
    if skipped is not None:
        return passed_through("self_refine", "self", skipped, records)
    scorer = scorer or cfg.scorer
    order = {r.id: i for i, r in enumerate(records)}
    accepted: list[Record] = []
    dropped: list[Record] = []
    active = records
    refine_sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REPETITION_PENALTY)
    with tools.timed("self_refine"):
        for step in range(cfg.max_steps + 1):
            if not active:
                break
            replies = feedback_replies(tools, step, active, scorer)
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
            replies = tools.llm(f"self-refine-{step}", prompts, refine_sampling, code=SELF)
            active, out = sr.apply_refinements(to_refine, replies, step)
            dropped += out
            if cfg.support_guard:
                active, out = guard_support(tools, to_refine, active)
                dropped += out
        accepted.sort(key=lambda r: order[r.id])
        rows = sr.meta_skill_rows(accepted + dropped)
    steps = [Step("self_refine", len(records), accepted, dropped)]
    return Outcome(accepted, steps, datasets={"self_feedback": rows})


def feedback_verdicts(tools: Tools, items: list) -> list[bool | None]:
    """Calibration: SELF's own verdict on each item's answer."""
    cfg = tools.recipe.self_refine
    prompts = [sr.feedback_prompt(it.question, "", it.answer) for it in items]
    sampling = sr.feedback_sampling(cfg.feedback_max_tokens)
    replies = tools.llm("calibrate-self", prompts, sampling, code=SELF)
    parsed = [sr.parse_feedback(reply) for (reply,) in replies]
    return [None if isinstance(p, str) else p["correct"] for p in parsed]


JUDGE = Judge("self_refine", SelfRefineConfig, ("self_refine",),
              switched_on=lambda cfg: cfg.enabled, apply=self_refine_stage,
              verdict="self_feedback", verdicts=feedback_verdicts,
              scorers={name: scored.item_verdicts("self_refine", name) for name in scored.SCORED},
              scorer_of=lambda cfg: cfg.scorer)  # fmt: skip
