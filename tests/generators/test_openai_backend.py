"""The OpenAI-compatible backend's control flow against a small stdlib chat server (no model):
retries per fault kind, failures, backoff, load balancing, the response cache, the concurrency
bound, seeds, and the API key staying out of everything the backend shows or writes."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from generators.backends.openai import OpenAIBackend, backoff_delay, request_params
from generators.errors import SelfAlignError
from generators.llm import Sampling, load_backend
from tests.faultproxy import FaultProxy

SECRET = "sk-test-3f9a1c77e2b54d0d"
TIMEOUT = 0.5  # client timeout in these tests; a "delay" fault waits past it
FAST = {"timeout": TIMEOUT, "backoff": 0.01, "max_backoff": 0.02}


class FakeChat:
    """Answers chat completions with 'echo:<last message>|seed=<seed>|k=<choice>'; records every
    request (headers, body) and the most requests it had in flight at once."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.in_flight = self.max_in_flight = 0
        self.status: int | None = None  # answer every request with this error status
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((headers, body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.latency)
        with self._lock:
            self.in_flight -= 1
        if self.status is not None:  # a careless server that echoes the request's headers
            message = f"refused: {headers.get('authorization')}"
            return self.status, {"error": {"message": message, "type": "invalid_request"}}
        last = body["messages"][-1]["content"]
        choices = [
            {
                "index": k,
                "message": {
                    "role": "assistant",
                    "content": f"echo:{last}|seed={body.get('seed')}|k={k}",
                },
                "finish_reason": "stop",
            }
            for k in range(body.get("n", 1))
        ]
        usage = {"prompt_tokens": 3, "completion_tokens": 2 * len(choices), "total_tokens": 9}
        completion = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"]}
        return 200, {**completion, "choices": choices, "usage": usage}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = fake.reply({k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def server():
    fake = FakeChat()
    yield fake
    fake.stop()


@pytest.fixture
def proxy(server):
    with FaultProxy(server.url, delay=TIMEOUT * 2) as p:
        yield p


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def backend(*urls: str, **options: Any) -> OpenAIBackend:
    return OpenAIBackend("tiny", [u + "/v1" for u in urls], **{**FAST, **options})


@pytest.mark.parametrize("fault", ["500", "429", "drop", "delay"])
def test_each_transient_fault_is_retried_once(server, proxy, fault):
    proxy.reset(plan=[fault])
    llm = backend(proxy.url, max_retries=2)
    assert llm.chat([user("hi")], Sampling()) == [["echo:hi|seed=None|k=0"]]
    assert llm.stats == {"requests": 2, "retries": 1, "cache_hits": 0, "failures": 0}
    assert proxy.injected == {fault: 1} and proxy.received == 2 and proxy.forwarded == 1
    assert llm.last_failures == []


@pytest.mark.parametrize(
    "fault, error",
    [
        ("500", "HTTP 500: injected 500"),
        ("drop", "connection error"),
        ("delay", "timeout after 0.5 s"),
    ],
)
def test_a_request_failing_after_all_retries_is_listed_and_the_batch_survives(
    server, proxy, fault, error
):
    proxy.reset(rule=lambda body: fault if body["messages"][-1]["content"] == "bad" else None)
    llm = backend(proxy.url, max_retries=2)
    out = llm.chat([user("good"), user("bad"), user("fine")], Sampling(n=2))
    assert out == [
        ["echo:good|seed=None|k=0", "echo:good|seed=None|k=1"],
        ["", ""],
        ["echo:fine|seed=None|k=0", "echo:fine|seed=None|k=1"],
    ]
    assert llm.last_failures == [{"index": 1, "error": error, "attempts": 3}]
    assert llm.stats == {"requests": 5, "retries": 2, "cache_hits": 0, "failures": 1}
    assert llm.chat([user("good")], Sampling(n=2)) and llm.last_failures == []  # per call


def test_a_client_error_fails_at_once(server, proxy):
    proxy.reset(plan=["400"])
    llm = backend(proxy.url, max_retries=5)
    assert llm.chat([user("hi")], Sampling()) == [[""]]
    assert llm.last_failures == [{"index": 0, "error": "HTTP 400: injected 400", "attempts": 1}]
    assert llm.stats == {"requests": 1, "retries": 0, "cache_hits": 0, "failures": 1}
    assert proxy.forwarded == 0


def test_backoff_is_exponential_jittered_and_capped(server, proxy):
    rng = random.Random(0)
    for attempt in range(12):
        cap = min(30.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays) and max(delays) > cap * 0.8
    assert backoff_delay(10**6, 0.5, 30.0, rng) <= 30.0  # no overflow on absurd attempt counts

    proxy.reset(plan=["500"] * 5)
    llm = backend(proxy.url, max_retries=5, backoff=0.1, max_backoff=0.25)
    slept: list[float] = []
    llm._sleep = slept.append
    assert llm.chat([user("hi")], Sampling()) == [["echo:hi|seed=None|k=0"]]
    assert len(slept) == 5
    assert all(d <= min(0.25, 0.1 * 2**i) for i, d in enumerate(slept))


def test_requests_spread_over_urls_and_retries_move_on(server):
    with FaultProxy(server.url) as a, FaultProxy(server.url) as b:
        llm = backend(a.url, b.url, concurrency=1)
        llm.chat([user(str(i)) for i in range(6)], Sampling())
        assert (a.received, b.received) == (3, 3)  # idle URLs take turns

        server.latency = 0.2
        llm = backend(a.url, b.url, concurrency=4)
        a.reset()
        b.reset()
        llm.chat([user(str(i)) for i in range(4)], Sampling())
        assert (a.received, b.received) == (2, 2)  # the least busy URL gets the next request

        server.latency = 0.0
        a.reset(plan=["500"])
        b.reset()
        llm = backend(a.url, b.url, concurrency=1)
        assert llm.chat([user("x")], Sampling()) == [["echo:x|seed=None|k=0"]]
        assert (a.received, b.received) == (1, 1)  # the retry went to the other URL


def test_the_response_cache_answers_without_requests(server, proxy, tmp_path):
    batch, sampling = [user("a"), user("b")], Sampling(seed=7, temperature=0.8)
    llm = backend(proxy.url, cache_dir=tmp_path)
    first = llm.chat(batch, sampling)
    assert llm.chat(batch, sampling) == first and proxy.received == 2
    fresh = backend(proxy.url, cache_dir=tmp_path)  # persistent: a new process finds it too
    assert fresh.chat(batch, sampling) == first and proxy.received == 2
    assert fresh.stats == {"requests": 0, "retries": 0, "cache_hits": 2, "failures": 0}
    fresh.chat(batch, Sampling(seed=8, temperature=0.8))  # another seed is another request
    assert proxy.received == 4


def test_failures_are_not_cached(server, proxy, tmp_path):
    proxy.reset(plan=["500"] * 2)
    llm = backend(proxy.url, cache_dir=tmp_path, max_retries=1)
    assert llm.chat([user("a")], Sampling()) == [[""]]
    again = backend(proxy.url, cache_dir=tmp_path)
    assert again.chat([user("a")], Sampling()) == [["echo:a|seed=None|k=0"]]
    assert again.stats["requests"] == 1 and again.stats["cache_hits"] == 0


def test_concurrency_is_bounded(server):
    server.latency = 0.2
    llm = backend(server.url, concurrency=3)
    out = llm.chat([user(str(i)) for i in range(9)], Sampling())
    assert [o[0].split("|")[0] for o in out] == [f"echo:{i}" for i in range(9)]  # in order
    assert server.max_in_flight == 3


def test_each_conversation_gets_its_own_seed_and_the_sampling(server):
    llm = backend(server.url)
    sampling = Sampling(
        max_tokens=9, temperature=0.7, top_p=0.9, n=2, seed=10, stop=("\n",), repetition_penalty=1.2
    )
    out = llm.chat([user("a"), user("b"), user("c")], sampling)
    assert [o[0] for o in out] == [f"echo:{t}|seed={10 + i}|k=0" for i, t in enumerate("abc")]
    body = next(b for _, b in server.requests if b["messages"][0]["content"] == "c")
    assert body == {
        "model": "tiny",
        "messages": user("c"),
        "n": 2,
        "max_tokens": 9,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 12,
        "stop": ["\n"],
        "repetition_penalty": 1.2,
    }
    llm.chat([user("d")], Sampling())
    assert (
        "seed" not in server.requests[-1][1] and "repetition_penalty" not in server.requests[-1][1]
    )
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    assert request_params("m", user("e"), Sampling(json_schema=schema), 0)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema},
    }


def test_the_api_key_is_sent_but_never_shown_or_stored(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    llm = load_backend(
        "openai",
        "tiny",
        base_urls=[server.url + "/v1"],
        api_key=SECRET,
        cache_dir=tmp_path,
        progress=True,
        **FAST,
    )
    assert llm.model_id == "openai:tiny" and llm.chat([user("hi")], Sampling())[0][0]
    assert server.requests[-1][0]["authorization"] == f"Bearer {SECRET}"
    server.status = 401  # its error message repeats the Authorization header
    assert llm.chat([user("again")], Sampling()) == [[""]]
    assert llm.last_failures == [
        {"index": 0, "error": "HTTP 401: refused: Bearer ***", "attempts": 1}
    ]
    assert "openai:tiny: 1/1 conversations answered" in caplog.text
    shown = [repr(llm), str(llm.stats), str(llm.usage), json.dumps(llm.last_failures), caplog.text]
    stored = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert stored and not any(SECRET in s for s in shown)
    assert not any(SECRET.encode() in b for b in stored)


def test_openai_options_take_the_key_from_the_named_variable(monkeypatch, tmp_path):
    from flows.tasks import openai_options

    section = {"base_urls": ["http://h/v1"], "api_key_env": "SA_TEST_KEY", "cache": False}
    monkeypatch.setenv("SA_TEST_KEY", SECRET)
    opts = openai_options(json.dumps({**section, "cache_dir": str(tmp_path)}))
    assert opts == {"base_urls": ["http://h/v1"], "api_key": SECRET, "cache_dir": None}
    monkeypatch.delenv("SA_TEST_KEY")
    with pytest.raises(SelfAlignError, match=r"\$SA_TEST_KEY is not set"):
        openai_options(json.dumps(section))
    with pytest.raises(SelfAlignError, match="name the model the server serves"):
        load_backend("openai", None, base_urls=["http://h/v1"])


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"error": {"message": "slow down", "type": "rate"}}, "slow down"),
        ({"error": "Unauthorized"}, "Unauthorized"),
        ({"detail": "Not Found"}, "Not Found"),
        ("upstream died", "upstream died"),
        (None, ""),
    ],
)
def test_error_details_of_the_usual_server_shapes(body, detail):
    from generators.backends.openai import error_detail

    assert error_detail(body) == detail


def test_cli_checks_the_server_options(tmp_path):
    import yaml

    from tests.flows.test_cli import assert_one_line_error, run_cli

    assert_one_line_error(
        run_cli("generate", "-p", "hi", "--backend", "openai"), "needs --base-url"
    )
    assert_one_line_error(
        run_cli("generate", "-p", "hi", "--base-url", "http://h/v1"), "need --backend openai"
    )
    data = Path(__file__).resolve().parents[2] / "data" / "biomed"
    recipe = {
        "name": "keyless",
        "seeds": str(data / "seeds.jsonl"),
        "corpus": {"path": str(data / "corpus.jsonl")},
        "model": {
            "backend": "openai",
            "name": "served",
            "openai": {"base_urls": ["http://h/v1"], "api_key_env": "SA_UNSET_KEY_VAR"},
        },
        "runs_dir": str(tmp_path / "runs"),
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert_one_line_error(run_cli("run", str(tmp_path / "r.yaml")), "$SA_UNSET_KEY_VAR is not set")
    assert not (tmp_path / "runs").exists()
