"""The `selfalign` command line (app.py: the app and its entry point; one module per group of
commands; checks.py: the input checks made before a flow starts)."""

from flows.cli.app import app, main

__all__ = ["app", "main"]
