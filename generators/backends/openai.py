"""The OpenAI-compatible backend: a chat-completions server (vLLM's server, SGLang, TGI, Ollama,
a hosted API), or a fleet of servers serving one model behind a list of base URLs.

One request per conversation (its `n` completions through the API's `n`), at most `concurrency`
requests in flight, each sent to the base URL with the fewest requests in flight (ties take turns).
429, 5xx, timeouts and connection errors are retried on the next URL after an exponential backoff
with full jitter; other errors (400, 401, 404...) fail at once. A conversation that still fails gets
empty completions and is listed in `last_failures`: one bad request never sinks a batch, and the
stages drop empty replies with their usual reasons. Successful replies go to a persistent response
cache (generators/backends/response_cache.py), so a rerun sends nothing that was answered before.

Seeds: conversation i of a batch is sent seed + i, like the vLLM backend.
The API key is only handed to the SDK client: never logged, stored, or put in an error line.

Not handled: streaming, tool calls, logprobs, the legacy completions endpoint, Retry-After headers.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from generators.backends.base import Conversation, Sampling, encodable, new_usage
from generators.backends.response_cache import ResponseCache, request_key
from generators.errors import SelfAlignError, first_line

log = logging.getLogger("selfalign")

# The SDK refuses to start without a key; servers without auth ignore it (vLLM's docs use this).
NO_KEY = "EMPTY"
ERROR_CHARS = 200  # a failure's error line is cut to this length
MAX_DOUBLINGS = 30  # 2**30 * backoff is past any sane max_backoff; avoids float overflow


def api_key_from(variable: str | None, what: str) -> str | None:
    """The API key held by environment variable `variable` (None: no key); `what` names the
    setting in the error when the variable is not set."""
    if variable and variable not in os.environ:
        raise SelfAlignError(f"{what}: ${variable} is not set in the environment")
    return os.environ[variable] if variable else None


def backoff_delay(attempt: int, backoff: float, max_backoff: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(max_backoff, backoff * 2**attempt)); attempt 0 is the first."""
    return rng.uniform(0, min(max_backoff, backoff * 2 ** min(attempt, MAX_DOUBLINGS)))


def is_retryable(error: Exception) -> bool:
    """429, 5xx, timeouts and connection errors are worth another try; other errors are not."""
    import openai

    if isinstance(error, openai.APIConnectionError):  # APITimeoutError is one too
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return False


