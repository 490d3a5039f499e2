"""The `selfalign` command line. Heavy imports happen inside commands, so --help is instant."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from generators.errors import SelfAlignError

# No hub, no telemetry: set before any library that reads these is imported.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_LOGGING_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(
    help="Self-alignment data generation: seeds + domain corpus -> curated instruction data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Prepare and inspect models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="auto | vllm | transformers")]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="'default', a HF model folder, or a cached model id")
]


def _setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=_stderr(), show_path=False, show_time=False)
    logger = logging.getLogger("selfalign")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


@models_app.command("prepare")
def models_prepare(
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Convert the default model (SmolLM2-135M-Instruct GGUF) to a HF folder once; print it."""
    from generators.models import prepare_default_model

    _setup_logging()
    with _stderr().status("preparing the default model (first time: ~20 s)"):
        path, converted = prepare_default_model(force=force)
    _stderr().print(
        f"default model {'converted to' if converted else 'already prepared at'} {path}"
    )
    typer.echo(str(path))


@app.command()
def generate(
    prompt: Annotated[
        list[str], typer.Option("--prompt", "-p", help="A user message; repeat for a batch.")
    ],
    backend: BackendOpt = "auto",
    model: ModelOpt = "default",
    system: Annotated[str | None, typer.Option(help="System message for every prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Max new tokens per completion.")] = 128,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.0,
    n: Annotated[int, typer.Option("-n", help="Completions per prompt.")] = 1,
    repetition_penalty: Annotated[float, typer.Option(help="> 1 discourages repetition.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per prompt.")] = False,
) -> None:
    """Quick check of a backend: answer a few prompts and print the completions."""
    from generators.llm import Sampling, load_backend

    _setup_logging()
    sampling = Sampling(
        max_tokens=max_tokens,
        temperature=temperature,
        n=n,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=tuple(stop or ()),
    )
    with _stderr().status(f"loading backend {backend!r} with model {model!r}"):
        llm = load_backend(backend, model)
    head = [{"role": "system", "content": system}] if system else []
    conversations = [head + [{"role": "user", "content": p}] for p in prompt]
    with _stderr().status(f"generating {len(prompt) * n} completion(s)"):
        outputs = llm.chat(conversations, sampling)
    for p, completions in zip(prompt, outputs, strict=True):
        if as_json:
            typer.echo(json.dumps({"prompt": p, "completions": completions, "model": llm.model_id}))
            continue
        typer.secho(f"> {p}", bold=True)
        for c in completions:
            typer.echo(c.strip() + "\n")


@app.command()
def demo(
    backend: BackendOpt = "auto",
    model: ModelOpt = "default",
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo-smoke"),
    limit: Annotated[int, typer.Option(help="Seed tasks to answer.")] = 20,
) -> None:
    """The demo job: grounded answers to the biomedical seed tasks, written to a run folder."""
    from flows.smoke import run_smoke

    _setup_logging()
    result = run_smoke(out, backend=backend, model=model, limit=limit)
    console = _stderr()
    for rec in result.examples:
        console.rule(f"[bold]{rec.instruction[:90]}")
        console.print(f"[dim]passages: {', '.join(rec.passages)}[/dim]")
        console.print(rec.output.strip())
    console.rule()
    console.print(
        f"{result.count} records, {result.tokens_per_s:.0f} output tok/s on {result.model_id}"
    )
    typer.echo(f"dataset: {result.path}")


def main() -> None:
    """Entry point: user errors become one `error:` line and exit code 2."""
    try:
        app()
    except SelfAlignError as e:
        if os.environ.get("SELFALIGN_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
