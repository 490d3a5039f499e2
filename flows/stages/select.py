"""The offline selection stage: utility-diversity selection to a budget (filters/selection.py).

    utility   "rating": the rating judge's score in meta["rating"]
              "ifd": instruction-following difficulty under the recipe's model (trainers/evaluate),
                     one cached task over all records; the raw score goes in meta["ifd"]
    vectors   the recipe's embedder over instruction + input + output (dedup's record_text)
    select    filters.selection.select_diverse(budget, tau) -> stage "select"

Switched off (the default), the stage passes records through and writes no stage folder.
"""

from __future__ import annotations

from prefect import task

from filters.dedup import record_text
from filters.judge_io import user_message
from filters.selection import IFD_MAX, OVER_BUDGET, ifd_utilities, rating_utilities, select_diverse
from flows.stages.base import Outcome, Step, Tools, log
from flows.tasks import code_version, content_key, get_embedder, given_key
from generators.models import resolve_model
from generators.records import Record

# The module whose source keys the cached IFD scores (see flows.tasks.code_version).
IFD_CODE = ("trainers.evaluate",)


@task(cache_key_fn=given_key, persist_result=True)
def ifd_batch(key: str, model_path: str, prompts: list[str], answers: list[str]) -> list[float]:
    """IFD of each answer given its prompt, under the model in `model_path` (freed afterwards)."""
    from trainers.evaluate import ifd_scores, load_model, release_memory

    model, tokenizer = load_model(model_path)
    try:
        return ifd_scores(model, tokenizer, prompts, answers)
    finally:
        del model, tokenizer
        release_memory()


def with_ifd(tools: Tools, records: list[Record]) -> list[Record]:
    """Records with meta["ifd"] = their IFD under the recipe's model (cached by content)."""
    prompts = [user_message(r) for r in records]
    answers = [r.output for r in records]
    key = content_key("ifd", tools.model_id, prompts, answers, code_version(IFD_CODE))
    task_ = ifd_batch.with_options(result_storage=tools.cache, task_run_name="ifd")
    scores = task_(
        key=key,
        model_path=resolve_model(tools.recipe.model.name).path,
        prompts=prompts,
        answers=answers,
    )
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


def select_stage(tools: Tools, records: list[Record], rating_skipped: str | None = None) -> Outcome:
    """Keep at most `select.budget` high-utility records, none closer than `select.tau`;
    `rating_skipped`: why the rating judge was not used (calibrate.py:skipped_judges)."""
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
            kept, dropped = select_diverse(records, utilities, vectors, cfg.budget, cfg.tau)
    over = sum(r.meta["drop_reason"] == OVER_BUDGET for r in dropped)
    log().info(
        "select: kept %d of %d by %s (budget %d, tau %.2f); %d too similar, %d over budget",
        len(kept),
        n_in,
        cfg.utility,
        cfg.budget,
        cfg.tau,
        len(dropped) - over,
        over,
    )
    return Outcome(kept, [Step("select", n_in, kept, dropped)])
