"""The vLLM backend: in-process `vllm.LLM`, one engine per process, reused across calls.

Building an engine costs ~30 s on CPU (eager) and GiBs of memory, so engines are cached per
(model folder, engine options) for the life of the process; `release_engines()` frees them, e.g.
before training takes the GPU. On CPU the engine runs eager (CUDA-graph-free; torch.compile on CPU
costs ~80 s more at start for ~10 % throughput and its cache does not reload).

vLLM starts its engine core with spawn: build engines inside functions (never at import time).

A batch larger than the KV cache is not handed to the engine in one go: the requests in flight
stay within the cache (generators/backends/vllm_admission.py).
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import time
from typing import Any

from generators.backends.base import Conversation, Sampling, new_usage
from generators.backends.vllm_admission import kv_capacity, request_tokens, run_admitted
from generators.models import ModelRef, load_error

log = logging.getLogger("selfalign")

MAX_MODEL_LEN = 2048
CPU_KVCACHE_GIB = "2"  # VLLM_CPU_KVCACHE_SPACE: plenty for a 135M model with 2k context
_ENGINES: dict[tuple[Any, ...], Any] = {}


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def cpu_dtype() -> str:
    """The engine dtype on CPU: float32 on every CPU.

    bfloat16 is wrong or slow with vllm-cpu 0.32: on a 2-core AVX2 machine torch emulates it
    (8 demo prompts took 284 s in bfloat16, 56 s in float32, long enough for vLLM to declare its
    engine dead mid-batch); on a 2-core AMX machine (amx_bf16, avx512_bf16) it is 2.2x faster
    (332 vs 150 output tok/s, 32 prompts x 64 tokens) but its greedy answer to "What is the capital
    of France?" is "L'Étoile, la Marseillaise, ..." where transformers in bfloat16 and vLLM in
    float32 both answer "The capital of France is Paris." (tests/generators/test_backends.py)."""
    return "float32"


SMALL_CPU_CORES = 4  # at most this many cores: the scheduler gets no core of its own


def cpu_engine_env(cores: int | None = None) -> dict[str, str]:
    """Environment defaults for a vLLM engine on CPU (a value already set is kept by callers).

    vLLM reserves one core for its scheduler process and runs the model on the others: on a
    2-core machine that is one compute thread. Sharing both cores with the scheduler measured
    1.6x faster there (16 demo-sized prompts x 64 tokens: 21.1 s vs 34.6 s), so machines with
    few cores reserve none."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    env = {"VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB}
    if cores <= SMALL_CPU_CORES:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return env


def get_engine(
    path: str,
    *,
    max_model_len: int = MAX_MODEL_LEN,
    enforce_eager: bool | None = None,
    gpu_memory_utilization: float = 0.85,
    dtype: str | None = None,
) -> Any:
    """The process-wide engine for this model folder and options; built on first use."""
    cpu = _on_cpu()
    eager = cpu if enforce_eager is None else enforce_eager
    dtype = dtype or (cpu_dtype() if cpu else "auto")
    key = (path, max_model_len, eager, gpu_memory_utilization, dtype)
    if key not in _ENGINES:
        from vllm import LLM

        if cpu:
            for name, value in cpu_engine_env().items():
                os.environ.setdefault(name, value)
        log.info(
            "starting vLLM engine for %s (%s, %s, eager=%s)",
            path,
            "cpu" if cpu else "gpu",
            dtype,
            eager,
        )
        kwargs: dict[str, Any] = {
            "model": path,
            "dtype": dtype,
            "max_model_len": max_model_len,
            "enforce_eager": eager,
            "seed": 0,
        }
        if cpu:
            # Seeded requests + chunked prefill crash vllm-cpu: the sampler rewinds a partially
            # prefilled request's generator with CUDA-only offsets ("CPU Generator does not use
            # offset"). Whole-prompt prefill never discards a sampled token, so never rewinds.
            kwargs["enable_chunked_prefill"] = False
        else:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        try:
            _ENGINES[key] = LLM(**kwargs)
        except Exception as e:  # vLLM raises many types; all mean "this folder won't load"
            raise load_error("model folder", path, e) from None
    return _ENGINES[key]


