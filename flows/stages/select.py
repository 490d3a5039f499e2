"""The offline selection stage: utility-diversity selection to a budget (filters/selection.py).

    utility   "rating": the rating judge's score in meta["rating"]
              "ifd": instruction-following difficulty under the recipe's model (trainers/evaluate),
                     one cached task over all records; the raw score goes in meta["ifd"]
    vectors   the recipe's embedder over instruction + input + output (dedup's record_text)
    select    filters.selection.select_diverse(budget, tau) -> stage "select"

Switched off (the default), the stage passes records through and writes no stage folder.
"""

from __future__ import annotations

import math

from filters.dedup import record_text
from filters.judge_io import user_message
from filters.selection import IFD_MAX, OVER_BUDGET, ifd_utilities, rating_utilities, select_diverse
from flows.stages.base import Outcome, Step, Tools, log
from flows.stages.likelihood import ifds
from flows.tasks import get_embedder
from generators.records import Record


def with_ifd(tools: Tools, records: list[Record]) -> list[Record]:
    """Records with meta["ifd"] = their IFD under the recipe's model (cached by content)."""
    scores = ifds(tools, [user_message(r) for r in records], [r.output for r in records])
    return [r.with_meta(ifd=s) for r, s in zip(records, scores, strict=True)]


def utilities_of(
    tools: Tools, records: list[Record], rating_skipped: str | None = None
) -> tuple[list[Record], list[float]]:
    """(records, one utility each) for the recipe's `select.utility`; IFD adds meta["ifd"].
    `rating_skipped`: why the rating judge was not used (calibration): every rating is 0.0."""
    if tools.recipe.select.utility == "ifd":
        records = with_ifd(tools, records)
        utilities = ifd_utilities(records)
        if last := sum(u == 0.0 for u in utilities):
            log().info("select: %d records with IFD missing or > %s are ranked last", last, IFD_MAX)
        return records, utilities
    if rating_skipped is not None:
        log().warning(
            "select: the rating judge is %s, so every rating utility is 0.0", rating_skipped
        )
    return records, rating_utilities(records)


def budget_of(cfg, n: int) -> int:
    """Records kept at most: `budget`, or `fraction` of the `n` given when that is smaller
    (rounded up): fraction 0.5 of 7 -> 4."""
    if cfg.fraction is None:
        return cfg.budget
    return max(1, min(cfg.budget, math.ceil(cfg.fraction * n)))


def select_stage(tools: Tools, records: list[Record], rating_skipped: str | None = None) -> Outcome:
    """Keep at most `select.budget` high-utility records (or `select.fraction` of them), none
    closer than `select.tau`; `rating_skipped`: why the rating judge was not used
    (calibrate.py:skipped_judges)."""
    cfg = tools.recipe.select
    if not cfg.enabled:
        return Outcome(records)
    n_in = len(records)
    kept: list[Record] = []
    dropped: list[Record] = []
    with tools.timed("select"):
        if records:
            records, utilities = utilities_of(tools, records, rating_skipped)
            vectors = get_embedder(tools.recipe.embedder).encode([record_text(r) for r in records])
            budget = budget_of(cfg, len(records))
            kept, dropped = select_diverse(records, utilities, vectors, budget, cfg.tau)
    over = sum(r.meta["drop_reason"] == OVER_BUDGET for r in dropped)
    log().info(
        "select: kept %d of %d by %s (budget %d, tau %.2f); %d too similar, %d over budget",
        len(kept),
        n_in,
        cfg.utility,
        budget_of(cfg, n_in),
        cfg.tau,
        len(dropped) - over,
        over,
    )
    return Outcome(kept, [Step("select", n_in, kept, dropped)])
