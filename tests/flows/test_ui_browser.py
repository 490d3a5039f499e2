"""The Prefect dashboard in a real browser: a tiny run reports to a server started by
flows/ops/ui.py,
then headless chromium renders its flow run page and its funnel artifacts.

Screenshots are kept in test-output/ui/ (the test prints their paths).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from flows.ops.ui import api_url, dashboard_url, start_server, stop_server, wait_healthy
from tests.flows.test_flow import small_corpus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "ui"
DATA = ROOT / "data" / "biomed"
SELFALIGN = str(Path(sys.executable).with_name("selfalign"))
HOST = "127.0.0.1"
# Without the virtual-time budget headless chromium captures the page before the app renders.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=15000",
    "--window-size=1400,900",
]
BROWSE_TRIES = 3  # a busy 2-core machine can render the app after the budget ran out


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium is not installed: `make test` installs it (Debian package `chromium`)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `prefect server start` on a free port with its own PREFECT_HOME."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    port, log = free_port(), tmp / "server.log"
    proc = start_server(HOST, port, log, home=tmp / "home")
    try:
        wait_healthy(proc, HOST, port, log)
        yield port
    finally:
        stop_server(proc)


def api(port: int, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{api_url(HOST, port)}{path}", data=data, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    body = dom.split("<body", 1)[-1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def browse(url: str, shot: Path, needles: list[str], profile: Path) -> str:
    """Screenshot `url` and return its page text; retried until every needle is on the page."""
    for _ in range(BROWSE_TRIES):
        proc = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
             f"--screenshot={shot}", url],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        text = page_text(proc.stdout)
        if all(n in text for n in needles):
            break
    return text


def tiny_recipe(tmp_path: Path) -> Path:
    recipe = {
        "name": "tiny-ui",
        "seed": 3,
        "seeds": str(DATA / "seeds.jsonl"),
        "corpus": {"path": str(small_corpus(tmp_path))},
        "model": {"backend": "transformers"},  # no second vLLM engine beside the session's
        "generate": {"prompts": 2, "batch_prompts": 2, "new_per_prompt": 3, "max_tokens": 100},
        "instances": {"max_tokens": 48},
        "respond": {"max_tokens": 48},
        "batch_records": 8,
        "runs_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "tiny-ui.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_dashboard_shows_the_run_and_its_funnel(default_model, server, tmp_path):
    chromium()  # fail before the run, not after it
    port = server
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url(HOST, port),
        "PREFECT_HOME": str(tmp_path / "client-home"),
    }
    proc = subprocess.run(
        [SELFALIGN, "run", str(tiny_recipe(tmp_path))],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "runs" / "tiny-ui" / "manifest.json").read_text())
    flow_run = api(port, f"/flow_runs/{manifest['flow_run_id']}")
    assert flow_run["state"]["type"] == "COMPLETED"
    found = api(
        port,
        "/artifacts/filter",
        {
            "artifacts": {"key": {"any_": ["tiny-ui-funnel", "tiny-ui-funnel-plot"]}},
            "flow_runs": {"id": {"any_": [flow_run["id"]]}},
        },
    )
    ids = {a["key"]: a["id"] for a in found}
    assert set(ids) == {"tiny-ui-funnel", "tiny-ui-funnel-plot"}

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shots = {n: OUTPUT / f"{n}.png" for n in ("flow-run", "funnel-artifact", "funnel-plot")}
    dashboard, profile = dashboard_url(HOST, port), tmp_path / "chromium-profile"
    run_page = browse(
        f"{dashboard}/runs/flow-run/{flow_run['id']}",
        shots["flow-run"],
        [flow_run["name"], "Completed"],
        profile,
    )
    assert flow_run["name"] in run_page and "Completed" in run_page, run_page[:2000]
    assert "self-specialize" in run_page  # the flow's name (the run graph is a canvas)

    novelty = next(s for s in manifest["stages"] if s["stage"] == "novelty")
    row = f"novelty {novelty['in']} {novelty['kept']} {novelty['dropped']}"
    table = browse(
        f"{dashboard}/artifacts/artifact/{ids['tiny-ui-funnel']}",
        shots["funnel-artifact"],
        [row],
        profile,
    )
    assert "tiny-ui-funnel" in table and row in table, table[:2000]
    plot = browse(
        f"{dashboard}/artifacts/artifact/{ids['tiny-ui-funnel-plot']}",
        shots["funnel-plot"],
        ["Records kept per stage"],
        profile,
    )
    assert "Records kept per stage" in plot and f"{novelty['kept']}/{novelty['in']}" in plot
    for name, shot in shots.items():
        assert shot.stat().st_size > 10_000, shot  # a rendered page, not a blank one
        print(f"screenshot of the {name} page: {shot}")


def test_ui_finds_a_running_server_and_prints_how_to_use_it(server):
    proc = subprocess.run(
        [SELFALIGN, "ui", "--port", str(server)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert f"already running on {HOST}:{server}" in proc.stdout
    assert f"export PREFECT_API_URL=http://{HOST}:{server}/api" in proc.stdout.splitlines()


def test_ui_on_a_taken_port_fails_with_one_line_and_the_server_log(tmp_path):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [SELFALIGN, "ui", "--port", str(port)],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "PREFECT_HOME": str(tmp_path / "home")},
        )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    first, *tail = proc.stderr.splitlines()
    assert first.startswith(f"error: prefect server on {HOST}:{port} exited with code")
    assert "already in use" in " ".join(tail)
