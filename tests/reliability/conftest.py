"""Fixtures that run the real flow on a scripted LLM and a hashing embedder (no model loads)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from generators.backends.fake import FakeLLM
from tests.reliability.fakes import HashEmbedder


@pytest.fixture
def fake_models(monkeypatch) -> Callable[[Callable], FakeLLM]:
    """`fake_models(reply)`: the flow's LLM tasks answer with `reply(conversation)`, its index
    uses HashEmbedder, and loading a real backend or embedder fails the test."""
    import flows.tasks
    import generators.llm
    import generators.retrieval.embedder

    def no_model(*args, **kwargs):
        raise AssertionError("a real model was loaded")

    monkeypatch.setattr(generators.llm, "load_backend", no_model)
    monkeypatch.setattr(generators.retrieval.embedder, "Embedder", no_model)
    embedder = HashEmbedder()
    monkeypatch.setattr(flows.tasks, "get_embedder", lambda name: embedder)

    def install(reply: Callable) -> FakeLLM:
        llm = FakeLLM(reply)
        monkeypatch.setattr(flows.tasks, "get_llm", lambda backend, model, options="": llm)
        return llm

    return install
