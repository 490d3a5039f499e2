"""What every `selfalign` command shares: the offline environment, option types, logging and
the stderr console. Imported before any command runs, so the environment is set first."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

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


def setup_logging() -> None:
    """The `selfalign` logger writes to stderr through rich."""
    from rich.logging import RichHandler

    handler = RichHandler(console=stderr(), show_path=False, show_time=False)
    logger = logging.getLogger("selfalign")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def stderr():
    """A rich console on stderr (stdout carries only what scripts read: paths, JSON)."""
    from rich.console import Console

    return Console(stderr=True)
