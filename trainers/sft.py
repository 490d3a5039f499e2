"""LoRA fine-tuning with TRL + peft on exported datasets: SFT on train.jsonl, DPO on dpo.jsonl.

    train_sft(model, "export/train.jsonl", out)   -> out/adapter/, out/merged/
    train_dpo(model, "export/dpo.jsonl", out)     -> the same, starting from `model`

The recipe's `train.lora`, `train.sft` and `train.dpo` mappings are peft `LoraConfig` and TRL
`SFTConfig` / `DPOConfig` fields laid over the defaults below; an unknown field is a `DataError`
naming it. Rows become TRL's conversational prompt/completion form, so the loss covers the
assistant's answer only. bf16 on a CUDA GPU, fp32 on CPU. The merged model (adapter folded into
the base weights) is a plain HF folder that vLLM, transformers and the next round load as-is.

A checkpoint is saved at the end of every epoch (TRL's `save_strategy`, the last one kept) in
out/trainer/; a run stopped or crashed part-way resumes from it when started again on the same
inputs (trainers/outputs.py; other inputs start over). UDS's selection memory is not checkpointed:
a resumed UDS run starts it empty.

`method="full"` trains every weight instead of an adapter (the 135M default fits in memory on a
CPU); out/merged/ is then the trained model itself and there is no adapter folder. `precision`
picks fp32 or bf16 autocast (trainers/precision.py: bf16 on CUDA, and on a CPU with bf16 units
only where a loss check passed). Padding-free batches (TRL's `padding_free`: the rows of a batch
laid end to end with per-row position ids, so no row attends to another and no token is padding)
are the default; `sft.padding_free: false` pads each batch to its longest row instead.

Not handled: QLoRA, multi-GPU launch (run the same code under `accelerate launch` yourself).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainers.data import DataError, load_messages, load_preferences
from trainers.evaluate import release_memory
from trainers.outputs import resume_point, run_inputs, save_outputs
from trainers.precision import Precision

log = logging.getLogger("selfalign")
Method = Literal["lora", "full"]


# SmolLM2-sized defaults (LoRA on every linear layer, as QLoRA/alignment-handbook recipes do).
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,
    # no adapter dropout: its random masks took 13% of a CPU step, and without it the held-out
    # loss after the same tokens matched (benchmarks/train_throughput.py)
    "lora_dropout": 0.0,
    "target_modules": "all-linear",
    "task_type": "CAUSAL_LM",
}
# Shared by SFT and DPO. Gradient checkpointing (TRL's default) only costs time on small models.
COMMON_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 2,
    "logging_steps": 5,
    "save_strategy": "epoch",  # a checkpoint per epoch: a stopped or crashed run resumes
    "save_total_limit": 1,
    "report_to": "none",
    "gradient_checkpointing": False,
    "dataloader_num_workers": 0,
}
SFT_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "num_train_epochs": 2,
    "learning_rate": 2e-4,  # the usual LoRA rate (TRL's 2e-5 is for full fine-tuning)
    "max_length": 512,
    # a batch's rows end to end with per-row position ids: no padding, no row sees another
    # (a padded batch of the demo's rows was a third padding)
    "padding_free": True,
    "include_num_input_tokens_seen": "all",  # tokens processed, for TrainResult
}
DPO_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "num_train_epochs": 1,
    "learning_rate": 5e-6,
    "beta": 0.1,
    "max_length": 512,
}


@dataclass
class TrainResult:
    """What one training run produced and how its loss moved."""

    adapter: str
    merged: str
    steps: int
    examples: int
    first_loss: float | None
    last_loss: float | None
    seconds: float
    losses: list[float] = field(default_factory=list)
    uds: dict[str, Any] | None = None
    step_seconds: list[float] = field(default_factory=list)
    tokens: int | None = None  # training tokens of one epoch (prompt + answer, no padding)
    processed_tokens: int | None = None  # tokens the model processed, padding included
    method: str = "lora"
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_fields(config_cls: type, overrides: dict[str, Any], section: str) -> None:
    """A recipe mapping may only name fields of the TRL/peft config it feeds."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    for key in overrides:
        if key not in known:
            raise DataError(f"train.{section}: unknown {config_cls.__name__} field {key!r}")


