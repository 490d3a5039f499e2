"""The transformers backend: batched `generate` with left padding and the model's chat template.

The fallback where vLLM is missing, and the reference the vLLM backend is checked against.
Not handled: JSON-schema constrained decoding (callers parse leniently), per-conversation seeds
(one seed per `chat` call).
"""

from __future__ import annotations

import logging
from typing import Any

from generators.backends.base import Conversation, Sampling, new_usage, truncate_at_stop
from generators.models import ModelRef, load_error

log = logging.getLogger("selfalign")

DEFAULT_BATCH_SIZE = 16  # conversations per `generate` call; 8-16 is where CPU throughput flattens


class TransformersBackend:
    supports_json_schema = False

    def __init__(
        self,
        ref: ModelRef,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dtype: str | None = None,
        progress: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = ref.model_id
        self.batch_size = batch_size
        self.progress = progress
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # bf16 on GPU; fp32 on CPU, where bf16 matmuls are slower without AMX.
        torch_dtype = (
            getattr(torch, dtype)
            if dtype
            else (torch.bfloat16 if device == "cuda" else torch.float32)
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(ref.path, padding_side="left")
            self.model = (
                AutoModelForCausalLM.from_pretrained(ref.path, dtype=torch_dtype).to(device).eval()
            )
        except Exception as e:  # safetensors, tokenizers and torch each raise their own types
            raise load_error("model folder", ref.path, e) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device
        self.usage = new_usage()

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model sees (chat template with the generation prompt)."""
        return self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )

    def chat(self, conversations: list[Conversation], sampling: Sampling) -> list[list[str]]:
        import time

        import torch

        start = time.perf_counter()
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        out: list[list[str]] = []
        starts = range(0, len(conversations), self.batch_size)
        if self.progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="generating", unit="batch")
        for start in starts:
            batch = conversations[start : start + self.batch_size]
            texts = self._generate([self.render(c) for c in batch], sampling)
            out.extend(texts[i * sampling.n : (i + 1) * sampling.n] for i in range(len(batch)))
        self.usage["conversations"] += len(conversations)
        self.usage["seconds"] += time.perf_counter() - start
        return out

    def _generate(self, prompts: list[str], sampling: Sampling) -> list[str]:
        import torch

        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        with torch.inference_mode():
            ids = self.model.generate(**enc, **self._generate_kwargs(sampling))
        new_tokens = ids[:, enc["input_ids"].shape[1] :]
        self.usage["output_tokens"] += int((new_tokens != self.tokenizer.pad_token_id).sum())
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [truncate_at_stop(t, sampling.stop) for t in texts]

    def _generate_kwargs(self, sampling: Sampling) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "num_return_sequences": sampling.n,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        return kwargs
