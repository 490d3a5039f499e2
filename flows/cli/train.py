"""`selfalign train` and `selfalign ablate`: fine-tune on a run's export, and measure it
against control variants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.checks import (
    check_corpus,
    check_inputs,
    check_model,
    check_train,
    prefect_defaults,
)
from flows.cli.common import SetOpt, setup_logging, stderr
from generators.errors import SelfAlignError


def train(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (runs/<name>).")],
    recipe: Annotated[
        Path | None,
        typer.Option(help="Recipe whose train: section to use (default: the run's recipe.yaml)."),
    ] = None,
    set_: SetOpt("train.sft.max_steps=10") = None,
    round_: Annotated[int, typer.Option("--round", help="Round number (train/<round>/).")] = 1,
) -> None:
    """Fine-tune on a run's export (LoRA SFT, UDS, DPO), evaluate before/after, decide promotion."""
    from flows.recipe import load_recipe

    setup_logging()
    if not (run_dir / "export" / "train.jsonl").is_file():
        raise SelfAlignError(f"{run_dir}: no export/train.jsonl (not a finished run)")
    loaded = load_recipe(recipe or run_dir / "recipe.yaml", set_ or [])
    if not loaded.train.eval.domain:
        raise SelfAlignError(f"{recipe or run_dir / 'recipe.yaml'}: 'train.eval.domain' is not set")
    check_train(loaded)
    prefect_defaults()
    from flows.train import fine_tune

    metrics = fine_tune(str(run_dir), loaded.model_dump(), round=round_)
    b, a = metrics["before"], metrics["after"]
    stderr().print(f"dev domain loss {b['domain_loss']:.4f} -> {a['domain_loss']:.4f}")
    if b.get("test_loss") is not None:
        stderr().print(f"test domain loss {b['test_loss']:.4f} -> {a['test_loss']:.4f} (reported)")
    if b["general_loss"] is not None:
        stderr().print(f"general loss {b['general_loss']:.4f} -> {a['general_loss']:.4f}")
    stderr().print(metrics["decision"])
    typer.echo(f"model: {metrics['trained_model']['path']}")
    typer.echo(f"metrics: {run_dir.resolve() / 'train' / str(round_) / 'metrics.json'}")


def ablate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with train.eval.domain.")],
    set_: SetOpt("ablate.variants=[corpus-only,recipe]") = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="A finished run to ablate (default: run the recipe, cached)."),
    ] = None,
) -> None:
    """Train one LoRA per variant (base, corpus-only, random, recipe, recipe minus a stage) on the
    same token budget; print each one's change vs base on the held-out test and dev splits."""
    from flows.recipe import load_recipe

    setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    if not loaded.train.eval.domain:
        raise SelfAlignError(f"{recipe}: 'train.eval.domain' is not set (ablate measures on it)")
    if run_dir is not None and not (run_dir / "export" / "train.jsonl").is_file():
        raise SelfAlignError(f"{run_dir}: no export/train.jsonl (not a finished run)")
    if run_dir is None:
        check_inputs(loaded)
    else:
        check_corpus(loaded)
        check_model(loaded)
    check_train(loaded)
    prefect_defaults()
    from flows.ablation.ablate import ablate as ablate_flow
    from flows.ablation.report import markdown_table

    result = ablate_flow(
        recipe=loaded.model_dump(), run_dir=str(run_dir.resolve()) if run_dir else None
    )
    stderr().print(markdown_table(result).replace("<br>", " "))
    out = Path(result["run"]) / "ablation"
    typer.echo(f"ablation: {out / 'ablation.json'}")
    typer.echo(f"table: {out / 'ablation.md'}")
