"""Training speed against the machine's limit: the trainer's settings side by side.

    python benchmarks/train_throughput.py [--data runs/biomed-demo/export/train.jsonl]
        [--tokens 8000] [--repeats 2] [--settings before,padfree-fp32,padfree-bf16]
        [--method lora] [--profile]

Settings (each a trainers/sft.py option; LoRA r 8 on all linear layers as the demo recipe sets
it, lr 1e-3, 4 rows a step):

    before            the trainer before this benchmark: each batch padded to its longest row,
                      fp32, LoRA dropout 0.05
    padfree-fp32      the rows of a batch end to end in one sequence with per-row position ids
                      (no padding; no row attends to another), fp32, dropout 0.05
    padfree-nodrop    the same without adapter dropout (its random masks cost 13% of a step)
    padfree-bf16      the same under bf16 autocast, base weights in bf16 (trainers/precision.py)
                      = today's default where the bf16 check passes (precision auto)
    packed-bf16       TRL's best-fit-decreasing packing into 512-token sequences, one a step
                      (about 5 rows: fewer optimizer steps for the same tokens)

Each setting trains the same rows (a seeded slice of the export with --tokens real tokens, one
epoch) from the same LoRA start, in one process, alternating setting by setting for --repeats
rounds; reported are medians over rounds of: real (non-padding) tokens per second over the
timed steps (the first step is a warm-up), padding share of the tokens processed, seconds per
step, and the answer loss on held-out rows of the export (never trained on) after training: the
loss after the same real tokens. Beside them: this machine's matmul rate on the model's linear
shapes (torch, fp32 and bf16, the threads training uses) and the model-FLOPs utilisation that
follows (4 x parameters FLOPs per token for LoRA: forward 2N, backward through activations 2N;
6N for full fine-tuning). --profile adds a torch profile of one step of the last setting.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainers.data import load_messages  # noqa: E402

DEMO_EXPORT = ROOT / "runs" / "biomed-demo" / "export" / "train.jsonl"
LORA: dict[str, Any] = {}  # the trainers' defaults: r 8, alpha 16, all linear layers
DROPOUT = {"lora_dropout": 0.05}  # the adapter dropout before this benchmark
PADDED = {"padding_free": False}
PACKED = {"packing": True, "packing_strategy": "bfd", "per_device_train_batch_size": 1}
SETTINGS: dict[str, dict[str, Any]] = {
    "before": {"sft": PADDED, "precision": "fp32", "lora": DROPOUT},
    "padfree-fp32": {"sft": {}, "precision": "fp32", "lora": DROPOUT},
    "padfree-nodrop": {"sft": {}, "precision": "fp32"},
    "padfree-bf16": {"sft": {}, "precision": "auto"},
    "packed-bf16": {"sft": PACKED, "precision": "auto"},
}
HELD_OUT = 64  # export rows kept out of training to measure the loss on


def slices(data: Path, tokens: int, seed: int = 0) -> tuple[list, list]:
    """(training rows holding about `tokens` tokens, HELD_OUT rows never trained on)."""
    rows = load_messages(data)
    random.Random(seed).shuffle(rows)
    held, rest = rows[:HELD_OUT], rows[HELD_OUT:]
    out, total = [], 0
    for messages in rest:
        if total >= tokens:
            break
        out.append(messages)
        total += sum(len(m["content"]) for m in messages) // 4  # rough; the trainer counts exactly
    return out, held


def matmul_rates(threads: int, tokens: int = 512) -> dict[str, float]:
    """GFLOP/s of x @ W^T over the model's linear shapes (576 hidden, 1536 MLP, 49152 vocab)."""
    import torch

    torch.set_num_threads(threads)
    shapes = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)]
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        flops, seconds = 0.0, 0.0
        for k, n in shapes:
            x, w = torch.randn(tokens, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
            for _ in range(3):
                x @ w.T
            reps = max(3, int(2e10 / (2 * tokens * k * n)))
            start = time.perf_counter()
            for _ in range(reps):
                x @ w.T
            seconds += time.perf_counter() - start
            flops += 2 * tokens * k * n * reps
        out[name] = flops / seconds / 1e9
    return out


def held_out_loss(model_dir: str, held: list) -> float:
    from trainers.evaluate import answer_losses, load_model, mean_answer_loss, release_memory

    model, tok = load_model(model_dir)
    prompts = [m[0]["content"] for m in held]
    answers = [m[-1]["content"] for m in held]
    loss = mean_answer_loss(answer_losses(model, tok, prompts, answers))
    del model
    release_memory()
    return loss


def run_setting(
    name: str, model: str, train_file: Path, out: Path, method: str, callbacks: list | None = None
) -> dict:
    from generators.models import cache_dir
    from trainers.sft import train_sft

    cfg = SETTINGS[name]
    sft = {
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "include_num_input_tokens_seen": "all",
        **cfg["sft"],
    }
    lora = {**LORA, **cfg.get("lora", {})}
    result = train_sft(
        model,
        train_file,
        out,
        lora=lora,
        sft=sft,
        method=method,
        precision=cfg["precision"],
        cache=cache_dir(),
        report=lambda _: None,
        callbacks=callbacks,
    )
    timed = result.step_seconds[1:] or result.step_seconds
    real = result.tokens * (len(timed) / max(1, len(result.step_seconds)))
    processed = result.processed_tokens or result.tokens
    return {
        "precision": result.precision,
        "real_tokens": result.tokens,
        "processed_tokens": processed,
        "padding_share": 1 - result.tokens / processed,
        "steps": result.steps,
        "s_per_step": statistics.median(timed),
        "real_tok_s": real / sum(timed),
        "merged": result.merged,
    }


def profile_step(name: str, model: str, train_file: Path, out: Path) -> str:
    """The top operators of one training step (torch profiler, self CPU time)."""
    import torch
    from transformers import TrainerCallback

    table: list[str] = []

    class Profile(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:
                self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                self.prof.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                self.prof.__exit__(None, None, None)
                table.append(
                    self.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
                )
                control.should_training_stop = True

    run_setting(name, model, train_file, out, "lora", [Profile()])
    return table[0] if table else "(no profile)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEMO_EXPORT)
    ap.add_argument("--tokens", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--method", default="lora", choices=("lora", "full"))
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    import torch
    import transformers
    import trl

    from generators.io import write_jsonl_atomic
    from generators.models import resolve_model

    model = resolve_model("default").path
    names = args.settings.split(",")
    rows, held = slices(args.data, args.tokens)
    work = Path(tempfile.mkdtemp(prefix="train-throughput-"))
    train_file = work / "train.jsonl"
    write_jsonl_atomic(train_file, ({"messages": m} for m in rows))
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, trl "
        f"{trl.__version__}, {threads} threads; {len(rows)} training rows, {len(held)} held out"
    )
    results: dict[str, list[dict]] = {n: [] for n in names}
    for rnd in range(args.repeats):
        for name in names:
            r = run_setting(name, model, train_file, work / name, args.method)
            r["held_out_loss"] = held_out_loss(r.pop("merged"), held)
            results[name].append(r)
            print(
                f"round {rnd + 1} {name}: {r['real_tok_s']:.0f} real tok/s, "
                f"{r['s_per_step']:.2f} s/step, padding {r['padding_share']:.1%}, "
                f"held-out loss {r['held_out_loss']:.4f}",
                flush=True,
            )
    rates = matmul_rates(threads)
    n_params = sum(
        p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(model).parameters()
    )
    per_token = (4 if args.method == "lora" else 6) * n_params
    base = names[0]
    summary = {
        "machine": {
            "threads": threads,
            "matmul_gflops": rates,
            "torch": torch.__version__,
            "trl": trl.__version__,
            "transformers": transformers.__version__,
        },
        "params": n_params,
        "settings": {},
    }
    print(
        f"\nmatmul on the model's shapes: fp32 {rates['fp32']:.0f} GFLOP/s, "
        f"bf16 {rates['bf16']:.0f} GFLOP/s"
    )
    print("| setting | real tok/s | vs first | s/step | padding | held-out loss | vs first | MFU |")
    print("|---|---|---|---|---|---|---|---|")
    ref = {
        k: statistics.median(r[k] for r in results[base]) for k in ("real_tok_s", "held_out_loss")
    }
    for name in names:
        numbers = [k for k, v in results[name][0].items() if isinstance(v, int | float)]
        med = {k: statistics.median(r[k] for r in results[name]) for k in numbers}
        dtype = results[name][0]["precision"]
        mfu = med["real_tok_s"] * per_token / (rates[dtype] * 1e9)
        med.update(
            speedup=med["real_tok_s"] / ref["real_tok_s"],
            loss_change=med["held_out_loss"] / ref["held_out_loss"] - 1,
            mfu=mfu,
        )
        summary["settings"][name] = {"median": med, "rounds": results[name]}
        print(
            f"| {name} | {med['real_tok_s']:.0f} | {med['speedup']:.2f}x | "
            f"{med['s_per_step']:.2f} | {med['padding_share']:.1%} | "
            f"{med['held_out_loss']:.4f} | {med['loss_change']:+.2%} | {mfu:.0%} ({dtype}) |"
        )
    if args.profile:
        print("\nprofile of one step,", names[-1])
        print(profile_step(names[-1], model, train_file, work / "profile"))
    out = ROOT / "benchmarks" / "results" / "train_throughput.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{out}")


if __name__ == "__main__":
    main()
