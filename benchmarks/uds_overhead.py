"""Plain SFT vs UDS batch selection, side by side in one process: seconds per optimizer step.

    python benchmarks/uds_overhead.py [--steps 4] [--batch 4] [--k 2] [--max-length 128]
                                      [--data PATH]

Three trainers, each on the default model with a fresh LoRA (r=8, all-linear), TRL `SFTConfig`
on CPU and prompt/completion rows (loss on the answer only, as trainers/sft.py trains), in the
same shuffled order (same seed):

- plain SFT on B: `SFTTrainer`, batch B, backward on B rows (what UDS replaces);
- plain SFT on k: `SFTTrainer`, batch k, backward on k rows (equal backward: what UDS costs over
  a plain step of the size it trains on); it sees the first rows of the shuffled order, not
  UDS's picks, so row lengths differ a little;
- UDS: `UDSTrainer`, batch B, a no-grad forward on B candidates, backward on the top k.

Each trainer runs in its own thread and a callback hands the turn on after every optimizer step,
so they take turns step by step and machine noise hits all; the first step of each (allocator
growth, lazy init) is a warm-up and not timed. Reports median seconds per step, UDS / plain for
both plain runs (goal against plain on B: <= 1.3) and UDS selection seconds per step (the no-grad
forward, then the scoring itself).

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
from trainers.sft import prompt_completion

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
    """Threads take turns in order: a step starts only on its owner's turn; finished ones are
    skipped. Three threads, 1 finished: 0 -> 2 -> 0 -> ..."""

    def __init__(self, size: int) -> None:
        self.cond, self.turn, self.finished = threading.Condition(), 0, [False] * size

    def wait_for(self, me: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me)

    def pass_on(self, me: int, finished: bool = False) -> None:
        with self.cond:
            self.finished[me] = self.finished[me] or finished
            size = len(self.finished)
            after = [(me + i) % size for i in range(1, size + 1)]
            self.turn = next((t for t in after if not self.finished[t]), self.turn)
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


def run_all(trainers: list[Any], baton: Baton) -> None:
    """train() every trainer in its own thread, the threads taking turns step by step.

    No thread exits before all are done: here, a thread exiting while another still trained
    made the other's remaining steps ~3x slower (its OpenMP pool going away, presumably).
    """
    errors: list[BaseException] = []
    all_done = threading.Barrier(len(trainers))

    def run(trainer: Any, me: int) -> None:
        try:
            trainer.train()
        except BaseException as e:  # surfaced below, after the others are released
            errors.append(e)
        finally:
            baton.pass_on(me, finished=True)
            all_done.wait()

    threads = [threading.Thread(target=run, args=(t, i)) for i, t in enumerate(trainers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def build(args: argparse.Namespace) -> list[tuple[str, int, Any]]:
    """(name, backward rows, trainer): plain SFT on B, plain SFT on k, UDS; same rows, settings."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from generators.models import resolve_model
    from trainers.uds_trainer import UDSTrainer

    chats = conversations(args.data)[: (args.steps + 1) * args.batch]
    dataset = Dataset.from_list([prompt_completion(c) for c in chats])
    path = resolve_model("default").path

    def config(name: str, batch: int) -> Any:
        return SFTConfig(
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=batch,
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
    plain = SFTTrainer(model=path, args=config("plain", args.batch), **common)
    equal = SFTTrainer(model=path, args=config("plain_k", args.k), **common)
    uds = UDSTrainer(model=path, args=config("uds", args.batch), uds_k=args.k, **common)
    names = (f"plain SFT on B={args.batch}", f"plain SFT on k={args.k}", "UDS")
    return list(zip(names, (args.batch, args.k, args.k), (plain, equal, uds), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per trainer")
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
    runs = build(args)
    uds = runs[-1][2]
    baton, marks = Baton(len(runs)), []
    times: list[list[float]] = [[] for _ in runs]
    for me, (_, _, trainer) in enumerate(runs):
        extra = (uds.uds_stats, marks) if trainer is uds else ()
        trainer.add_callback(step_timer(baton, me, times[me], *extra))
    run_all([trainer for _, _, trainer in runs], baton)

    # step 1 of each: warm-up
    timed = [(name, rows, t[1:]) for (name, rows, _), t in zip(runs, times, strict=True)]
    report(args, timed, marks, uds.uds_stats)


def report(
    args: argparse.Namespace,
    timed: list[tuple[str, int, list[float]]],
    marks: list[tuple[float, float]],
    stats: dict[str, float],
) -> None:
    """The table of seconds per step, UDS / each plain run, and where UDS's selection time goes.

    `timed` holds (name, backward rows, seconds of each timed step), UDS last.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"UDS overhead: batch {args.batch}, k {args.k}, max_length {args.max_length}, "
        f"{len(timed[0][2])} steps each in turn after a warm-up step each"
    )
    cols = ("trainer", "backward rows", "s / step (median)", "s / step (mean)", "UDS / this")
    for col in (*cols, "each step"):
        table.add_column(col)
    uds_median = statistics.median(timed[-1][2])
    for name, rows, t in timed:
        median, each = statistics.median(t), " ".join(f"{s:.1f}" for s in t)
        row = (name, str(rows), f"{median:.2f}", f"{statistics.mean(t):.2f}")
        table.add_row(*row, f"{uds_median / median:.3f}", each)
    steps = len(timed[-1][2])
    forward, scoring = ((marks[-1][i] - marks[0][i]) / steps for i in (0, 1))
    console = Console()
    console.print(table)
    ratios = [f"{uds_median / statistics.median(t):.3f} vs {name}" for name, _, t in timed[:-1]]
    console.print(f"UDS / plain (medians): {' | '.join(ratios)} (goal vs B: <= 1.3)")
    console.print(
        f"UDS selection per timed step: {scoring:.2f} s = no-grad forward {forward:.2f} s "
        f"+ scoring {scoring - forward:.2f} s; uds_stats {stats}"
    )


if __name__ == "__main__":
    main()
