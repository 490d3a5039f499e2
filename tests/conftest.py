"""Shared fixtures. The real model and embedder are loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def default_model():
    """The prepared default model (converted once into the cache, reused afterwards)."""
    from generators.models import resolve_model

    return resolve_model("default")


@pytest.fixture(scope="session")
def release_engines_at_end():
    """Shut vLLM engines down while pytest's streams are still open."""
    yield
    from generators.backends.vllm import release_engines

    release_engines()


@pytest.fixture(scope="module")
def vllm_llm(default_model, release_engines_at_end):
    """The process-wide vLLM engine (~30 s to start, ~4.5 GiB), shared by every module; rebuilt
    only if a training test released it (as training does before it starts)."""
    from generators.llm import load_backend

    return load_backend("vllm", "default")


@pytest.fixture(scope="session")
def hf_llm(default_model):
    from generators.llm import load_backend

    return load_backend("transformers", "default")


@pytest.fixture(scope="session")
def embedder():
    from generators.retrieval.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A throwaway Prefect server + database for the whole session (~12 s to start)."""
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
