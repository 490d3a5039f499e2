"""The generation stage vs the raw engine vs distilabel (P1, P2), side by side, alternating.

    python benchmarks/generation.py [--prompts 256] [--max-tokens 128] [--rounds 2]
                                    [--distilabel-python .venv-distilabel/bin/python]

The workload is the demo recipe's instruction-generation prompts (seed demos + a corpus passage,
built by flows/stages/origins/self_instruct_steps.py with an empty machine pool),
`--prompts` of them, one engine on the default model, the recipe's sampling (temperature 0.9,
top_p 0.95) with `--max-tokens`. Three
contenders, each a fresh process per round, in rotating order:

    ours        the generation stage as a run does it: `generate_instructions` in a Prefect flow
                (Prefect tasks, result persistence, parsing, lineage, heuristic and novelty
                filters, stage files), against a Prefect server the script starts
    raw         `vllm.LLM.chat` on the same conversations and SamplingParams, one call
    distilabel  distilabel 1.5.3's Pipeline: LoadDataFromDicts >> ChatGeneration on its `vLLM`
                class (input_batch_size 50, its default), adapted to vLLM 0.32 (see `_child_
                distilabel`); it cannot seed each row, so its samples differ from the others'

Every side builds the engine with the same arguments as generators/backends/vllm.py. Generation
tok/s = output tokens / the span from the first generation call's start to the last one's end
(engine start excluded); whole-process wall time is measured by this script around each child.
distilabel's unseeded samples come out longer or shorter than the seeded ones, and most of the
time here goes to the prompts (~138k prompt tokens vs ~28k output tokens), so the table also gives
(prompt + output) tokens/s: prompt tokens counted once by the model's tokenizer, the same for all
sides. Ratios are of medians. Goals: ours / raw >= 0.98; ours / distilabel >= 1.0.

"ours" goes through generators/backends/vllm.py, which admits the batch within the KV cache;
"raw" hands the whole batch to one `LLM.chat`, as a user of vLLM would.

distilabel needs its own environment (its pins clash with ours), made by `make bench-env`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "flows" / "recipes" / "biomed-demo.yaml"
DISTILABEL_PYTHON = ROOT / ".venv-distilabel" / "bin" / "python"
DISTILABEL_BATCH = 50  # distilabel's default input_batch_size
# generators/vllm_backend.get_engine's arguments on CPU (chunked prefill off: seeded sampling);
# the dtype is its `cpu_dtype()`, read in the parent (`workload`) and handed to every side.
ENGINE_ARGS = {
    "max_model_len": 2048,
    "enforce_eager": True,
    "seed": 0,
    "enable_chunked_prefill": False,
}


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# ---- children: each runs in its own process and prints one RESULT line ----------------------


def _child_raw(work: dict) -> None:
    from vllm import LLM, SamplingParams

    llm = LLM(model=work["model"], dtype=work["dtype"], **ENGINE_ARGS)
    params = [
        SamplingParams(
            max_tokens=work["max_tokens"],
            temperature=work["temperature"],
            top_p=work["top_p"],
            seed=work["seed"] + i,
        )
        for i in range(len(work["conversations"]))
    ]
    start = time.perf_counter()
    outputs = llm.chat(work["conversations"], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    emit({"tokens": tokens, "seconds": seconds, "rows": len(outputs)})


def _child_ours(work: dict, runs_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    from prefect import flow

    from flows.recipe import load_recipe
    from flows.run import Run
    from flows.stages.origins.self_instruct import generate_instructions
    from flows.tasks import ENGINE, LLM_CALLS, get_llm
    from generators.corpus import load_corpus
    from generators.seeds import load_seeds

    @flow(name="bench-generate")
    def bench() -> dict:
        recipe = load_recipe(DEMO, work["sets"] + [f"runs_dir={runs_dir}"])
        run = Run.start(recipe)
        seeds = load_seeds(recipe.seeds)
        c = recipe.corpus
        passages = load_corpus(c.path, c.chunk_words, c.overlap_words).passages
        get_llm(run.backend, recipe.model.name, run.llm_options)  # the engine, started first
        start = time.perf_counter()
        kept, _ = generate_instructions(run.tools(), seeds, passages)
        seconds = time.perf_counter() - start
        return {"tokens": ENGINE["output_tokens"], "seconds": seconds, "kept": len(kept)}

    result = bench()
    if LLM_CALLS["conversations"] != len(work["conversations"]):
        sys.exit(f"ours asked {LLM_CALLS['conversations']} conversations, expected all")
    emit({**result, "rows": LLM_CALLS["conversations"]})


def _child_distilabel(work: dict, spans: str) -> None:
    """distilabel's own pipeline on its vLLM class, adapted as benchmarks/distilabel_adapter.py
    says (a SamplingParams without `logits_processors`, an unload that does not hang, no CUDA
    placement)."""
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import ChatGeneration

    from benchmarks.distilabel_adapter import AdaptedVLLM

    os.environ["BENCH_SPANS"] = spans
    llm = AdaptedVLLM(
        model=work["model"],
        dtype=work["dtype"],
        seed=ENGINE_ARGS["seed"],
        extra_kwargs={
            k: ENGINE_ARGS[k] for k in ("max_model_len", "enforce_eager", "enable_chunked_prefill")
        },
        disable_cuda_device_placement=True,
    )
    with Pipeline(name="bench-generate") as pipeline:
        load = LoadDataFromDicts(data=[{"messages": c} for c in work["conversations"]])
        generate = ChatGeneration(llm=llm, input_batch_size=DISTILABEL_BATCH)
        load >> generate
    kwargs = {
        "max_new_tokens": work["max_tokens"],
        "temperature": work["temperature"],
        "top_p": work["top_p"],
    }
    distiset = pipeline.run(
        use_cache=False, parameters={generate.name: {"llm": {"generation_kwargs": kwargs}}}
    )
    rows = sum(len(split) for config in distiset.values() for split in config.values())
    calls = [json.loads(line) for line in Path(spans).read_text().splitlines()]
    emit(
        {
            "tokens": sum(c["tokens"] for c in calls),
            "seconds": max(c["end"] for c in calls) - min(c["start"] for c in calls),
            "rows": rows,
        }
    )


# ---- the parent -------------------------------------------------------------------------------


def workload(prompts: int, max_tokens: int) -> dict:
    """The demo recipe's first generation batch of `prompts` prompts, as plain JSON."""
    sys.path.insert(0, str(ROOT))
    from flows.recipe import load_recipe
    from flows.stages.origins import self_instruct_steps as stages
    from generators.backends.vllm import cpu_dtype
    from generators.corpus import load_corpus
    from generators.models import resolve_model
    from generators.seeds import load_seeds

    sets = [
        f"generate.prompts={prompts}",
        f"generate.batch_prompts={prompts}",
        f"generate.max_tokens={max_tokens}",
    ]
    recipe = load_recipe(DEMO, sets)
    cfg, c = recipe.generate, recipe.corpus
    seeds = load_seeds(recipe.seeds)
    passages = load_corpus(c.path, c.chunk_words, c.overlap_words).passages
    conversations = [
        stages.generation_prompt(i, cfg, recipe.seed, seeds, [], passages).conversation
        for i in range(prompts)
    ]
    model = resolve_model(recipe.model.name).path
    from transformers import AutoTokenizer

    from generators.backends.vllm import chat_prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(model)
    prompt_tokens = sum(len(chat_prompt_ids(tokenizer, c)) for c in conversations)
    return {
        "model": model,
        "dtype": cpu_dtype(),
        "prompt_tokens": prompt_tokens,
        "conversations": conversations,
        "max_tokens": max_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": stages.derive_seed(recipe.seed, "generate", 0),
        "sets": sets,
    }


