"""What every LLM backend shares: chat messages, sampling parameters, the `LLM` protocol, and the
small text helpers the backends use. generators/llm.py picks a backend by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from generators.errors import SelfAlignError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
Conversation = list[Message]

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
