"""The Prefect dashboard: start `prefect server start` and point runs at it.

    selfalign ui [--host 127.0.0.1] [--port 4200]      (or `make ui`)

starts the server as a child process, waits until its API answers, prints the dashboard URL and
the `export PREFECT_API_URL=...` line that makes `selfalign run` report to it, and stops the
server on Ctrl-C. A server already healthy on that address is reused: the lines are printed and
the command returns. Runs, task graphs, logs and the run's artifacts (flows/ops/artifacts.py)
show up in the dashboard. Not handled: remote servers, authentication, a database other than
Prefect's default SQLite under PREFECT_HOME.

Only the standard library is imported here, so `selfalign --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from generators.errors import SelfAlignError

HEALTH_TIMEOUT = 120.0  # seconds; the server is ready in ~15 s on 2 cores (MACHINE-NOTES.md)
STOP_TIMEOUT = 30.0  # seconds between Ctrl-C and a hard kill of the server's process group
LOG_TAIL_LINES = 20


def dashboard_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def api_url(host: str, port: int) -> str:
    """'127.0.0.1', 4200 -> 'http://127.0.0.1:4200/api' (the value of PREFECT_API_URL)."""
    return f"{dashboard_url(host, port)}/api"


def is_healthy(host: str, port: int, timeout: float = 2.0) -> bool:
    """Does a Prefect server answer /api/health on host:port?"""
    try:
        with urllib.request.urlopen(f"{api_url(host, port)}/health", timeout=timeout) as reply:
            return reply.status == 200 and reply.read().strip() == b"true"
    except (OSError, urllib.error.URLError, ValueError):
        return False


def start_server(host: str, port: int, log: Path, home: Path | None = None) -> subprocess.Popen:
    """`prefect server start` in its own process group, output to `log`; `home` = PREFECT_HOME."""
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The dashboard's own API address: without it the UI calls port 4200 whatever --port is.
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api_url(host, port),
    }
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)  # the server must not think it is a client of another one
    command = [sys.executable, "-m", "prefect", "server", "start"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*command, "--host", host, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(the server log is empty)"


def wait_healthy(
    proc: subprocess.Popen, host: str, port: int, log: Path, timeout: float = HEALTH_TIMEOUT
) -> None:
    """Block until the server answers; if it exits or times out, stop it and raise one line
    followed by the server's last log lines."""
    deadline = time.monotonic() + timeout
    while not is_healthy(host, port):
        if proc.poll() is not None:
            raise SelfAlignError(
                f"prefect server on {host}:{port} exited with code {proc.returncode} before it "
                f"became healthy; its last log lines ({log}):\n{log_tail(log)}"
            )
        if time.monotonic() > deadline:
            stop_server(proc)
            raise SelfAlignError(
                f"prefect server on {host}:{port} was not healthy after {timeout:.0f} s; "
                f"its last log lines ({log}):\n{log_tail(log)}"
            )
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGINT to the server's process group (a clean shutdown), SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def connect_lines(host: str, port: int) -> list[str]:
    return [
        f"dashboard: {dashboard_url(host, port)}",
        "point runs at it (in the shell that runs `selfalign run`):",
        f"export PREFECT_API_URL={api_url(host, port)}",
    ]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(host: str, port: int, echo: Callable[[str], None] = print) -> None:
    """Start the server (or find one running), print how to use it, wait for Ctrl-C."""
    if is_healthy(host, port):
        echo(f"a Prefect server is already running on {host}:{port}")
        for line in connect_lines(host, port):
            echo(line)
        return
    log = Path(tempfile.gettempdir()) / f"selfalign-prefect-server-{port}.log"
    log.write_text("", encoding="utf-8")
    echo(f"starting the Prefect server on {host}:{port} (log: {log})")
    proc = start_server(host, port, log)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server as Ctrl-C does
    try:
        wait_healthy(proc, host, port, log)
        for line in connect_lines(host, port):
            echo(line)
        echo("Ctrl-C stops the server")
        proc.wait()
        raise SelfAlignError(
            f"prefect server exited with code {proc.returncode}; its last log lines ({log}):\n"
            + log_tail(log)
        )
    except KeyboardInterrupt:
        echo("stopping the Prefect server")
    finally:
        stop_server(proc)
