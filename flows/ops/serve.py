"""Deployments: the curation flow and the fine-tune flow served for a recipe (`selfalign serve`).

    self-specialize/<recipe name>   the recipe as its default parameter, on the recipe's (or the
                                    command's) cron or interval schedule, if any
    fine-tune/<recipe name>         trains on a finished run folder (parameter `run_dir`)

`prefect.serve` runs both in the serving process: it polls the Prefect server for their scheduled
and triggered runs and executes each in a subprocess. `prefect deployment run
'self-specialize/<name>'` starts one by hand; with `serve.trigger_fine_tune` a finished curation
run starts the fine-tune deployment itself (`trigger_fine_tune` below, called by the flow).
"""

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


def schedule(recipe: Recipe, cron: str | None, interval: float | None) -> dict[str, Any]:
    """to_deployment's schedule arguments: the command's flags win over the recipe's serve:."""
    if cron or interval:
        return {"cron": cron} if cron else {"interval": interval}
    if recipe.serve.cron:
        return {"cron": recipe.serve.cron}
    if recipe.serve.interval:
        return {"interval": recipe.serve.interval}
    return {}


def deployments(recipe: Recipe, cron: str | None = None, interval: float | None = None) -> list:
    """The two RunnerDeployments for `recipe` (not yet served)."""
    from flows.pipeline import self_specialize  # heavy: prefect; cycle: it imports flows.ops.serve
    from flows.train import fine_tune  # heavy: prefect

    dump = recipe.model_dump()
    curate = self_specialize.to_deployment(
        name=recipe.name,
        parameters={"recipe": dump},
        description=f"Curate instruction data with recipe {recipe.name!r}",
        tags=TAGS,
        **schedule(recipe, cron, interval),
    )
    train = fine_tune.to_deployment(
        name=recipe.name,
        parameters={"recipe": dump},
        description=f"Fine-tune on a finished {recipe.name!r} run (parameter run_dir)",
        tags=TAGS,
    )
    return [curate, train]


def serve_recipe(
    recipe: Recipe, cron: str | None = None, interval: float | None = None, limit: int = 1
) -> None:
    """Serve both deployments until interrupted; at most `limit` runs execute at a time."""
    from prefect import serve  # heavy: prefect

    serve(*deployments(recipe, cron, interval), limit=limit, print_starting_message=False)


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