def run_child(side: str, python: str, work_file: Path, scratch: Path, env: dict) -> dict:
    extra = {
        "ours": ["--runs-dir", str(scratch / f"runs-{time.time_ns()}")],
        "distilabel": ["--spans", str(scratch / f"spans-{time.time_ns()}.jsonl")],
        "raw": [],
    }[side]
    command = [python, __file__, "--child", side, str(work_file), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch)
    wall = time.perf_counter() - start
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{side} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return {**result, "wall": wall, "tok_s": result["tokens"] / result["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--distilabel-python", default=str(DISTILABEL_PYTHON))
    parser.add_argument("--child", choices=["raw", "ours", "distilabel"], help=argparse.SUPPRESS)
    parser.add_argument("work", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--runs-dir", help=argparse.SUPPRESS)
    parser.add_argument("--spans", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = json.loads(Path(args.work).read_text())
        if args.child == "raw":
            _child_raw(work)
        elif args.child == "ours":
            _child_ours(work, args.runs_dir)
        else:
            _child_distilabel(work, args.spans)
        return

    sys.path.insert(0, str(ROOT))
    from generators.backends.vllm import cpu_engine_env

    sides = {"ours": sys.executable, "raw": sys.executable}
    if Path(args.distilabel_python).exists():
        sides["distilabel"] = args.distilabel_python
    else:
        print(f"note: no {args.distilabel_python} (run `make bench-env`): distilabel skipped")
    sys.path.insert(0, str(ROOT))
    from benchmarks.rerun import free_port
    from flows.ops.ui import api_url, start_server, stop_server, wait_healthy

    results: dict[str, list[dict]] = {side: [] for side in sides}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="selfalign-gen-") as tmp:
        scratch = Path(tmp)
        work_file = scratch / "workload.json"
        work = workload(args.prompts, args.max_tokens)
        work_file.write_text(json.dumps(work))
        port, log = free_port(), scratch / "server.log"
        server = start_server("127.0.0.1", port, log, home=scratch / "prefect-home")
        try:
            wait_healthy(server, "127.0.0.1", port, log)
            env = {
                **cpu_engine_env(),  # every side's engine gets the same CPU settings
                **os.environ,
                "PREFECT_API_URL": api_url("127.0.0.1", port),
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "PYTHONPATH": str(ROOT),
            }
            order = list(sides)
            for r in range(args.rounds):
                for side in order[r % len(order) :] + order[: r % len(order)]:
                    result = run_child(side, sides[side], work_file, scratch, env)
                    result["all_s"] = (work["prompt_tokens"] + result["tokens"]) / result["seconds"]
                    results[side].append(result)
                    print(
                        f"round {r + 1} {side}: {result['tokens']} tokens in "
                        f"{result['seconds']:.1f} s = {result['tok_s']:.1f} tok/s, "
                        f"process {result['wall']:.1f} s",
                        flush=True,
                    )
        finally:
            stop_server(server)

    med = {
        side: {
            key: statistics.median(r[key] for r in rs)
            for key in ("tok_s", "all_s", "seconds", "wall")
        }
        for side, rs in results.items()
    }
    ours = med["ours"]
    print(
        f"\n{args.prompts} prompts ({work['prompt_tokens']} prompt tokens), max_tokens "
        f"{args.max_tokens}, {args.rounds} rounds (medians)"
    )
    header = ("side", "output tokens", "gen s", "gen tok/s", "all tok/s", "process wall s")
    print(
        "| " + " | ".join(header) + " | ours ÷ side tok/s | ours ÷ side all tok/s "
        "| side ÷ ours gen s | side ÷ ours wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for side, m in med.items():
        tokens = "/".join(str(r["tokens"]) for r in results[side])
        print(
            f"| {side} | {tokens} | {m['seconds']:.1f} | {m['tok_s']:.1f} | {m['all_s']:.1f} | "
            f"{m['wall']:.1f} | {ours['tok_s'] / m['tok_s']:.3f} | "
            f"{ours['all_s'] / m['all_s']:.3f} | {m['seconds'] / ours['seconds']:.3f} | "
            f"{m['wall'] / ours['wall']:.3f} |"
        )
    print("goals: ours / raw tok/s >= 0.98; ours / distilabel tok/s >= 1.0")
    print(f"whole script: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
