"""Triggering the fine-tune deployment from a finished curation run (`serve.trigger_fine_tune`),
and the deployments' names (flows/deployments.py serves them)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flows.recipe import Recipe
from generators.errors import first_line

CURATE_FLOW, TRAIN_FLOW = "self-specialize", "fine-tune"
TAGS = ["selfalign"]

log = logging.getLogger("selfalign")


def deployment_names(recipe: Recipe) -> tuple[str, str]:
    """('self-specialize/<name>', 'fine-tune/<name>'): what `prefect deployment run` takes."""
    return f"{CURATE_FLOW}/{recipe.name}", f"{TRAIN_FLOW}/{recipe.name}"


def fine_tune_target(recipe: Recipe) -> str:
    return recipe.serve.fine_tune_deployment or deployment_names(recipe)[1]


def trigger_fine_tune(recipe: Recipe, run_dir: Path) -> dict[str, Any]:
    """Start the fine-tune deployment on `run_dir` without waiting; what happened, for the manifest.

    A missing deployment or server is logged and returned as an error: the curated data is already
    exported, so the curation run does not fail over it. An empty export triggers nothing.
    """
    from prefect.deployments import run_deployment  # heavy: prefect

    target = fine_tune_target(recipe)
    if (run_dir / "export" / "train.jsonl").stat().st_size == 0:
        log.warning("not triggering %s: the run exported no records", target)
        return {"deployment": target, "skipped": "no records exported"}
    try:
        flow_run = run_deployment(
            target,
            parameters={"run_dir": str(run_dir), "recipe": recipe.model_dump()},
            timeout=0,
            as_subflow=False,
            tags=TAGS,
        )
    except Exception as e:  # ObjectNotFound, no server, refused: report, do not lose the run
        error = f"{type(e).__name__}: {first_line(e) or 'no detail'}"
        log.error("could not trigger %s: %s (is `selfalign serve` running?)", target, error)
        return {"deployment": target, "error": error}
    log.info("triggered %s: flow run %s", target, flow_run.id)
    return {"deployment": target, "flow_run_id": str(flow_run.id)}
