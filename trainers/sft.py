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

Not handled: full-weight fine-tuning, QLoRA, packing, multi-GPU launch (run the same code under
`accelerate launch` yourself).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.data import DataError, load_messages, load_preferences
from trainers.evaluate import release_memory
from trainers.outputs import resume_point, run_inputs, save_outputs

log = logging.getLogger("selfalign")


# SmolLM2-sized defaults (LoRA on every linear layer, as QLoRA/alignment-handbook recipes do).
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
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


def trainer_args(config_cls: type, defaults: dict, overrides: dict | None, section: str, out: Path):
    """A TRL config: defaults, then the recipe's fields, then the device's precision."""
    overrides = overrides or {}
    check_fields(config_cls, overrides, section)
    gpu = on_gpu()
    device = {"bf16": gpu, "use_cpu": not gpu}
    return config_cls(output_dir=str(out / "trainer"), **{**defaults, **device, **overrides})


def prompt_completion(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """[user, assistant] -> {"prompt": [user], "completion": [assistant]} (loss on the answer)."""
    if messages[-1]["role"] != "assistant":
        raise DataError(f"a training row must end with an assistant message, got {messages[-1]}")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def load_base(model_path: str):
    """The model in the training precision and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if on_gpu() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def loss_log(report: Callable[[str], None], losses: list[float]):
    """A TrainerCallback that keeps each logged loss and reports progress through `report`."""
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                report(f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}")

    return LossLog()


def _run(
    trainer, tokenizer, model_path: str, out: Path, examples: int, losses: list[float],
    inputs: str, report: Callable[[str], None],
):  # fmt: skip
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_point(out / "trainer", inputs, report))
    adapter, merged = save_outputs(trainer, tokenizer, model_path, out)
    result = TrainResult(
        adapter=str(adapter),
        merged=str(merged),
        steps=trainer.state.global_step,
        examples=examples,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        seconds=round(time.perf_counter() - start, 1),
        losses=losses,
        uds=dict(getattr(trainer, "uds_stats", {}) or {}) or None,
    )
    del trainer
    release_memory()
    return result


def trainer_kwargs(
    model_path: str, rows: list[dict], args: Any, lora: dict | None, losses: list[float], report
) -> dict[str, Any]:
    """What every TRL trainer here takes: model, tokenizer, dataset, LoRA, the loss log."""
    from datasets import Dataset

    model, tokenizer = load_base(model_path)
    return dict(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(lora),
        callbacks=[loss_log(report, losses)],
    )


def train_sft(
    model_path: str,
    train_file: str | Path,
    out: str | Path,
    lora: dict[str, Any] | None = None,
    sft: dict[str, Any] | None = None,
    uds: dict[str, Any] | None = None,
    report: Callable[[str], None] = log.info,
) -> TrainResult:
    """LoRA SFT on an exported train.jsonl; `uds` (alpha, k, buffer, sketch_dim) picks UDS."""
    from trl import SFTConfig, SFTTrainer

    out, losses = Path(out), []
    rows = [prompt_completion(m) for m in load_messages(train_file)]
    args = trainer_args(SFTConfig, SFT_DEFAULTS, sft, "sft", out)
    kwargs = trainer_kwargs(model_path, rows, args, lora, losses, report)
    if uds:
        from trainers.uds_trainer import UDSTrainer

        trainer = UDSTrainer(**kwargs, **{f"uds_{k}": v for k, v in uds.items()})
    else:
        trainer = SFTTrainer(**kwargs)
    report(f"SFT on {len(rows)} examples from {train_file} ({'UDS' if uds else 'all samples'})")
    inputs = run_inputs(model_path, Path(train_file), lora, sft, uds)
    return _run(trainer, kwargs["processing_class"], model_path, out, len(rows), losses, inputs,
                report)  # fmt: skip


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

    out, losses = Path(out), []
    rows = load_preferences(dpo_file)
    if not rows:
        raise DataError(f"{dpo_file}: no preference pairs")
    args = trainer_args(DPOConfig, DPO_DEFAULTS, dpo, "dpo", out)
    kwargs = trainer_kwargs(model_path, rows, args, lora, losses, report)
    trainer = DPOTrainer(**kwargs)
    report(f"DPO on {len(rows)} preference pairs from {dpo_file}")
    inputs = run_inputs(model_path, Path(dpo_file), lora, dpo)
    return _run(trainer, kwargs["processing_class"], model_path, out, len(rows), losses, inputs,
                report)  # fmt: skip
