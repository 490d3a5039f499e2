"""Deployments: the curation flow and the fine-tune flow served for a recipe (`selfalign serve`).

    self-specialize/<recipe name>   the recipe as its default parameter, on the recipe's (or the
                                    command's) cron or interval schedule, if any
    fine-tune/<recipe name>         trains on a finished run folder (parameter `run_dir`)

`prefect.serve` runs both in the serving process: it polls the Prefect server for their scheduled
and triggered runs and executes each in a subprocess. `prefect deployment run
'self-specialize/<name>'` starts one by hand; with `serve.trigger_fine_tune` a finished curation
run starts the fine-tune deployment itself (flows/ops/trigger.py, called by the flow).
"""

from __future__ import annotations

from typing import Any

from flows.ops.trigger import TAGS
from flows.recipe import Recipe


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
    from flows.pipeline import self_specialize  # heavy: prefect
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
