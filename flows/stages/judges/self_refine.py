"""SELF self-feedback and self-refinement (filters/self_refine.py): feedback on each response,
refinements of the rejected ones up to `max_steps`, the accepted kept; meta-skill tuples go to
export/self_feedback.jsonl. Calibrated on SELF's own verdict of an answer."""

from __future__ import annotations

from pydantic import Field

from filters import self_refine as sr
from filters.self_refine import FEEDBACK_MAX_TOKENS
from flows.stages.base import REPETITION_PENALTY, Judge, Outcome, Step, Strict, Tools
from flows.stages.judges.passthrough import passed_through
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed

# The modules whose source keys the stage's cached LLM batches (see flows.tasks.code_version).
SELF = ("filters.self_refine", "filters.judge_io")


class SelfRefineConfig(Strict):
    """SELF self-feedback and self-refinement (filters/self_refine.py)."""

    enabled: bool = False
    max_steps: int = Field(1, ge=0, le=5, description="refinements before giving up")
    max_tokens: int = Field(160, ge=8, description="refined responses")
    feedback_max_tokens: int = Field(FEEDBACK_MAX_TOKENS, ge=16)


def self_refine_stage(
    tools: Tools, records: list[Record], seeds: list[Seed] = (), skipped: str | None = None
) -> Outcome:
    """Feedback on each response; refine the rejected ones up to max_steps; keep the accepted.

    Its dataset: {"self_feedback": meta-skill rows}; `skipped`: why the feedback judge is not used
    (calibration), so every record passes and there are no rows.
    """
    cfg = tools.recipe.self_refine
    if skipped is not None:
        return passed_through("self_refine", "self", skipped, records)
    order = {r.id: i for i, r in enumerate(records)}
    accepted: list[Record] = []
    dropped: list[Record] = []
    active = records
    refine_sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REPETITION_PENALTY)
    with tools.timed("self_refine"):
        for step in range(cfg.max_steps + 1):
            if not active:
                break
            prompts = [sr.feedback_prompt(r.instruction, r.input, r.output) for r in active]
            sampling = sr.feedback_sampling(cfg.feedback_max_tokens)
            replies = tools.llm(f"self-feedback-{step}", prompts, sampling, code=SELF)
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
              verdict="self_feedback", verdicts=feedback_verdicts)  # fmt: skip
