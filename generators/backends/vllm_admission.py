"""Admission of a batch to a vLLM engine within its KV cache.

A batch larger than the KV cache is not handed to the engine in one go: `run_admitted` keeps the
requests in flight within the cache (prompt + max_tokens each) and adds the next as one finishes.
Handed everything at once, vLLM admits prompts while blocks are free and then preempts running
requests as their outputs grow, recomputing their prefill (15 preemptions, ~5 % of the time, on
256 demo prompts at max_tokens 128 on CPU; see benchmarks/RESULTS.md).

Not handled: a single request larger than the cache (it runs alone; vLLM may still preempt it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def kv_capacity(llm: Any) -> int:
    """Tokens the engine's KV cache holds (blocks x block size), read from the started engine."""
    cache = llm.llm_engine.vllm_config.cache_config
    return int(cache.num_gpu_blocks or 0) * int(cache.block_size)


def request_tokens(prompt_len: int, params: Any, block: int, max_len: int) -> int:
    """The KV tokens one request can come to hold: prompt + max_tokens per sample, in whole
    blocks, at most the context length."""
    per_sample = min(prompt_len + params.max_tokens, max_len)
    return params.n * -(-per_sample // block) * block


def run_admitted(
    engine: Any,
    prompts: Sequence[list[int]],
    params: Sequence[Any],
    need: Sequence[int],
    capacity: int,
    on_done: Callable[[int], None] | None = None,
) -> list[Any]:
    """Run every request on a vLLM `LLMEngine`, keeping the in-flight requests' `need` within
    `capacity` (one request always runs, however large); the next request goes in as soon as one
    finishes. Returns the final outputs in input order; aborts what is in flight on any error."""
    from vllm import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    outputs: list[Any] = [None] * len(prompts)
    in_flight: dict[str, int] = {}
    used = nxt = 0
    try:
        while nxt < len(prompts) or in_flight:
            while nxt < len(prompts) and (not in_flight or used + need[nxt] <= capacity):
                params[nxt].output_kind = RequestOutputKind.FINAL_ONLY
                rid = f"selfalign-{nxt}"
                engine.add_request(rid, TokensPrompt(prompt_token_ids=prompts[nxt]), params[nxt])
                in_flight[rid] = nxt
                used += need[nxt]
                nxt += 1
            for out in engine.step():
                if out.finished and out.request_id in in_flight:
                    i = in_flight.pop(out.request_id)
                    used -= need[i]
                    outputs[i] = out
                    if on_done is not None:
                        on_done(i)
    except BaseException:
        if in_flight:
            engine.abort_request(list(in_flight))
        raise
    return outputs
