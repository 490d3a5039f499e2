"""Multiple-choice accuracy by log-likelihood ranking, scored by lm-evaluation-harness (0.4.x).

    task files  <name>.jsonl (one item per line: id, question, choices, gold index, ...) and
                <name>.yaml, an lm-eval `multiple_choice` task over it; any model reruns it with
                `lm_eval --model hf --model_args pretrained=DIR --include_path FOLDER --tasks NAME`
    request     per choice, the summed log-likelihood of " " + choice after
                "Question: ...\\nAnswer:" (lm-eval's default target_delimiter), zero-shot, no chat
                template
    acc         1 when the choice with the largest log-likelihood is the gold one
    acc_norm    the same over log-likelihood / len(choice) in characters (the delimiter is not
                counted); ties go to the first choice (numpy argmax), in both

`score_tasks` runs lm-eval in-process, then recomputes both metrics with `mc_scores` from the
per-choice log-likelihoods lm-eval logged, and raises if they disagree.

Not handled: chat templates and few-shot prompts (lm_eval's own flags add them to a CLI run),
acc_bytes / acc_mutual_info, several GPUs, stderr and bootstrap intervals (not computed), task
folders moved after writing (the YAML holds the JSONL's absolute path), models on the hub.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from trainers.evaluate import release_memory

# The prompt each choice continues; lm-eval puts its target_delimiter " " before the choice.
DOC_TO_TEXT = "Question: {{question}}\nAnswer:"
METRICS = ("acc", "acc_norm")
# lm-eval's logger tree (lm_eval.evaluator, lm_eval.api.task, ...): INFO lines per task and batch.
LM_EVAL_LOGGER = "lm_eval"
OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def _argmax(values: list[float]) -> int:
    """Index of the first largest value, as numpy.argmax: [1.0, 3.0, 3.0] -> 1."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def mc_scores(
    logliks: list[list[float]], choices: list[list[str]], gold: list[int]
) -> dict[str, list[int]]:
    """Per question 0/1 for acc (argmax of summed log-likelihood) and acc_norm (argmax of
    log-likelihood per character of the choice): [[-6, -5]], [["abcdef", "a"]], [0] ->
    {"acc": [0], "acc_norm": [1]}."""
    if not len(logliks) == len(choices) == len(gold):
        raise ValueError(
            f"mc_scores: {len(logliks)} loglikelihood rows, {len(choices)} choice rows, "
            f"{len(gold)} gold indices"
        )
    out: dict[str, list[int]] = {metric: [] for metric in METRICS}
    for lls, texts, target in zip(logliks, choices, gold, strict=True):
        if len(lls) != len(texts) or not texts or not 0 <= target < len(texts):
            raise ValueError(f"mc_scores: {len(lls)} loglikelihoods, {texts!r}, gold {target}")
        if not all(texts):
            raise ValueError(f"mc_scores: empty choice in {texts!r}")
        per_char = [ll / len(text) for ll, text in zip(lls, texts, strict=True)]
        out["acc"].append(int(_argmax(lls) == target))
        out["acc_norm"].append(int(_argmax(per_char) == target))
    return out


def write_task(items: list[dict], folder: Path, name: str) -> Path:
    """folder/<name>.jsonl (the items, in order) and folder/<name>.yaml, the lm-eval task over
    it; returns the YAML's path. Items need "question", "choices" and "gold" (an index)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": DOC_TO_TEXT,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "gold",
        "metric_list": [
            {"metric": metric, "aggregation": "mean", "higher_is_better": True}
            for metric in METRICS
        ],
        "metadata": {"version": 1.0},
    }
    lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    _write_atomic(data, lines)
    return _write_atomic(folder / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False))


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _per_question(name: str, samples: list[dict], ids: list[str]) -> dict[str, Any]:
    """Per-question lists from lm-eval's logged samples, checked against `mc_scores`."""
    samples = sorted(samples, key=lambda s: s["doc_id"])
    got = [str(s["doc"]["id"]) for s in samples]
    if got != ids:
        raise RuntimeError(
            f"mc: {name}: lm-eval scored ids {got[:3]}..., the file has {ids[:3]}..."
        )
    logliks = [[float(resp[0]) for resp in s["filtered_resps"]] for s in samples]
    ours = mc_scores(
        logliks, [s["doc"]["choices"] for s in samples], [s["doc"]["gold"] for s in samples]
    )
    out: dict[str, Any] = {}
    for metric in METRICS:
        theirs = [int(s[metric]) for s in samples]
        if theirs != ours[metric]:
            bad = [qid for qid, a, b in zip(ids, theirs, ours[metric], strict=True) if a != b]
            raise RuntimeError(f"mc: {name}: lm-eval's {metric} differs from mc_scores at {bad}")
        out[f"{metric}_per_q"] = theirs
    return out


def score_tasks(
    model_path: str, folder: Path, names: list[str], batch_size: int = 8
) -> dict[str, dict]:
    """Score tasks written by `write_task` on a local HF model folder with lm-eval's "hf" model:
    {name: {"n", "acc", "acc_norm", "ids", "acc_per_q", "acc_norm_per_q"}}, lists in file order.

    Loads the model once (fp32 on CPU, bf16 on CUDA) and frees it afterwards.
    """
    for key in OFFLINE:  # effective only where huggingface_hub / datasets are not yet imported
        os.environ.setdefault(key, "1")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    folder = Path(folder).resolve()
    file_ids = {name: _file_ids(folder / f"{name}.jsonl") for name in names}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "bfloat16" if device == "cuda" else "float32"
    # Only this folder's tasks: indexing lm-eval's ~10k built-in YAML files takes 15-45 s here.
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    lm = None
    try:
        with _quiet():
            lm = HFLM(pretrained=model_path, dtype=dtype, device=device, batch_size=batch_size)
            results = simple_evaluate(
                model=lm,
                tasks=list(names),
                task_manager=manager,
                log_samples=True,
                use_cache=None,  # no sqlite response cache
                cache_requests=False,
                bootstrap_iters=0,  # no stderr: the per-question lists let a caller bootstrap
            )
    finally:
        del lm  # the only reference: the weights can go before a trainer loads its own
        release_memory()
    out = {}
    for name in names:
        ids = file_ids[name]
        per_q = _per_question(name, results["samples"][name], ids)
        scores: dict[str, Any] = {"n": len(ids)}
        for metric in METRICS:
            aggregate = float(results["results"][name][f"{metric},none"])
            mean = sum(per_q[f"{metric}_per_q"]) / len(ids)
            if abs(aggregate - mean) > 1e-9:
                raise RuntimeError(f"mc: {name}: {metric} {aggregate} != per-question mean {mean}")
            scores[metric] = aggregate
        out[name] = {**scores, "ids": ids, **per_q}
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval logs warnings only; datasets' and transformers' progress bars off; all restored."""
    import datasets
    from transformers.utils import logging as hf_logging

    logger = logging.getLogger(LM_EVAL_LOGGER)
    level = logger.level
    ds_bars, hf_bars = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    logger.setLevel(logging.WARNING)
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.setLevel(level)
        if ds_bars:
            datasets.enable_progress_bars()
        if hf_bars:
            hf_logging.enable_progress_bar()


def _file_ids(path: Path) -> list[str]:
    """Item ids of a task's JSONL, in file order."""
    if not path.is_file():
        raise FileNotFoundError(f"mc: {path}: no such task file (write it with write_task)")
    with path.open(encoding="utf-8") as f:
        return [str(json.loads(line)["id"]) for line in f if line.strip()]
