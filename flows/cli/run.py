"""`selfalign run`, `demo` and `export`: curate a recipe's data, show it, re-export it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.checks import check_inputs, prefect_defaults
from flows.cli.common import SetOpt, setup_logging, stderr
from generators.errors import SelfAlignError


def _show_rounds(root: Path) -> None:
    """One line per round: data size, domain/general loss before -> after, the decision."""
    for row in json.loads((root / "rounds.json").read_text(encoding="utf-8")):
        d, g = row["domain_loss"], row["general_loss"]
        general = f", general loss {g[0]:.4f} -> {g[1]:.4f}" if g[0] is not None else ""
        stderr().print(
            f"round {row['round']}: {row['examples']} examples, dev domain loss "
            f"{d[0]:.4f} -> {d[1]:.4f}{general}: "
            + ("promoted" if row["promoted"] else "not promoted")
        )


EXAMPLES_SHOWN = 2


EMPTY_EXPORT = 3  # exit code of a run that exported no record (user errors exit 2)


def _show_examples(train_jsonl: Path) -> None:
    """Print the first exported records (instruction, input, answer) so a run shows its output."""
    console = stderr()
    with open(train_jsonl, encoding="utf-8") as f:
        for line, _ in zip(f, range(EXAMPLES_SHOWN), strict=False):
            row = json.loads(line)
            console.rule(f"[bold]{row['instruction'][:90]}")
            if row["input"]:
                console.print(f"[dim]input:[/dim] {row['input'][:300]}")
            console.print(row["output"][:600])
    console.rule()


def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML (see flows/recipes/).")],
    set_: SetOpt("generate.prompts=8") = None,
    allow_empty: Annotated[
        bool, typer.Option(help="Exit 0 when the run exports 0 records (default: exit 3).")
    ] = False,
) -> None:
    """Run the Self-Specialization flow on a recipe; prints the run folder. Exit 3 when it
    exports no record (unless --allow-empty)."""
    from flows.recipe import load_recipe

    setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    check_inputs(loaded)
    prefect_defaults()
    from flows.pipeline import self_specialize

    run_dir = Path(self_specialize(recipe=loaded.model_dump()))
    _show_examples(run_dir / "export" / "train.jsonl")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stderr().print(
        f"{manifest['records']} records in {manifest['seconds']} s; "
        f"LLM calls this run: {manifest['llm_calls_this_process']['conversations']}"
    )
    typer.echo(f"run: {run_dir}")
    typer.echo(f"dataset: {run_dir / 'export'}")
    if loaded.train.enabled:
        _show_rounds(run_dir)
        typer.echo(f"rounds: {run_dir / 'rounds.json'}")
    if not manifest["records"] and not allow_empty:
        from flows.export import empty_export_reason

        why = empty_export_reason(manifest["stages"])
        print(f"error: {run_dir}: 0 records exported; {why} (--allow-empty accepts it)",
              file=sys.stderr)  # fmt: skip
        sys.exit(EMPTY_EXPORT)


def demo() -> None:
    """Run the biomedical demo recipe (flows/recipes/biomed-demo.yaml)."""
    run(Path(__file__).resolve().parent / "recipes" / "biomed-demo.yaml")


def export_run(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (runs/<name>).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl | parquet | hf | alpaca")
    ] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Output file (folder for hf).")] = None,
) -> None:
    """Re-export a finished run's curated records in another format."""
    from flows.export import FORMATS, write_format
    from flows.rundir import final_stage, read_records

    if fmt not in FORMATS:
        raise SelfAlignError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not (run_dir / "manifest.json").is_file():
        raise SelfAlignError(f"{run_dir}: not a finished run (no manifest.json)")
    records = read_records(final_stage(run_dir) / "kept.parquet")
    suffix = {"jsonl": ".jsonl", "parquet": ".parquet", "hf": "", "alpaca": ".json"}[fmt]
    target = out or run_dir / "export" / f"{'alpaca' if fmt == 'alpaca' else 'train'}{suffix}"
    try:
        write_format(records, fmt, target)
    except OSError as e:
        at = f" at {e.filename}" if e.filename else ""  # the part of the path that failed
        raise SelfAlignError(f"{target}: cannot write ({e.strerror or e}{at})") from None
    typer.echo(str(target))
