"""The Alpagasus rating judge (filters/rating.py): keep the records it scores at least
`rating.threshold`; calibrated as "score >= threshold means correct". In the model's place a
likelihood scorer may grade the answers (`rating.scorer`: passage_gain, ifd; auto: calibration
picks among them and the model's rating, flows/stages/judges/scored.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from filters.base import split
from filters.rating import (
    RATING_MAX_TOKENS,
    RATING_MIN,
    apply_ratings,
    build_rating_prompt,
    parse_rating,
    rating_sampling,
)
from flows.stages.base import Judge, Outcome, Tools, one_step
from flows.stages.judges import scored
from flows.stages.judges.passthrough import passed_through
from flows.stages.judges.scored import ScoredConfig
from generators.records import Record
from generators.seeds import Seed


class RatingConfig(ScoredConfig):
    """Alpagasus-style rating judge (filters/rating.py), or a likelihood scorer in its place."""

    enabled: bool = False
    scorer: Literal["llm", "passage_gain", "ifd", "auto"] = Field(
        "llm",
        description="llm: the model rates 1-5; passage_gain / ifd: a likelihood scorer "
        "(flows/stages/judges/scored.py); auto: calibration picks",
    )
    threshold: int = Field(RATING_MIN, ge=1, le=5, description="keep records scored >= this (1-5)")
    max_tokens: int = Field(RATING_MAX_TOKENS, ge=16)


RATING = ("filters.rating", "filters.judge_io")  # their source keys the cached batches


def scored_stage(tools: Tools, records: list[Record], scorer: str) -> Outcome:
    """Keep the records a likelihood scorer judges correct; its score goes in meta["rating"]."""
    cfg = tools.recipe.rating
    with tools.timed("rating"):
        found = scored.record_scores(tools, cfg, scorer, records)
        rated = [r.with_meta(rating=s) for r, s in zip(records, found, strict=True)]
        kept, dropped = split(rated, "rating", lambda r: scored.why_wrong(r.meta["rating"], cfg))
    return one_step("rating", len(records), kept, dropped)


def rating_stage(
    tools: Tools,
    records: list[Record],
    seeds: list[Seed] = (),
    skipped: str | None = None,
    scorer: str | None = None,
) -> Outcome:
    """Keep the records the rating judge scores at least `rating.threshold`, or those the
    likelihood `scorer` calibration chose (else the recipe's) judges correct; `skipped`: why the
    judge is not used (calibration), so every record passes."""
    cfg = tools.recipe.rating
    if skipped is not None:
        return passed_through("rating", "rating", skipped, records)
    scorer = scorer or cfg.scorer
    if scorer in scored.SCORED:
        return scored_stage(tools, records, scorer)
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
              apply=rating_stage, verdict="rating", verdicts=rating_verdicts,
              scorers={name: scored.item_verdicts("rating", name) for name in scored.SCORED},
              scorer_of=lambda cfg: cfg.scorer)  # fmt: skip
