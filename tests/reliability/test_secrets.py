"""An API key set in the environment never reaches logs, artifacts, the manifest or the exports.

The real flow runs with backend 'openai' against a loopback chat server that answers most requests
and refuses some with an error message that repeats the request's Authorization header (careless
servers do that), so the key is offered to every place an error line goes. Then everything the run
wrote, Prefect's logs and artifacts of the run, and PREFECT_HOME are searched for the key.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.generators.test_openai_backend import FakeChat
from tests.reliability.fakes import HashEmbedder, tiny_recipe

SECRET = "sk-selfalign-test-7f3a9c1e5b"
KEY_ENV = "SELFALIGN_RELIABILITY_KEY"


class RefusingSometimes(FakeChat):
    """Every third request gets a 500 whose message carries the Authorization header."""

    def __init__(self) -> None:
        super().__init__()
        self.count, self.count_lock = 0, threading.Lock()

    def reply(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.count_lock:  # requests arrive on several threads at once
            self.count += 1
            refuse = self.count % 3 == 0
        status, payload = super().reply(headers, body)
        if refuse:
            message = f"upstream refused {headers.get('authorization')}"
            return 500, {"error": {"message": message, "type": "server_error"}}
        return status, payload


async def _logs_and_artifacts(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    assert logs and artifacts and runs
    return "\n".join(
        [log.message for log in logs]
        + [json.dumps(a.data, default=str) + str(a.description) for a in artifacts]
        + [json.dumps(r.parameters, default=str) for r in runs]
    )


def test_the_api_key_is_nowhere_in_the_run_or_prefect(prefect_harness, monkeypatch, tmp_path):
    from prefect.utilities.asyncutils import run_coro_as_sync

    import flows.tasks
    from flows.pipeline import self_specialize

    server = RefusingSometimes()
    embedder = HashEmbedder()
    monkeypatch.setattr(flows.tasks, "get_embedder", lambda name: embedder)
    monkeypatch.setenv(KEY_ENV, SECRET)
    recipe = tiny_recipe(tmp_path, "secret", prompts=4)
    recipe["model"] = {
        "backend": "openai",
        "name": "tiny",
        "openai": {
            "base_urls": [server.url + "/v1"],
            "api_key_env": KEY_ENV,
            "max_retries": 0,  # a refused request fails for good: its error line is kept
            "backoff": 0.01,
            "timeout": 10,
        },
    }
    try:
        run_dir = Path(self_specialize(recipe=recipe))
    finally:
        server.stop()

    sent = {headers.get("authorization") for headers, _ in server.requests}
    assert sent == {f"Bearer {SECRET}"}  # the key was used...
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["failed_requests"] >= 1  # ...and refusals echoing it were recorded
    failed = (run_dir / "failed_requests.jsonl").read_text()
    assert "upstream refused Bearer ***" in failed

    leaks = [
        str(path)
        for folder in (run_dir, Path(recipe["runs_dir"]), Path(os.environ["PREFECT_HOME"]))
        for path in folder.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs go to the API in batches, in the background
    prefect_side = run_coro_as_sync(_logs_and_artifacts(manifest["flow_run_id"]))
    assert "openai:tiny" in prefect_side or "records" in prefect_side
    assert SECRET not in prefect_side
    assert KEY_ENV in json.dumps(manifest["recipe"])  # only the variable's name is written


@pytest.fixture(autouse=True)
def _fresh_backends():
    """The backend for this server's URL is built (and forgotten) within the test."""
    from flows.tasks import get_llm

    get_llm.cache_clear()
    yield
    get_llm.cache_clear()