def describe(error: Exception, timeout: float) -> str:
    """One line: 'HTTP 500: overloaded', 'timeout after 2.0 s', 'connection error'."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return f"timeout after {timeout:.1f} s"
    if isinstance(error, openai.APIConnectionError):
        return "connection error"
    if isinstance(error, openai.APIStatusError):
        message = (error_detail(error.body).strip().splitlines() or [""])[0]
        return f"HTTP {error.status_code}: {message}" if message else f"HTTP {error.status_code}"
    return f"{type(error).__name__}: {first_line(error)}"


def error_detail(body: object) -> str:
    """The message in an error body, as servers differ: {"error": {"message": "m"}},
    {"error": "m"}, {"detail": "m"} and "m" -> 'm'."""
    if isinstance(body, dict):
        inner = body.get("error") or body.get("detail") or body.get("message") or ""
        return error_detail(inner) if isinstance(inner, dict) else str(inner)
    return str(body or "")


def request_params(
    model: str, conversation: Conversation, sampling: Sampling, index: int
) -> dict[str, Any]:
    """The chat-completions request for conversation `index` of a batch (also its cache key)."""
    params: dict[str, Any] = {
        "model": model,
        "messages": conversation,
        "n": sampling.n,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.seed is not None:
        params["seed"] = sampling.seed + index
    if sampling.stop:
        params["stop"] = list(sampling.stop)
    if sampling.repetition_penalty != 1.0:  # not an OpenAI parameter; vLLM and SGLang take it
        params["extra_body"] = {"repetition_penalty": sampling.repetition_penalty}
    if sampling.json_schema is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": sampling.json_schema},
        }
    return params


class Balancer:
    """Picks the base URL with the fewest requests in flight; ties take turns."""

    def __init__(self, urls: int) -> None:
        self.in_flight = [0] * urls
        self._turn = 0
        self._lock = threading.Lock()

    def acquire(self, avoid: int | None = None) -> int:
        """A URL index, counted in flight until `release`; `avoid` (the last to fail) if alone."""
        with self._lock:
            n = len(self.in_flight)
            order = [(self._turn + k) % n for k in range(n)]
            if n > 1 and avoid is not None:
                order.remove(avoid)
            pick = min(order, key=lambda i: self.in_flight[i])  # first of the least busy
            self._turn = (pick + 1) % n
            self.in_flight[pick] += 1
            return pick

    def release(self, url: int) -> None:
        with self._lock:
            self.in_flight[url] -= 1


class OpenAIBackend:
    """`model` as served at `base_urls`; `stats` counts requests (retries included), retries,
    cache hits and failures; `last_failures` lists the last `chat` call's failed conversations
    as {index, error, attempts}."""

    supports_json_schema = True

    def __init__(
        self,
        model: str,
        base_urls: list[str] | tuple[str, ...],
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        cache_dir: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        import openai

        if not base_urls:
            raise SelfAlignError("backend 'openai': no base URLs (e.g. http://127.0.0.1:8000/v1)")
        self.model, self.model_id = model, f"openai:{model}"
        self.base_urls = [url.rstrip("/") for url in base_urls]
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff, self.progress = backoff, max_backoff, progress
        self._secret = api_key or ""
        self._clients = [
            openai.OpenAI(base_url=url, api_key=api_key or NO_KEY, timeout=timeout, max_retries=0)
            for url in self.base_urls
        ]
        self._balancer = Balancer(len(self.base_urls))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._sleep = time.sleep
        self.usage = new_usage()
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0, "failures": 0}
        self.last_failures: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_urls={self.base_urls!r})"

    def chat(self, conversations: list[Conversation], sampling: Sampling) -> list[list[str]]:
        start, before = time.perf_counter(), dict(self.stats)
        jobs = [
            self._pool.submit(self._complete, conversation, sampling, i)
            for i, conversation in enumerate(conversations)
        ]
        results = [job.result() for job in jobs]
        self.last_failures = [failure for _, failure in results if failure is not None]
        seconds = time.perf_counter() - start
        with self._lock:
            self.usage["conversations"] += len(conversations)
            self.usage["seconds"] += seconds
        delta = {name: self.stats[name] - before[name] for name in self.stats}
        log.log(
            logging.INFO if self.progress else logging.DEBUG,
            "%s: %d/%d conversations answered (%d from cache), %d retries, %d failed, %.1f s",
            self.model_id,
            len(conversations) - len(self.last_failures),
            len(conversations),
            delta["cache_hits"],
            delta["retries"],
            len(self.last_failures),
            seconds,
        )
        return [completions for completions, _ in results]

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[name] += amount

    def _complete(
        self, conversation: Conversation, sampling: Sampling, index: int
    ) -> tuple[list[str], dict[str, Any] | None]:
        """One conversation's completions, from the cache or the server; a failure is listed."""
        request = request_params(self.model, conversation, sampling, index)
        key = request_key(request) if self.cache is not None else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self._count("cache_hits")
            return hit, None
        reply, error, attempts = self._send(request)
        if error is not None:
            self._count("failures")
            failure = {"index": index, "error": self._error_line(error), "attempts": attempts}
            return [""] * sampling.n, failure
        choices = sorted(reply.choices, key=lambda c: c.index)
        completions = [encodable(c.message.content or "") for c in choices][: sampling.n]
        completions += [""] * (sampling.n - len(completions))  # a server that sent fewer
        if self.cache is not None:
            self.cache.put(key, completions)
        with self._lock:
            self.usage["output_tokens"] += reply.usage.completion_tokens if reply.usage else 0
        return completions, None

    def _send(self, request: dict[str, Any]) -> tuple[Any, Exception | None, int]:
        """(reply, None, attempts), or (None, the last error, attempts) once retries are done."""
        import openai

        url: int | None = None
        attempts = 0
        while True:
            url = self._balancer.acquire(avoid=url)
            attempts += 1
            self._count("requests")
            try:
                return self._clients[url].chat.completions.create(**request), None, attempts
            except openai.OpenAIError as e:
                error: Exception = e
            finally:
                self._balancer.release(url)
            if not is_retryable(error) or attempts > self.max_retries:
                return None, error, attempts
            self._count("retries")
            self._sleep(backoff_delay(attempts - 1, self.backoff, self.max_backoff, self._rng))

    def _error_line(self, error: Exception) -> str:
        line = describe(error, self.timeout)
        if self._secret:  # a server may echo what it was sent
            line = line.replace(self._secret, "***")
        return line[:ERROR_CHARS]
