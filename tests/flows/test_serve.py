"""Deployments on a real Prefect server: a schedule starts a run on its own, `prefect deployment
run` starts one by hand, and a finished curation run triggers the fine-tune deployment.

`selfalign serve` runs in a subprocess against a real `prefect server start` (the test harness's
server runs no scheduler). The served curation runs start from the session's cached replies for
the tiny recipe (tests/flows/conftest.py) instead of generating on an engine of their own; the
triggered fine-tune really trains (one LoRA step).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.deployments import schedule
from flows.ops.trigger import deployment_names
from flows.ops.ui import api_url, start_server, stop_server, wait_healthy
from flows.recipe import Recipe

from .test_flow import tiny_recipe

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "biomed"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def server_api(tmp_path_factory, monkeypatch_module):
    """A real Prefect server whose scheduler looks for due schedules every 5 s (default 60 s)."""
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    tmp = tmp_path_factory.mktemp("serve-server")
    monkeypatch_module.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "5")
    proc = start_server(HOST, port, tmp / "server.log", home=tmp / "home")
    try:
        wait_healthy(proc, HOST, port, tmp / "server.log")
        yield api_url(HOST, port)
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def serve_recipe(tmp_path: Path, name: str = "served") -> dict:
    return {
        **tiny_recipe(tmp_path, name),
        "serve": {"trigger_fine_tune": True},
        "train": {
            "eval": {
                "domain": str(DATA / "heldout_qa.jsonl"),
                "domain_size": 2,
                "generate_size": 0,
            },
            "sft": {"max_steps": 1, "max_length": 128},
        },
    }


def test_schedule_arguments_prefer_the_command_line():
    base = {"name": "x", "seeds": "s", "corpus": {"path": "c"}}
    recipe = Recipe.model_validate({**base, "serve": {"cron": "0 3 * * *"}})
    assert schedule(recipe, None, None) == {"cron": "0 3 * * *"}
    assert schedule(recipe, None, 60.0) == {"interval": 60.0}
    assert schedule(recipe, "*/5 * * * *", None) == {"cron": "*/5 * * * *"}
    assert schedule(Recipe.model_validate(base), None, None) == {}
    assert deployment_names(recipe) == ("self-specialize/x", "fine-tune/x")


def _runs_of(client_runs, deployment_id):
    return [r for r in client_runs if r.deployment_id == deployment_id]


async def _flow_runs(names: tuple[str, str]):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        curate = await client.read_deployment_by_name(names[0])
        train = await client.read_deployment_by_name(names[1])
        runs = await client.read_flow_runs()
    return curate, train, _runs_of(runs, curate.id), _runs_of(runs, train.id)


def _wait_for(check, what: str, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"selfalign serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            found = check()
        except Exception:  # the deployments are not registered yet
            found = None
        if found:
            return found
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def test_served_schedule_manual_run_and_fine_tune_trigger(tiny_run, server_api, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tiny_run.reuse_replies(tmp_path / "runs" / "served")
    with temporary_settings({PREFECT_API_URL: server_api}):  # this process's client: that server
        _serve_and_check(server_api, tmp_path)


def _serve_and_check(api: str, tmp_path: Path) -> None:
    from prefect.utilities.asyncutils import run_coro_as_sync

    recipe_path = tmp_path / "served.yaml"
    recipe_path.write_text(yaml.safe_dump(serve_recipe(tmp_path)))
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "selfalign"), "serve", str(recipe_path), "--interval", "60"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    names = deployment_names(Recipe.model_validate(serve_recipe(tmp_path)))
    try:

        def scheduled_run_done():
            curate, _, runs, _ = run_coro_as_sync(_flow_runs(names))
            assert curate.schedules[0].schedule.interval.total_seconds() == 60
            done = [r for r in runs if r.auto_scheduled and r.state.is_completed()]
            return done

        # the server schedules runs of the 60 s interval on its own; the first one completes
        scheduled = _wait_for(scheduled_run_done, "a scheduled run to complete", 600, proc, log)
        run_dir = tmp_path / "runs" / "served"
        assert (run_dir / "export" / "train.jsonl").read_text().strip(), "nothing to train on"

        manual = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", names[0], "--param", "overrides=[]"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert manual.returncode == 0, manual.stdout + manual.stderr

        def manual_run_done():
            _, _, runs, _ = run_coro_as_sync(_flow_runs(names))
            return [r for r in runs if not r.auto_scheduled and r.state.is_completed()]

        _wait_for(manual_run_done, "the `prefect deployment run` run", 300, proc, log)

        def fine_tunes_done():
            _, _, _, runs = run_coro_as_sync(_flow_runs(names))
            return [r for r in runs if r.state.is_completed()]

        trained = _wait_for(fine_tunes_done, "the triggered fine-tune run", 600, proc, log)
        assert trained[0].parameters["run_dir"] == str(run_dir)
        assert (run_dir / "train" / "1" / "metrics.json").is_file()
        import json

        manifest = json.loads((run_dir / "manifest.json").read_text())
        triggered = manifest["triggered_fine_tune"]
        assert triggered["deployment"] == names[1] and "error" not in triggered
        assert triggered["flow_run_id"] in {str(r.id) for r in trained} | {
            str(r.id) for r in run_coro_as_sync(_flow_runs(names))[3]
        }
        assert scheduled[0].parameters["recipe"]["name"] == "served"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_trigger_without_a_deployment_is_reported_not_raised(prefect_harness, tmp_path):
    from flows.ops.trigger import trigger_fine_tune

    recipe = Recipe.model_validate(
        {**serve_recipe(tmp_path, "unserved"), "serve": {"trigger_fine_tune": True}}
    )
    export = tmp_path / "export"
    export.mkdir()
    (export / "train.jsonl").write_text("")
    assert trigger_fine_tune(recipe, tmp_path) == {
        "deployment": "fine-tune/unserved",
        "skipped": "no records exported",
    }
    (export / "train.jsonl").write_text('{"messages": []}\n')
    result = trigger_fine_tune(recipe, tmp_path)
    assert result["deployment"] == "fine-tune/unserved"
    assert "ObjectNotFound" in result["error"]
