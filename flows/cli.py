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

BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", help="auto | vllm | transformers | openai")
]


def SetOpt(example: str):  # noqa: N802 (a type alias, like BackendOpt)
    """The repeatable `--set key=value` recipe override, with a command's own example."""
    return Annotated[
        list[str] | None, typer.Option("--set", help=f"Override a recipe key: --set {example}")
    ]


ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="'default', a HF model folder, or a cached model id")
]


def _setup_logging() -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=_stderr(), show_path=False, show_time=False)
    logger = logging.getLogger("selfalign")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
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
    base_url: Annotated[
        list[str] | None,
        typer.Option(help="Backend openai: server URL ending in /v1; repeat for a fleet."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Backend openai: environment variable holding the API key.")
    ] = None,
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
    options = _server_options(backend, base_url or [], api_key_env)
    with _stderr().status(f"loading backend {backend!r} with model {model!r}"):
        llm = load_backend(backend, model, **options)
    head = [{"role": "system", "content": system}] if system else []
    conversations = [head + [{"role": "user", "content": p}] for p in prompt]
    with _stderr().status(f"generating {len(prompt) * n} completion(s)"):
        outputs = llm.chat(conversations, sampling)
    for failure in getattr(llm, "last_failures", ()):
        _stderr().print(f"prompt {failure['index'] + 1} failed: {failure['error']}")
    for p, completions in zip(prompt, outputs, strict=True):
        if as_json:
            typer.echo(json.dumps({"prompt": p, "completions": completions, "model": llm.model_id}))
            continue
        typer.secho(f"> {p}", bold=True)
        for c in completions:
            typer.echo(c.strip() + "\n")


def _server_options(backend: str, base_urls: list[str], api_key_env: str | None) -> dict:
    """`generate`'s OpenAIBackend arguments; the server options make no sense elsewhere."""
    if backend != "openai":
        if base_urls or api_key_env:
            raise SelfAlignError("--base-url and --api-key-env need --backend openai")
        return {}
    if not base_urls:
        raise SelfAlignError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    from generators.openai_backend import api_key_from

    return {"base_urls": base_urls, "api_key": api_key_from(api_key_env, "--api-key-env")}


def _check_model(recipe) -> None:
    """A local model must resolve; a server's model needs only its API key variable set."""
    if recipe.model.backend == "openai":
        from generators.openai_backend import api_key_from

        api_key_from(recipe.model.openai.api_key_env, "model.openai.api_key_env")
        return
    from generators.models import resolve_model

    resolve_model(recipe.model.name)


def _prefect_defaults() -> None:
    # The temporary local server needs ~13 s to start here; Prefect's default limit is 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _check_inputs(recipe) -> None:
    """Check seeds, corpus and model before the flow starts: bad input fails fast, writes nothing.

    Reads the corpus once without chunking; the flow reads it again (a second streamed pass).
    """
    from generators.seeds import load_seeds

    load_seeds(recipe.seeds, recipe.seeds_max_chars)
    if recipe.s3ft.enabled and recipe.s3ft.gold_set:
        load_seeds(recipe.s3ft.gold_set)
    if recipe.calibration.check_set:
        from filters.calibration import load_qa

        load_qa(recipe.calibration.check_set)
    _check_corpus(recipe)
    _check_model(recipe)
    if recipe.train.enabled:
        _check_train(recipe)
    _check_runs_dir(recipe)


def _check_corpus(recipe) -> None:
    """Every document readable, and at least one with text (else the flow stops at ingest)."""
    from generators.corpus import iter_documents

    documents = with_text = 0
    for _, text in iter_documents(recipe.corpus.path, recipe.corpus.on_bad_record):
        documents += 1
        with_text += bool(text.strip())
    if documents == 0:
        raise SelfAlignError(f"{recipe.corpus.path}: the corpus has no documents")
    if with_text == 0:
        raise SelfAlignError(f"{recipe.corpus.path}: empty corpus: no document has any text")


def _check_runs_dir(recipe) -> None:
    """The run folder can be made where `runs_dir` points, before the flow starts.

    Probed by making (and removing) a temp folder in the nearest existing parent, so a read-only
    place fails here even for root, whose permission checks always pass.
    """
    import tempfile

    target = Path(recipe.runs_dir).resolve() / recipe.name
    existing = next(p for p in (target, *target.parents) if p.exists())
    where = f"runs_dir {recipe.runs_dir!r}"
    if not existing.is_dir():
        raise SelfAlignError(f"{where}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".selfalign-probe-", dir=existing))
    except OSError as e:
        raise SelfAlignError(
            f"{where}: cannot create folders in {existing} ({e.strerror})"
        ) from None


def _check_train(recipe) -> None:
    """The train section's eval sets and TRL/peft field names, before any work."""
    from trainers.data import load_qa
    from trainers.sft import check_configs

    cfg = recipe.train
    for path in (cfg.eval.domain, cfg.eval.general):
        if path:
            load_qa(path)
    check_configs(cfg.lora, cfg.sft, cfg.dpo)
    if cfg.model:
        from generators.models import resolve_model

        resolve_model(cfg.model)


def _show_rounds(root: Path) -> None:
    """One line per round: data size, domain/general loss before -> after, the decision."""
    for row in json.loads((root / "rounds.json").read_text(encoding="utf-8")):
        d, g = row["domain_loss"], row["general_loss"]
        general = f", general loss {g[0]:.4f} -> {g[1]:.4f}" if g[0] is not None else ""
        _stderr().print(
            f"round {row['round']}: {row['examples']} examples, dev domain loss "
            f"{d[0]:.4f} -> {d[1]:.4f}{general}: "
            + ("promoted" if row["promoted"] else "not promoted")
        )


EXAMPLES_SHOWN = 2
EMPTY_EXPORT = 3  # exit code of a run that exported no record (user errors exit 2)


def _show_examples(train_jsonl: Path) -> None:
    """Print the first exported records (instruction, input, answer) so a run shows its output."""
    console = _stderr()
    with open(train_jsonl, encoding="utf-8") as f:
        for line, _ in zip(f, range(EXAMPLES_SHOWN), strict=False):
            row = json.loads(line)
            console.rule(f"[bold]{row['instruction'][:90]}")
            if row["input"]:
                console.print(f"[dim]input:[/dim] {row['input'][:300]}")
            console.print(row["output"][:600])
    console.rule()


@app.command()
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

    _setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    _check_inputs(loaded)
    _prefect_defaults()
    from flows.pipeline import self_specialize

    run_dir = Path(self_specialize(recipe=loaded.model_dump()))
    _show_examples(run_dir / "export" / "train.jsonl")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    _stderr().print(
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


@app.command()
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

    _setup_logging()
    if not (run_dir / "export" / "train.jsonl").is_file():
        raise SelfAlignError(f"{run_dir}: no export/train.jsonl (not a finished run)")
    loaded = load_recipe(recipe or run_dir / "recipe.yaml", set_ or [])
    if not loaded.train.eval.domain:
        raise SelfAlignError(f"{recipe or run_dir / 'recipe.yaml'}: 'train.eval.domain' is not set")
    _check_train(loaded)
    _prefect_defaults()
    from flows.train import fine_tune

    metrics = fine_tune(str(run_dir), loaded.model_dump(), round=round_)
    b, a = metrics["before"], metrics["after"]
    _stderr().print(f"dev domain loss {b['domain_loss']:.4f} -> {a['domain_loss']:.4f}")
    if b.get("test_loss") is not None:
        _stderr().print(f"test domain loss {b['test_loss']:.4f} -> {a['test_loss']:.4f} (reported)")
    if b["general_loss"] is not None:
        _stderr().print(f"general loss {b['general_loss']:.4f} -> {a['general_loss']:.4f}")
    _stderr().print(metrics["decision"])
    typer.echo(f"model: {metrics['trained_model']['path']}")
    typer.echo(f"metrics: {run_dir.resolve() / 'train' / str(round_) / 'metrics.json'}")


@app.command()
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

    _setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    if not loaded.train.eval.domain:
        raise SelfAlignError(f"{recipe}: 'train.eval.domain' is not set (ablate measures on it)")
    if run_dir is not None and not (run_dir / "export" / "train.jsonl").is_file():
        raise SelfAlignError(f"{run_dir}: no export/train.jsonl (not a finished run)")
    if run_dir is None:
        _check_inputs(loaded)
    else:
        _check_corpus(loaded)
        _check_model(loaded)
    _check_train(loaded)
    _prefect_defaults()
    from flows.ablate import ablate as ablate_flow
    from flows.ablation_report import markdown_table

    result = ablate_flow(
        recipe=loaded.model_dump(), run_dir=str(run_dir.resolve()) if run_dir else None
    )
    _stderr().print(markdown_table(result).replace("<br>", " "))
    out = Path(result["run"]) / "ablation"
    typer.echo(f"ablation: {out / 'ablation.json'}")
    typer.echo(f"table: {out / 'ablation.md'}")


@app.command()
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

    _setup_logging()
    loaded = load_recipe(recipe, set_ or [])
    from flows.calibrate import JUDGES

    for name in judge or []:
        if name not in JUDGES:
            raise SelfAlignError(f"--judge {name!r}: choose one of {', '.join(JUDGES)}")
    if not loaded.calibration.check_set:
        raise SelfAlignError(f"{recipe}: 'calibration.check_set' is not set")
    load_qa(loaded.calibration.check_set)
    _check_model(loaded)
    _check_runs_dir(loaded)
    _prefect_defaults()
    from filters.calibration import summary_line
    from flows.pipeline import calibrate_judges

    result = calibrate_judges(recipe=loaded.model_dump(), judges=judge or None)
    for name, metrics in result["judges"].items():
        flag = "" if metrics["agreement"] >= result["min_agreement"] else "  (LOW)"
        typer.echo(summary_line(name, metrics) + flag)
    run_dir = Path(loaded.runs_dir).resolve() / loaded.name
    typer.echo(f"calibration: {run_dir / 'calibration.json'}")


@app.command()
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

    _setup_logging()
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
    _check_inputs(loaded)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise SelfAlignError(
            "selfalign serve needs a Prefect server: start one with `selfalign ui` (or `make ui`) "
            "and export the PREFECT_API_URL it prints"
        )
    from flows.serve import deployment_names, schedule, serve_recipe

    curate_name, train_name = deployment_names(loaded)
    when = schedule(loaded, cron, interval) or {"schedule": "none (runs when started)"}
    console = _stderr()
    console.print(f"serving {curate_name} ({', '.join(f'{k} {v}' for k, v in when.items())})")
    console.print(f"serving {train_name} (parameter run_dir)")
    console.print(f"start a run:  prefect deployment run '{curate_name}'")
    console.print(
        f"fine-tune:    prefect deployment run '{train_name}' --param run_dir=RUNS/{loaded.name}"
    )
    console.print(f"Prefect API:  {PREFECT_API_URL.value()}  (Ctrl-C stops serving)")
    serve_recipe(loaded, cron, interval, limit)


@app.command()
def demo() -> None:
    """Run the biomedical demo recipe (flows/recipes/biomed-demo.yaml)."""
    run(Path(__file__).resolve().parent / "recipes" / "biomed-demo.yaml")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address the server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the dashboard and its API.")] = 4200,
) -> None:
    """Start the Prefect server + dashboard (Ctrl-C stops it); prints the PREFECT_API_URL to use."""
    from flows.ui import serve

    serve(host, port, echo=typer.echo)


@app.command("export")
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


class Stopped(BaseException):
    """SIGTERM arrived (Prefect first marks the running flow and task as crashed, then passes the
    signal on to the handler that was there before it: ours)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


STOPPED = (
    "stopped by {name}; run the same command again to resume: finished steps are cached and "
    "training resumes from its last epoch checkpoint"
)


def main() -> None:
    """Entry point: user errors become one `error:` line and exit code 2; SIGTERM and Ctrl-C
    stop with one line saying how to resume (exit 128 + the signal number)."""
    import signal

    from trainers.data import DataError

    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        app()
    except (SelfAlignError, DataError) as e:
        if os.environ.get("SELFALIGN_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        print(f"error: {STOPPED.format(name=signal.Signals(signum).name)}", file=sys.stderr)
        sys.exit(128 + signum)
