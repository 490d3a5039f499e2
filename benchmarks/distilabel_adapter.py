"""distilabel 1.5.3's `vLLM` class adapted to vLLM 0.32 on a CPU, for benchmarks/generation.py.

Runs only in distilabel's own environment (`make bench-env`). What is adapted, and nothing else:
- `generate`: distilabel builds `SamplingParams(..., logits_processors=[...])`, which vLLM 0.32
  refuses; for the duration of the call `vllm.SamplingParams` is a stand-in that drops that one
  argument (an empty list here: no structured output), so the rest of distilabel's `generate`
  (chat template, batching, token statistics) runs as shipped;
- `unload`: distilabel's deletes `llm_engine.model_executor`, which vLLM 0.32's engine no longer
  has, and the pipeline hangs; this one shuts the engine core down;
- the caller passes `disable_cuda_device_placement=True` (there is no CUDA device to place).
Each `generate` call appends {start, end, tokens} to the file named by $BENCH_SPANS, from which
the benchmark takes distilabel's generation tok/s.
"""

from __future__ import annotations

import functools
import json
import os
import time

import vllm
from distilabel.models.llms.vllm import vLLM

_SamplingParams = vllm.SamplingParams


def _params(*args, logits_processors=None, **kwargs):
    if logits_processors:
        raise ValueError("logits processors are not supported by vLLM 0.32")
    return _SamplingParams(*args, **kwargs)


class AdaptedVLLM(vLLM):
    @functools.wraps(vLLM.generate)  # distilabel reads its runtime parameters off the signature
    def generate(self, *args, **kwargs):
        start = time.time()
        vllm.SamplingParams = _params
        try:
            out = super().generate(*args, **kwargs)
        finally:
            vllm.SamplingParams = _SamplingParams
        tokens = sum(sum(o["statistics"]["output_tokens"]) for o in out)
        with open(os.environ["BENCH_SPANS"], "a") as f:
            f.write(json.dumps({"start": start, "end": time.time(), "tokens": tokens}) + "\n")
        return out

    def unload(self) -> None:
        if self._model is not None:
            try:
                self._model.llm_engine.engine_core.shutdown()
            except Exception:  # already gone: nothing to free
                pass
        self._model = None
        self._tokenizer = None