def check_configs(lora: dict[str, Any], sft: dict[str, Any], dpo: dict[str, Any] | None) -> None:
    """Fail before any work if a recipe's train mapping names a field its config lacks."""
    from peft import LoraConfig
    from trl import DPOConfig, SFTConfig

    check_fields(LoraConfig, lora, "lora")
    check_fields(SFTConfig, sft, "sft")
    check_fields(DPOConfig, dpo or {}, "dpo")


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def lora_config(overrides: dict[str, Any] | None):
    from peft import LoraConfig

    overrides = overrides or {}
    check_fields(LoraConfig, overrides, "lora")
    return LoraConfig(**{**LORA_DEFAULTS, **overrides})


def trainer_args(
    config_cls: type, defaults: dict, overrides: dict | None, section: str, out: Path,
    bf16: bool = False,
):  # fmt: skip
    """A TRL config: defaults, then the device and precision, then the recipe's fields."""
    overrides = overrides or {}
    check_fields(config_cls, overrides, section)
    device = {"bf16": bf16, "use_cpu": not on_gpu()}
    return config_cls(output_dir=str(out / "trainer"), **{**defaults, **device, **overrides})


def prompt_completion(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """[user, assistant] -> {"prompt": [user], "completion": [assistant]} (loss on the answer)."""
    if messages[-1]["role"] != "assistant":
        raise DataError(f"a training row must end with an assistant message, got {messages[-1]}")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def load_base(model_path: str, full: bool = False, bf16: bool = False):
    """The model and its tokenizer. LoRA in bf16 keeps the frozen base weights in bf16 (no cast
    of every weight at every step; peft keeps the adapter in fp32); full fine-tuning keeps fp32
    master weights and autocast supplies bf16 matmuls where chosen."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if bf16 and not full else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


@dataclass
class Progress:
    """What the callback keeps while training: each logged loss, each step's seconds."""

    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)


def progress_log(report: Callable[[str], None], progress: Progress):
    """A TrainerCallback that fills `progress` and reports each logged loss through `report`."""
    from transformers import TrainerCallback

    class ProgressLog(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            progress.step_seconds.append(time.perf_counter() - self.started)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                progress.losses.append(float(logs["loss"]))
                report(f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}")

    return ProgressLog()


def _run(
    trainer, tokenizer, model_path: str, out: Path, examples: int, progress: Progress,
    inputs: str, report: Callable[[str], None], extra: dict[str, Any] | None = None,
):  # fmt: skip
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_point(out / "trainer", inputs, report))
    adapter, merged = save_outputs(trainer, tokenizer, model_path, out)
    losses = progress.losses
    result = TrainResult(
        adapter=str(adapter) if adapter else "",
        merged=str(merged),
        steps=trainer.state.global_step,
        examples=examples,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        seconds=round(time.perf_counter() - start, 1),
        losses=losses,
        uds=dict(getattr(trainer, "uds_stats", {}) or {}) or None,
        step_seconds=[round(x, 4) for x in progress.step_seconds],
        processed_tokens=int(getattr(trainer.state, "num_input_tokens_seen", 0)) or None,
        **(extra or {}),
    )
    del trainer
    release_memory()
    return result


