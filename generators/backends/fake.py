"""A scripted backend for unit tests of parsing and control flow only (never for demos or e2e).

`FakeLLM(reply)` answers every conversation with `reply(conversation)` (or a fixed string), and
records what it was asked, so a test can assert the exact prompts a stage sent.
"""

from __future__ import annotations

from collections.abc import Callable

from generators.backends.base import Conversation, Sampling, new_usage


class FakeLLM:
    supports_json_schema = False

    def __init__(self, reply: str | Callable[[Conversation], str], model_id: str = "fake") -> None:
        self.reply = reply if callable(reply) else (lambda _conv, text=reply: text)
        self.model_id = model_id
        self.calls: list[tuple[list[Conversation], Sampling]] = []
        self.usage = new_usage()

    def chat(self, conversations: list[Conversation], sampling: Sampling) -> list[list[str]]:
        self.calls.append((conversations, sampling))
        self.usage["conversations"] += len(conversations)
        return [[self.reply(c) for _ in range(sampling.n)] for c in conversations]
