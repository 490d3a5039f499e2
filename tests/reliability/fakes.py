"""Stand-ins that let the real flow run with no model loaded: a scripted LLM (FakeLLM with
per-stage replies), a hashing embedder, and a model folder that resolves but never loads.

For control-flow tests only: what a stage does with a reply, never what a model would say.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from generators import backtranslate, respond, self_instruct
from generators.llm import Conversation

DATA = Path(__file__).resolve().parents[2] / "data" / "biomed"
SYSTEM_PROMPTS = {
    self_instruct.INSTRUCTION_SYSTEM_PROMPT: "generate",
    self_instruct.CLASSIFICATION_SYSTEM_PROMPT: "classify",
    respond.SYSTEM_PROMPT: "respond",
    respond.FROM_PASSAGE_PROMPT: "respond",
    backtranslate.SYSTEM_PROMPT: "backtranslate",
}


def stage_of(conversation: Conversation) -> str:
    """Which pipeline stage sent `conversation`, from its system prompt or format line."""
    first = conversation[0]
    if first["role"] == "system" and first["content"] in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[first["content"]]
    if self_instruct.INSTANCE_FORMAT in conversation[-1]["content"]:
        return "instances"
    raise AssertionError(f"a prompt from no known stage: {conversation!r:.300}")


class Script:
    """Replies per stage: each stage's `bad` replies first (one per conversation, in order), then
    its `good` ones in turn. `fed[stage]` names the bad kinds that stage was given."""

    def __init__(self, bad: dict[str, dict[str, str]], good: dict[str, list[str]]) -> None:
        self.bad, self.good = bad, good
        self.count: dict[str, int] = defaultdict(int)
        self.fed: dict[str, set[str]] = defaultdict(set)

    def __call__(self, conversation: Conversation) -> str:
        stage = stage_of(conversation)
        i = self.count[stage]
        self.count[stage] += 1
        kinds = list(self.bad.get(stage, {}).items())
        if i < len(kinds):
            self.fed[stage].add(kinds[i][0])
            return kinds[i][1]
        good = self.good[stage]
        return good[(i - len(kinds)) % len(good)]


class HashEmbedder:
    """Bag of hashed words as unit vectors: deterministic, instant, no model."""

    model_id = "hash-embedder"
    dim = 64

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            vecs[row, 0] = 1e-3  # an empty text still has a direction
            for word in text.lower().split():
                vecs[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def model_folder(path: Path) -> str:
    """A folder that passes the model checks (config, weights, tokenizer) but cannot load."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "config.json": "{}",
        "model.safetensors": "",
        "tokenizer.json": "{}",
    }.items():
        (path / name).write_text(text)
    return str(path)


def tiny_recipe(tmp_path: Path, name: str, prompts: int, runs_dir: Path | None = None) -> dict:
    """The biomed seeds and corpus, `prompts` generation prompts, backend transformers on a model
    folder that never loads (the test replaces the LLM)."""
    return {
        "name": name,
        "seed": 3,
        "seeds": str(DATA / "seeds.jsonl"),
        "corpus": {"path": str(DATA / "corpus.jsonl")},
        "model": {"backend": "transformers", "name": model_folder(tmp_path / "model")},
        "generate": {"prompts": prompts, "batch_prompts": 4, "max_tokens": 200},
        "batch_records": 8,
        "runs_dir": str(runs_dir or tmp_path / "runs"),
    }