def trainer_kwargs(
    model_path: str, rows: list[dict], args: Any, lora: dict | None, progress: Progress, report,
    full: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """What every TRL trainer here takes: model, tokenizer, dataset, LoRA (none for full
    fine-tuning), the progress log."""
    from datasets import Dataset

    model, tokenizer = load_base(model_path, full, args.bf16)
    return dict(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=None if full else lora_config(lora),
        callbacks=[progress_log(report, progress)],
    )


def train_sft(
    model_path: str,
    train_file: str | Path,
    out: str | Path,
    lora: dict[str, Any] | None = None,
    sft: dict[str, Any] | None = None,
    uds: dict[str, Any] | None = None,
    report: Callable[[str], None] = log.info,
    method: Method = "lora",
    precision: Precision = "auto",
    cache: Path | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """SFT on an exported train.jsonl (LoRA, or every weight with method="full"); `uds`
    (alpha, k, buffer, sketch_dim) picks UDS; `cache` keeps the bf16 check's verdict;
    `callbacks` are more TrainerCallbacks (a profiler, say)."""
    from trl import SFTConfig, SFTTrainer

    from trainers.precision import choose

    out, progress = Path(out), Progress()
    rows = [prompt_completion(m) for m in load_messages(train_file)]
    dtype, why = choose(precision, model_path, cache)
    if uds:  # UDS picks rows out of a padded batch: it needs the rows apart
        sft = {**(sft or {}), "padding_free": False}
    args = trainer_args(SFTConfig, SFT_DEFAULTS, sft, "sft", out, bf16=dtype == "bf16")
    cut = padding_free_cut(args)
    kwargs = trainer_kwargs(model_path, rows, args, lora, progress, report, method == "full")
    kwargs["callbacks"] += callbacks or []
    if uds:
        from trainers.uds_trainer import UDSTrainer

        trainer = UDSTrainer(**kwargs, **{f"uds_{k}": v for k, v in uds.items()})
    else:
        trainer = SFTTrainer(**kwargs)
    if cut:
        trainer.train_dataset = truncated(trainer.train_dataset, cut)
    report(f"SFT ({method}, {dtype}: {why}) on {len(rows)} examples from {train_file} "
           f"({'UDS' if uds else 'all samples'})")  # fmt: skip
    inputs = run_inputs(model_path, Path(train_file), lora, sft, uds, method, dtype)
    extra = {"method": method, "precision": dtype, "tokens": _real_tokens(trainer)}
    return _run(trainer, kwargs["processing_class"], model_path, out, len(rows), progress, inputs,
                report, extra)  # fmt: skip


def padding_free_cut(args) -> int | None:
    """Padding-free batches without packing: TRL refuses a max_length there (its collator lays
    the rows end to end and would not cut them), so the length moves from the config to
    `truncated`, applied to the tokenized rows; returns it (None when nothing moves)."""
    if not args.padding_free or args.packing or args.max_length is None:
        return None
    cut, args.max_length = args.max_length, None
    return cut


def truncated(dataset, max_length: int):
    """Tokenized rows cut to their first max_length tokens, as TRL cuts them itself; a row left
    with no answer token is dropped (it would carry no loss)."""

    def cut(row):
        return {"input_ids": row["input_ids"][:max_length], "labels": row["labels"][:max_length]}

    dataset = dataset.map(cut)
    return dataset.filter(lambda row: any(label != -100 for label in row["labels"]))


def _real_tokens(trainer) -> int:
    """Tokens of the prepared training rows (prompt + answer, after truncation), one epoch."""
    data = trainer.train_dataset
    if "seq_lengths" in data.column_names:  # packed: each row holds several sequences
        return sum(sum(x) for x in data["seq_lengths"])
    return sum(len(x) for x in data["input_ids"])


def train_dpo(
    model_path: str,
    dpo_file: str | Path,
    out: str | Path,
    lora: dict[str, Any] | None = None,
    dpo: dict[str, Any] | None = None,
    report: Callable[[str], None] = log.info,
) -> TrainResult:
    """LoRA DPO on an exported dpo.jsonl; the reference is the model with its adapter off."""
    from trl import DPOConfig, DPOTrainer

    out, progress = Path(out), Progress()
    rows = load_preferences(dpo_file)
    if not rows:
        raise DataError(f"{dpo_file}: no preference pairs")
    args = trainer_args(DPOConfig, DPO_DEFAULTS, dpo, "dpo", out, bf16=on_gpu())
    kwargs = trainer_kwargs(model_path, rows, args, lora, progress, report)
    trainer = DPOTrainer(**kwargs)
    report(f"DPO on {len(rows)} preference pairs from {dpo_file}")
    inputs = run_inputs(model_path, Path(dpo_file), lora, dpo)
    return _run(trainer, kwargs["processing_class"], model_path, out, len(rows), progress, inputs,
                report)  # fmt: skip
