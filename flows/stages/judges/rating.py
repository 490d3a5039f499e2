"""The Alpagasus rating judge (filters/rating.py): keep the records it scores at least
`rating.threshold`; calibrated as "score >= threshold means correct"."""

from __future__ import annotations

from pydantic import Field

from filters.rating import (
    RATING_MAX_TOKENS,
    RATING_MIN,
    apply_ratings,
    build_rating_prompt,
    parse_rating,
    rating_sampling,
)
from flows.stages.base import Judge, Outcome, Strict, Tools, one_step
from flows.stages.judges.passthrough import passed_through
from generators.records import Record
from generators.seeds import Seed


class RatingConfig(Strict):
    """Alpagasus-style rating judge (filters/rating.py)."""

    enabled: bool = False
    threshold: int = Field(RATING_MIN, ge=1, le=5, description="keep records scored >= this (1-5)")
    max_tokens: int = Field(RATING_MAX_TOKENS, ge=16)


RATING = ("filters.rating", "filters.judge_io")  # their source keys the cached batches


def rating_stage(
    tools: Tools, records: list[Record], seeds: list[Seed] = (), skipped: str | None = None
) -> Outcome:
    """Keep the records the rating judge scores at least `rating.threshold`; `skipped`: why the
    judge is not used (calibration), so every record passes."""
    cfg = tools.recipe.rating
    if skipped is not None:
        return passed_through("rating", "rating", skipped, records)
    with tools.timed("rating"):
        prompts = [build_rating_prompt(r.instruction, r.input, r.output) for r in records]
        replies = tools.llm("rating", prompts, rating_sampling(cfg.max_tokens), code=RATING)
        kept, dropped = apply_ratings(records, replies, cfg.threshold)
    return one_step("rating", len(records), kept, dropped)


def rating_verdicts(tools: Tools, items: list) -> list[bool | None]:
    """Calibration: a score >= the recipe's threshold means the answer is judged correct."""
    cfg = tools.recipe.rating
    prompts = [build_rating_prompt(it.question, "", it.answer) for it in items]
    replies = tools.llm("calibrate-rating", prompts, rating_sampling(cfg.max_tokens), code=RATING)
    parsed = [parse_rating(reply) for (reply,) in replies]
    return [None if isinstance(p, str) else p[0] >= cfg.threshold for p in parsed]


JUDGE = Judge("rating", RatingConfig, ("rating",), switched_on=lambda cfg: cfg.enabled,
              apply=rating_stage, verdict="rating", verdicts=rating_verdicts)  # fmt: skip
