"""Likelihood scorers for judges that grade one answer (rating, SELF's feedback), with no verdict
asked of the model (filters/support.py): "passage_gain" (the answer's passages make it likelier
and contradict none of its tokens) and "ifd" (its question makes it likelier). A section that
uses them inherits `ScoredConfig`'s thresholds.

    record_scores(tools, records, scorer) -> one {"scorer", "correct", ...} per record
    item_verdicts(scorer)                 -> calibration verdicts on the check items (their
                                             passages retrieved for the question)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from filters import support
from filters.judge_io import user_message
from flows.stages.base import Strict, Tools, Verdicts
from flows.stages.likelihood import ifds, passage_gains, passages_for, retrieved_texts
from generators.records import Record

SCORED = ("passage_gain", "ifd")


class ScoredConfig(Strict):
    """The thresholds of the likelihood scorers (filters/support.py)."""

    min_gain: float = Field(
        support.MIN_GAIN, description="passage_gain: mean nats per answer token its passages add"
    )
    max_drop: float = Field(
        support.MAX_DROP, ge=0, description="passage_gain: the most nats one token may lose"
    )
    max_ifd: float = Field(support.MAX_IFD, gt=0, description="ifd: correct below this IFD")


def scores(
    tools: Tools, cfg: ScoredConfig, scorer: str, prompts: list[str], answers: list[str],
    contexts: list[list[str]],
) -> list[dict[str, Any]]:  # fmt: skip
    """One {"scorer", "correct", "gain", "worst"} or {"scorer", "correct", "ifd"} per answer."""
    if not prompts:
        return []
    if scorer == "ifd":
        return [
            {"scorer": scorer, "correct": support.ifd_verdict(x, cfg.max_ifd), "ifd": round(x, 4)}
            for x in ifds(tools, prompts, answers)
        ]
    if scorer != "passage_gain":
        raise ValueError(f"unknown scorer {scorer!r}: choose one of {', '.join(SCORED)}")
    return [
        {"scorer": scorer, "correct": support.gain_verdict(g, cfg.min_gain, cfg.max_drop), **g}
        for g in passage_gains(tools, prompts, answers, contexts)
    ]


def record_scores(
    tools: Tools, cfg: ScoredConfig, scorer: str, records: list[Record]
) -> list[dict[str, Any]]:
    """Each record's score: its exported prompt and output, its own passages."""
    contexts = passages_for(tools, records) if scorer == "passage_gain" else [[]] * len(records)
    prompts = [user_message(r) for r in records]
    return scores(tools, cfg, scorer, prompts, [r.output for r in records], contexts)


def why_wrong(score: dict[str, Any], cfg: ScoredConfig) -> str | None:
    """The drop reason of a score judged wrong: 'scorer_ifd_over_max', 'scorer_passage_gain_low'
    or 'scorer_passage_contradicts' (a token the passages make much less likely)."""
    if score["correct"]:
        return None
    if score["scorer"] == "ifd":
        return "scorer_ifd_over_max"
    if score["worst"] > cfg.max_drop:
        return "scorer_passage_contradicts"
    return "scorer_passage_gain_low"


def item_verdicts(section: str, scorer: str) -> Verdicts:
    """Calibration by `scorer` under the recipe's `section` thresholds: is each check item's
    answer correct? The item's passages are retrieved for its question."""

    def verdicts(tools: Tools, items: list) -> list[bool | None]:
        cfg = getattr(tools.recipe, section)
        questions = [it.question for it in items]
        contexts = retrieved_texts(tools, questions) if scorer == "passage_gain" else []
        answers = [it.answer for it in items]
        found = scores(tools, cfg, scorer, questions, answers, contexts or [[]] * len(items))
        return [s["correct"] for s in found]

    return verdicts
