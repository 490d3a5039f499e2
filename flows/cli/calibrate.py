"""`selfalign calibrate`: measure the judges on a labelled check set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.checks import check_model, check_runs_dir, prefect_defaults
from flows.cli.common import SetOpt, setup_logging
from generators.errors import SelfAlignError


def calibrate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with calibration.check_set.")],
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            "-j",
            help="rating | s3ft_equivalence | self_feedback | comparison; repeat for several "
            "(default: the recipe's judges, else all)",
        ),
    ] = None,
    set_: SetOpt("calibration.size=20") = None,
) -> None:
    """Measure judges on a labelled check set (correct + corrupted answers); prints metrics."""
    from filters.calibration import load_qa
    from flows.recipe import load_recipe

    setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    from flows.stages.calibrate import JUDGES

    for name in judge or []:
        if name not in JUDGES:
            raise SelfAlignError(f"--judge {name!r}: choose one of {', '.join(JUDGES)}")
    if not loaded.calibration.check_set:
        raise SelfAlignError(f"{recipe}: 'calibration.check_set' is not set")
    load_qa(loaded.calibration.check_set)
    check_model(loaded)
    check_runs_dir(loaded)
    prefect_defaults()
    from filters.calibration import summary_line
    from flows.pipeline import calibrate_judges

    result = calibrate_judges(recipe=loaded.model_dump(), judges=judge or None)
    for name, metrics in result["judges"].items():
        chosen = metrics.get("scorer", "llm")
        flag = "" if metrics["agreement"] >= result["min_agreement"] else "  (LOW)"
        typer.echo(summary_line(f"{name} [{chosen}]", metrics) + flag)
        for scorer, other in (metrics.get("candidates") or {}).items():
            if scorer != chosen:
                typer.echo("  not chosen: " + summary_line(f"{name} [{scorer}]", other))
    run_dir = Path(loaded.runs_dir).resolve() / loaded.name
    typer.echo(f"calibration: {run_dir / 'calibration.json'}")