def release_engines() -> None:
    """Shut down every cached engine and free its memory (GPU hand-over before training)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        try:
            engine.llm_engine.engine_core.shutdown()
        except Exception as e:  # already gone: nothing left to free
            log.debug("engine shutdown: %s", e)
    gc.collect()
    # only a process that imported torch can hold GPU memory; importing it here at interpreter
    # exit fails (threads can no longer register their own exit hooks)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


atexit.register(
    release_engines
)  # a clean engine-core exit at interpreter exit, not a crash warning


def to_vllm_params(sampling: Sampling, index: int) -> Any:
    """vLLM SamplingParams for conversation `index` of a batch (seed + index when seeded)."""
    from vllm import SamplingParams

    kwargs: dict[str, Any] = {
        "n": sampling.n,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "repetition_penalty": sampling.repetition_penalty,
        "stop": list(sampling.stop) or None,
        "seed": None if sampling.seed is None else sampling.seed + index,
    }
    if sampling.json_schema is not None:
        from vllm.sampling_params import StructuredOutputsParams

        kwargs["structured_outputs"] = StructuredOutputsParams(json=sampling.json_schema)
    return SamplingParams(**kwargs)


def chat_prompt_ids(tokenizer: Any, conversation: Conversation) -> list[int]:
    """The conversation rendered with the model's chat template and tokenized, as `LLM.chat`
    does it (the template adds the special tokens)."""
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return list(tokenizer.encode(text, add_special_tokens=False))


class VLLMBackend:
    supports_json_schema = True

    def __init__(self, ref: ModelRef, *, progress: bool = False, **engine_options: Any) -> None:
        self.model_id = ref.model_id
        self.progress = progress
        self.engine = get_engine(ref.path, **engine_options)
        self.tokenizer = self.engine.get_tokenizer()
        self.kv_budget: int | None = None  # tokens in flight; None: the engine's KV capacity
        self.usage = new_usage()
        # the last chat call's requests the engine could not take (a prompt longer than the
        # model's context): their replies are empty, the stages drop them with a reason
        self.last_failures: list[dict[str, Any]] = []

    def chat(self, conversations: list[Conversation], sampling: Sampling) -> list[list[str]]:
        if not conversations:
            return []
        start = time.perf_counter()
        if sampling.seed is None:
            shared = to_vllm_params(sampling, 0)  # one object for all: no per-request seeds
            params = [shared] * len(conversations)
        else:
            params = [to_vllm_params(sampling, i) for i in range(len(conversations))]
        outputs = self._run(conversations, params)
        self.usage["conversations"] += len(conversations)
        done = [o for o in outputs if o is not None]
        self.usage["output_tokens"] += sum(len(c.token_ids) for o in done for c in o.outputs)
        self.usage["seconds"] += time.perf_counter() - start
        return [
            [c.text for c in o.outputs] if o is not None else [""] * sp.n
            for o, sp in zip(outputs, params, strict=True)
        ]

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        return chat_prompt_ids(self.tokenizer, conversation)

    def _run(self, conversations: list[Conversation], params: list[Any]) -> list[Any]:
        """The engine's outputs in input order; None where the prompt does not fit the context
        (listed in last_failures instead of failing the whole batch)."""
        config = self.engine.llm_engine.vllm_config
        block, max_len = config.cache_config.block_size, config.model_config.max_model_len
        prompts = [self.prompt_ids(c) for c in conversations]
        fit = [i for i, p in enumerate(prompts) if len(p) < max_len]
        self.last_failures = [
            {"index": i, "error": f"prompt of {len(p)} tokens does not fit the model's context "
             f"of {max_len} tokens", "attempts": 1}
            for i, p in enumerate(prompts) if len(p) >= max_len
        ]  # fmt: skip
        outputs: list[Any] = [None] * len(prompts)
        if fit:
            ran = self._admit([prompts[i] for i in fit], [params[i] for i in fit], block, max_len)
            for i, out in zip(fit, ran, strict=True):
                outputs[i] = out
        return outputs

    def _admit(self, prompts: list[list[int]], params: list[Any], block: int, max_len: int):
        need = [
            request_tokens(len(p), sp, block, max_len)
            for p, sp in zip(prompts, params, strict=True)
        ]
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(prompts), desc="generating", unit="conv")
        try:
            return run_admitted(
                self.engine.llm_engine,
                prompts,
                params,
                need,
                self.kv_budget or kv_capacity(self.engine),
                on_done=None if bar is None else (lambda _i: bar.update(1)),
            )
        finally:
            if bar is not None:
                bar.close()
