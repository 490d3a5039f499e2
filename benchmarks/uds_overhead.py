"""Plain SFT vs UDS batch selection, side by side in one process: seconds per optimizer step.

    python benchmarks/uds_overhead.py [--steps 4] [--batch 4] [--k 2] [--max-length 128]
                                      [--data PATH]

Both sides: the default model with a fresh LoRA (r=8, all-linear), TRL `SFTConfig` on CPU, the
same rows in the same shuffled order (same seed). Plain: `SFTTrainer`, backward on B rows. UDS:
`UDSTrainer`, a no-grad forward on B candidates, backward on the top k. Each trainer runs in its
own thread and a callback hands the turn over after every optimizer step, so the two alternate
step by step and machine noise hits both; the first step of each (allocator growth, lazy init)
is a warm-up and not timed. Reports median seconds per step, the ratio UDS / plain (goal <= 1.3)
and UDS selection seconds per step (the no-grad forward, then the scoring itself).

Data: --data (train.jsonl with `messages`, or a held-out QA JSONL), else the demo export
runs/biomed-demo/export/train.jsonl, else data/biomed/heldout_qa.jsonl as user/assistant pairs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from trainers.data import DataError, load_messages, load_qa

ROOT = Path(__file__).resolve().parents[1]
DEMO_EXPORT = ROOT / "runs" / "biomed-demo" / "export" / "train.jsonl"
DEMO_QA = ROOT / "data" / "biomed" / "heldout_qa.jsonl"
LORA = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}


def conversations(path: Path | None) -> list[list[dict[str, str]]]:
    """Training chats: an export's `messages`, or question/answer rows turned into two turns."""
    path = path or (DEMO_EXPORT if DEMO_EXPORT.is_file() else DEMO_QA)
    try:
        return load_messages(path)
    except DataError:
        return [
            [{"role": "user", "content": qa.prompt}, {"role": "assistant", "content": qa.answer}]
            for qa in load_qa(path)
        ]


class Baton:
    """Two threads take turns: a step starts only on its owner's turn (or when the other ended)."""

    def __init__(self) -> None:
        self.cond, self.turn, self.finished = threading.Condition(), 0, [False, False]

    def wait_for(self, me: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me or self.finished[1 - me])

    def pass_on(self, me: int, finished: bool = False) -> None:
        with self.cond:
            self.turn, self.finished[me] = 1 - me, self.finished[me] or finished
            self.cond.notify_all()


def step_timer(
    baton: Baton,
    me: int,
    seconds: list[float],
    stats: dict[str, float] | None = None,
    marks: list[tuple[float, float]] | None = None,
) -> Any:
    """A TrainerCallback that waits for its turn, times the step and passes the turn on."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            baton.wait_for(me)
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seconds.append(time.perf_counter() - self.start)
            if stats is not None and marks is not None:
                marks.append((stats["forward_seconds"], stats["scoring_seconds"]))
            baton.pass_on(me)

    return StepTimer()


def run_both(plain: Any, uds: Any, baton: Baton) -> None:
    """train() both trainers in two threads that alternate step by step.

    Neither thread exits before both are done: here, a thread exiting while the other still
    trained made the other's remaining steps ~3x slower (its OpenMP pool going away, presumably).
    """
    errors: list[BaseException] = []
    both_done = threading.Barrier(2)

    def run(trainer: Any, me: int) -> None:
        try:
            trainer.train()
        except BaseException as e:  # surfaced below, after the other thread is released
            errors.append(e)
        finally:
            baton.pass_on(me, finished=True)
            both_done.wait()

    threads = [threading.Thread(target=run, args=(t, i)) for i, t in enumerate((plain, uds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """The plain SFTTrainer and the UDSTrainer, on the same rows with the same settings."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from generators.models import resolve_model
    from trainers.uds import UDSTrainer

    chats = conversations(args.data)[: (args.steps + 1) * args.batch]
    dataset = Dataset.from_list([{"messages": c} for c in chats])
    path = resolve_model("default").path

    def config(name: str) -> Any:
        return SFTConfig(
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=args.batch,
            max_length=args.max_length,
            max_steps=args.steps + 1,
            report_to=[],
            save_strategy="no",
            logging_steps=args.steps + 1,
            disable_tqdm=True,
            output_dir=str(args.out / name),
            dataloader_num_workers=0,
        )

    common = {"train_dataset": dataset, "peft_config": LoraConfig(**LORA)}
    plain = SFTTrainer(model=path, args=config("plain"), **common)
    uds = UDSTrainer(model=path, args=config("uds"), uds_k=args.k, **common)
    return plain, uds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per side")
    parser.add_argument("--batch", type=int, default=4, help="rows per batch (UDS candidates)")
    parser.add_argument("--k", type=int, default=2, help="rows UDS keeps for backward")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=Path("/tmp/uds_overhead"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    torch.set_num_threads(args.threads)
    plain, uds = build(args)
    baton, marks = Baton(), []
    times: tuple[list[float], list[float]] = ([], [])
    plain.add_callback(step_timer(baton, 0, times[0]))
    uds.add_callback(step_timer(baton, 1, times[1], uds.uds_stats, marks))
    run_both(plain, uds, baton)

    report(args, [t[1:] for t in times], marks, uds.uds_stats)  # step 1 of each: warm-up


def report(
    args: argparse.Namespace,
    timed: list[list[float]],
    marks: list[tuple[float, float]],
    stats: dict[str, float],
) -> None:
    """The table of seconds per step, the ratio, and where UDS's selection time goes."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"UDS overhead: batch {args.batch}, k {args.k}, max_length {args.max_length}, "
        f"{len(timed[0])} alternating steps after a warm-up step each"
    )
    for col in ("trainer", "backward rows", "s / step (median)", "s / step (mean)", "each step"):
        table.add_column(col)
    for name, rows, t in (("plain SFT", args.batch, timed[0]), ("UDS", args.k, timed[1])):
        each = " ".join(f"{s:.1f}" for s in t)
        table.add_row(
            name, str(rows), f"{statistics.median(t):.2f}", f"{statistics.mean(t):.2f}", each
        )
    forward = (marks[-1][0] - marks[0][0]) / len(timed[1])
    scoring = (marks[-1][1] - marks[0][1]) / len(timed[1])
    ratio = statistics.median(timed[1]) / statistics.median(timed[0])
    console = Console()
    console.print(table)
    console.print(f"UDS / plain (medians): {ratio:.3f} (goal <= 1.3)")
    console.print(
        f"UDS selection per timed step: {scoring:.2f} s = no-grad forward {forward:.2f} s "
        f"+ scoring {scoring - forward:.2f} s; uds_stats {stats}"
    )


if __name__ == "__main__":
    main()
