"""What a training run leaves on disk, and the checkpoints it resumes from.

    out/adapter/           the LoRA adapter
    out/merged/            the adapter folded into the base weights (base dtype), with
                           TRAINED_MARKER: the base model and the weights' sha256
    out/trainer/           TRL's epoch checkpoints while training, with RESUME_KEY (a digest of
                           the inputs); removed once the outputs are saved

Folders are written under a `.tmp` name and renamed into place, so a crash never leaves a
half-written adapter or merged model. Not handled: keeping checkpoints after a finished run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Written into every merged folder; generators.models.folder_fingerprint hashes it into the id.
TRAINED_MARKER = "selfalign-trained.json"


def save_outputs(trainer, tokenizer, model_path: str, out: Path) -> tuple[Path | None, Path]:
    """Write out/adapter and out/merged (base dtype) through temp folders renamed into place; a
    model trained without an adapter (full fine-tuning) gives out/merged only (adapter None)."""
    import torch
    from transformers import AutoConfig

    has_adapter = hasattr(trainer.model, "merge_and_unload")
    adapter, merged = out / "adapter", out / "merged"
    targets = (adapter, merged) if has_adapter else (merged,)
    for target in targets:
        shutil.rmtree(target.with_name(target.name + ".tmp"), ignore_errors=True)
    base_dtype = getattr(AutoConfig.from_pretrained(model_path), "dtype", None) or torch.float32
    model = trainer.model
    if has_adapter:
        model.save_pretrained(str(adapter) + ".tmp")
        model = model.merge_and_unload()
    model = model.to(base_dtype)
    model.save_pretrained(str(merged) + ".tmp")
    tokenizer.save_pretrained(str(merged) + ".tmp")
    write_marker(Path(str(merged) + ".tmp"), model_path)
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(str(target) + ".tmp", target)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # checkpoints are not kept
    return (adapter if has_adapter else None), merged


def write_marker(folder: Path, base: str) -> None:
    """TRAINED_MARKER: the weights' sha256, so two trained folders never share a model id."""
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")):
        with weights.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    marker = {"base": base, "sha256": digest.hexdigest()}
    (folder / TRAINED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


RESUME_KEY = "resume-key"  # in out/trainer/: the inputs its checkpoints were trained on


def resume_point(folder: Path, inputs: str, report: Callable[[str], None]) -> str | None:
    """The last checkpoint in `folder` when it was made from the same `inputs` (else the folder
    is emptied for a fresh start, and None)."""
    from transformers.trainer_utils import get_last_checkpoint

    marker = folder / RESUME_KEY
    if marker.is_file() and marker.read_text() == inputs:
        last = get_last_checkpoint(str(folder))
        if last:
            report(f"resuming from {last}")
        return last
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    marker.write_text(inputs)
    return None


def run_inputs(model_path: str, data: Path, *configs: Any) -> str:
    """A digest of what a training run depends on: base model, data bytes and configs."""
    digest = hashlib.sha256(model_path.encode())
    digest.update(Path(data).read_bytes())
    digest.update(json.dumps(configs, sort_keys=True, default=str).encode())
    return digest.hexdigest()
