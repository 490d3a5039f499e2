"""The Prefect tasks that do heavy work, cached by content.

Each task takes a `key` the flow computes from stage + stage config + input content + model id +
code version, and Prefect persists its result under that key in the run's cache folder. A rerun
finds every key and returns the stored results without loading a model; a run killed mid-way
redoes at most the batch that was in flight.

Models are loaded lazily inside the tasks and shared by every task of the process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from prefect import task
from prefect.context import TaskRunContext

from generators.llm import LLM, Conversation, Sampling, encodable
from generators.records import json_digest

# Measurements of this process, kept here rather than returned: a cached task gives back what it
# returned when it ran, so a rerun answered from the cache would count work it did not do.
# `llm_batch` counts them where the work happens; the manifest reads them (flows/counts.py).
# What this process asked the LLM (a fully cached rerun leaves both at 0).
LLM_CALLS = {"batches": 0, "conversations": 0}
# When this process's model backend became ready (unix time, after the engine started) and the
# seconds spent inside its `chat` since: the engine's busy fraction in the manifest.
ENGINE = {"ready_at": 0.0, "busy_seconds": 0.0, "output_tokens": 0}
# Requests of the OpenAI-compatible backend in this process (generators/backends/openai.py).
OPENAI_STATS = {"requests": 0, "retries": 0, "cache_hits": 0, "failures": 0}
# Modules whose source shapes the generation stages' prompts and parsing; a judged stage names
# its own module (e.g. "filters.rating"), so editing a judge does not invalidate generation.
PROMPT_MODULES = (
    "generators.self_instruct",
    "generators.respond",
    "flows.stages.origins.self_instruct_steps",
)


def content_key(*parts: Any) -> str:
    """sha256 of the JSON of `parts`: ("generate", {"t": 0.9}, [...]) -> 'a3f0...'."""
    return json_digest(parts)


@lru_cache(maxsize=16)
def code_version(modules: tuple[str, ...] = PROMPT_MODULES) -> str:
    """Hash of the modules that shape prompts and parsing: editing a prompt invalidates caches."""
    h = hashlib.sha256()
    for name in modules:
        origin = importlib.util.find_spec(name).origin
        h.update(Path(origin).read_bytes())
    return h.hexdigest()[:16]


def given_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return parameters["key"]


def openai_options(options: str) -> dict[str, Any]:
    """OpenAIBackend arguments from the recipe's `model.openai` section (as JSON); the API key
    comes from the environment variable the section names, so it is never a task parameter."""
    from generators.backends.openai import api_key_from

    opts = json.loads(options or "{}")
    key_env = opts.pop("api_key_env", None)
    if not opts.pop("cache", True):
        opts["cache_dir"] = None
    opts["api_key"] = api_key_from(key_env, "model.openai.api_key_env")
    return opts


@lru_cache(maxsize=4)
def get_llm(backend: str, model: str, options: str = "") -> LLM:
    """The process-wide backend; `options` is the JSON of `model.openai` for backend 'openai'."""
    from generators.llm import load_backend

    extra = openai_options(options) if backend == "openai" else {}
    return load_backend(backend, model, progress=True, **extra)


@lru_cache(maxsize=2)
def get_embedder(name: str):
    from generators.retrieval.embedder import Embedder

    return Embedder(name)


class LLMBatch(TypedDict):
    """What `llm_batch` returns (and its cache keeps): the replies and the failed requests."""

    replies: list[list[str]]  # the completions of each conversation (empty ones if it failed)
    failures: list[dict[str, Any]]  # {index, error, attempts} of requests that failed for good


@task(cache_key_fn=given_key, persist_result=True)
def llm_batch(
    key: str,
    conversations: list[Conversation],
    sampling: dict[str, Any],
    backend: str,
    model: str,
    options: str = "",
) -> LLMBatch:
    """One batched LLM call (`options`: backend settings, not part of the cache key)."""
    llm = get_llm(backend, model, options)
    ENGINE["ready_at"] = ENGINE["ready_at"] or time.time()
    LLM_CALLS["batches"] += 1
    LLM_CALLS["conversations"] += len(conversations)
    before = dict(getattr(llm, "stats", {}))
    tokens, start = llm.usage["output_tokens"], time.perf_counter()
    raw = llm.chat(conversations, Sampling(**sampling))
    ENGINE["busy_seconds"] += time.perf_counter() - start
    ENGINE["output_tokens"] += int(llm.usage["output_tokens"] - tokens)
    # lone surrogates (from a server's JSON) would crash every later write: replace them once
    replies = [[encodable(c) for c in r] for r in raw]
    for name, count in before.items():
        OPENAI_STATS[name] = OPENAI_STATS.get(name, 0) + llm.stats[name] - count
    failures = [dict(f) for f in getattr(llm, "last_failures", ())]
    return {"replies": replies, "failures": failures}


@task(cache_key_fn=given_key, persist_result=True)
def build_index(key: str, folder: str, embedder: str, ids: list[str], texts: list[str]) -> str:
    """Embed the corpus passages into a faiss index folder (reused while unchanged)."""
    from generators.retrieval.index import PassageIndex

    PassageIndex.build_or_load(ids, texts, get_embedder(embedder), folder)
    return folder


@lru_cache(maxsize=2)
def get_index(folder: str, embedder: str, manifest: str):
    """A loaded index, read from disk once per process while its manifest is unchanged."""
    from generators.retrieval.index import PassageIndex

    return PassageIndex.load(folder, get_embedder(embedder))


@task(cache_key_fn=given_key, persist_result=True)
def retrieve_batch(
    key: str, folder: str, embedder: str, queries: list[str], k: int
) -> list[list[tuple[str, float]]]:
    """Top-k passages (id, cosine) for each query."""
    from generators.retrieval.index import MANIFEST_FILE

    if k == 0:
        return [[] for _ in queries]
    manifest = (Path(folder) / MANIFEST_FILE).read_text()
    return get_index(folder, embedder, manifest).search(queries, k)
