"""Our backends vs the raw engine, side by side in one process: output tokens/s and the ratio.

    python benchmarks/backend_overhead.py [--rounds 5] [--skip-transformers]

vLLM: `VLLMBackend.chat` vs `vllm.LLM.chat` on the same engine object, 64 prompts, the same
SamplingParams (seeded per prompt, so both sides generate the same tokens). transformers:
`TransformersBackend.chat` vs a hand-written batched `generate` (chat template, left padding,
same batch size) on the same model object. Rounds alternate ours/raw so machine noise hits both;
the ratio is of median tok/s. Goal: >= 0.98.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from generators.io import read_jsonl

DATA = Path(__file__).resolve().parents[1] / "data" / "biomed"
N_PROMPTS = 64


def demo_prompts(n: int = N_PROMPTS) -> list[list[dict[str, str]]]:
    """n single-turn chats from the demo data: held-out questions, seed tasks, passage summaries."""
    texts = [r["question"] for r in read_jsonl(DATA / "heldout_qa.jsonl")]
    for seed in read_jsonl(DATA / "seeds.jsonl"):
        inp = seed["instances"][0].get("input", "")
        texts.append(seed["instruction"] + (f"\n\n{inp}" if inp else ""))
    texts += [
        "Summarize in two sentences:\n" + r["text"] for r in read_jsonl(DATA / "corpus.jsonl")
    ]
    return [[{"role": "user", "content": t}] for t in texts[:n]]


def alternate(ours, raw, rounds: int) -> tuple[list[float], list[float]]:
    """Run ours() and raw() alternately; each returns output tokens. Returns tok/s lists."""
    ours(), raw()  # warm-up: first calls pay for allocator growth and kernel selection
    speeds: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((ours, speeds[0]), (raw, speeds[1])):
            start = time.perf_counter()
            tokens = fn()
            out.append(tokens / (time.perf_counter() - start))
    return speeds


def bench_vllm(rounds: int) -> tuple[list[float], list[float]]:
    from vllm import SamplingParams

    from generators.llm import Sampling, load_backend

    llm = load_backend("vllm", "default")
    chats = demo_prompts()
    sampling = Sampling(max_tokens=64, temperature=0.8, top_p=0.95, seed=0)
    raw_params = [
        SamplingParams(max_tokens=64, temperature=0.8, top_p=0.95, seed=i)
        for i in range(len(chats))
    ]

    def ours() -> int:
        before = llm.usage["output_tokens"]
        llm.chat(chats, sampling)
        return int(llm.usage["output_tokens"] - before)

    def raw() -> int:
        outs = llm.engine.chat(chats, raw_params, use_tqdm=False)
        return sum(len(c.token_ids) for o in outs for c in o.outputs)

    return alternate(ours, raw, rounds)


def bench_transformers(rounds: int) -> tuple[list[float], list[float]]:
    import torch

    from generators.llm import Sampling, load_backend

    llm = load_backend("transformers", "default")
    chats, tok, model = demo_prompts(), llm.tokenizer, llm.model
    sampling = Sampling(max_tokens=32, temperature=0.0)

    def ours() -> int:
        before = llm.usage["output_tokens"]
        llm.chat(chats, sampling)
        return int(llm.usage["output_tokens"] - before)

    def raw() -> int:
        tokens = 0
        for start in range(0, len(chats), llm.batch_size):
            texts = [
                tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                for c in chats[start : start + llm.batch_size]
            ]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                ids = model.generate(
                    **enc, max_new_tokens=32, do_sample=False, pad_token_id=tok.pad_token_id
                )
            new = ids[:, enc["input_ids"].shape[1] :]
            tok.batch_decode(new, skip_special_tokens=True)
            tokens += int((new != tok.pad_token_id).sum())
        return tokens

    return alternate(ours, raw, max(1, rounds // 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"backend overhead: {N_PROMPTS} prompts, median of alternating rounds")
    for col in ("backend", "ours tok/s", "raw tok/s", "ours / raw", "rounds"):
        table.add_column(col)
    cases = [("vllm (LLM.chat)", bench_vllm)]
    if not args.skip_transformers:
        cases.append(("transformers (generate)", bench_transformers))
    for name, bench in cases:
        ours, raw = bench(args.rounds)
        o, r = statistics.median(ours), statistics.median(raw)
        table.add_row(name, f"{o:.1f}", f"{r:.1f}", f"{o / r:.3f}", str(len(ours)))
    Console().print(table)

    from generators.backends.vllm import release_engines

    release_engines()


if __name__ == "__main__":
    main()
