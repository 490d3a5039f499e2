"""The `selfalign` command line: the app, its commands and the entry point.

    cli_generate.py   models prepare, generate
    cli_run.py        run, demo, export
    cli_train.py      train, ablate
    cli_calibrate.py  calibrate
    cli_serve.py      serve, ui
    cli_checks.py     the input checks made before a flow starts
    cli_common.py     the offline environment, shared options, logging, the stderr console

Heavy imports happen inside commands, so --help is instant.
"""

from __future__ import annotations

import os
import sys

import typer

from flows.cli.calibrate import calibrate
from flows.cli.generate import generate, models_prepare
from flows.cli.run import demo, export_run, run
from flows.cli.serve import serve, ui
from flows.cli.train import ablate, train
from generators.errors import SelfAlignError

app = typer.Typer(
    help="Self-alignment data generation: seeds + domain corpus -> curated instruction data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Prepare and inspect models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

models_app.command("prepare")(models_prepare)
for command in (generate, run, train, ablate, calibrate, serve, demo, ui):
    app.command()(command)
app.command("export")(export_run)


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
