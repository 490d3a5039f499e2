"""`selfalign serve` and `selfalign ui`: scheduled deployments and the Prefect dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.checks import check_inputs
from flows.cli.common import SetOpt, setup_logging, stderr
from generators.errors import SelfAlignError


def serve(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML (see flows/recipes/).")],
    cron: Annotated[
        str | None, typer.Option(help="Schedule, e.g. '0 3 * * *' (default: recipe serve.cron).")
    ] = None,
    interval: Annotated[
        float | None,
        typer.Option(help="Schedule every N seconds instead (default: recipe serve.interval)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Flow runs executing at once at most.")] = 1,
    set_: SetOpt("serve.trigger_fine_tune=true") = None,
) -> None:
    """Serve the curation and fine-tune flows as deployments (schedules, triggers) until Ctrl-C."""
    from flows.recipe import check_cron, load_recipe

    setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    if cron and interval:
        raise SelfAlignError("--cron and --interval: give one schedule, not both")
    if cron:
        try:
            check_cron(cron)
        except ValueError as e:
            raise SelfAlignError(f"--cron: {e}") from None
    if interval is not None and interval <= 0:
        raise SelfAlignError(f"--interval: must be > 0 seconds, got {interval}")
    if limit < 1:
        raise SelfAlignError(f"--limit: must be >= 1, got {limit}")
    check_inputs(loaded)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise SelfAlignError(
            "selfalign serve needs a Prefect server: start one with `selfalign ui` (or `make ui`) "
            "and export the PREFECT_API_URL it prints"
        )
    from flows.deployments import schedule, serve_recipe
    from flows.ops.trigger import deployment_names

    curate_name, train_name = deployment_names(loaded)
    when = schedule(loaded, cron, interval) or {"schedule": "none (runs when started)"}
    console = stderr()
    console.print(f"serving {curate_name} ({', '.join(f'{k} {v}' for k, v in when.items())})")
    console.print(f"serving {train_name} (parameter run_dir)")
    console.print(f"start a run:  prefect deployment run '{curate_name}'")
    console.print(
        f"fine-tune:    prefect deployment run '{train_name}' --param run_dir=RUNS/{loaded.name}"
    )
    console.print(f"Prefect API:  {PREFECT_API_URL.value()}  (Ctrl-C stops serving)")
    serve_recipe(loaded, cron, interval, limit)


def ui(
    host: Annotated[str, typer.Option(help="Address the server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the dashboard and its API.")] = 4200,
) -> None:
    """Start the Prefect server + dashboard (Ctrl-C stops it); prints the PREFECT_API_URL to use."""
    from flows.ops.ui import serve

    serve(host, port, echo=typer.echo)
