"""The fine-tune flow: evaluate -> LoRA SFT (optionally UDS) -> DPO -> evaluate -> promote.

    selfalign train RUN_DIR [--recipe R] [--round N]   (or the `fine-tune` flow as a deployment)

reads only the run's export (train.jsonl, dpo.jsonl) and writes

    <out>/adapter/, <out>/merged/      the LoRA adapter and the model with it merged in
    <out>/dpo/adapter/, dpo/merged/    the same after DPO, when the recipe asks for it
    <out>/metrics.json                 before/after metrics, losses, promote decision

with <out> = RUN_DIR/train/<round>. Each step is a cached Prefect task keyed by its inputs' content
(dataset bytes, model id, configs, trainer code), so a rerun or a resume after a crash retrains
nothing that finished. Any vLLM engine of the process is shut down first (GPU hand-over).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows.ops.artifacts import publish_training
from flows.recipe import Recipe, TrainConfig, load_recipe
from flows.tasks import code_version, content_key, get_llm, given_key
from flows.train_rows import order_fields, training_rows
from generators.errors import SelfAlignError
from generators.io import write_text_atomic
from generators.models import cache_dir, resolve_model

TRAIN_CODE = (
    "trainers.sft",
    "trainers.precision",
    "trainers.outputs",
    "trainers.uds",
    "trainers.uds_trainer",
    "trainers.data",
)
EVAL_CODE = ("trainers.evaluate", "trainers.data", "trainers.heldout")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


@task(cache_key_fn=given_key, persist_result=True)
def evaluate_model(key: str, model_path: str, eval_cfg: dict[str, Any]) -> dict[str, Any]:
    """Held-out domain (and general) answer loss and generation score of one model."""
    from trainers.data import load_qa
    from trainers.evaluate import evaluate

    dev, test = domain_split(eval_cfg)
    general = None
    if eval_cfg["general"]:
        general = load_qa(eval_cfg["general"], eval_cfg["general_size"])
    get_run_logger().info(
        "evaluating %s on %d dev + %d test domain QAs", model_path, len(dev), len(test)
    )
    return evaluate(
        model_path,
        dev,
        general,
        generate=eval_cfg["generate_size"],
        max_new_tokens=eval_cfg["max_new_tokens"],
        test=test,
    )


def domain_split(eval_cfg: dict[str, Any]) -> tuple[list, list]:
    """(dev, test) of the recipe's held-out domain QA: dev is tuned on, test only reported."""
    from trainers.heldout import load_split

    return load_split(
        eval_cfg["domain"], eval_cfg["split_seed"], eval_cfg["test_fraction"],
        eval_cfg["domain_size"],
    )  # fmt: skip


def split_record(report: dict[str, Any], eval_cfg: dict[str, Any]) -> dict[str, Any]:
    """The split an evaluation scored, as metrics.json and ablation.json record it."""
    from trainers.heldout import split_summary

    per_q = report["per_question"]
    return split_summary(
        per_q["dev"]["ids"], per_q["test"]["ids"], eval_cfg["split_seed"], eval_cfg["test_fraction"]
    )


@task(cache_key_fn=given_key, persist_result=True)
def sft_task(key: str, model_path: str, data: str, out: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """LoRA SFT (UDS when switched on) on the exported messages."""
    from trainers.sft import train_sft

    uds = cfg["uds"]
    uds = {k: uds[k] for k in ("alpha", "k", "buffer", "sketch_dim")} if uds["enabled"] else None
    log = get_run_logger()
    return train_sft(
        model_path, data, out, cfg["lora"], cfg["sft"], uds, report=log.info,
        method=cfg["method"], precision=cfg["precision"], cache=cache_dir(),
    ).to_dict()  # fmt: skip


@task(cache_key_fn=given_key, persist_result=True)
def dpo_task(key: str, model_path: str, data: str, out: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """LoRA DPO on the exported preference pairs, starting from the SFT model."""
    from trainers.sft import train_dpo

    log = get_run_logger()
    return train_dpo(model_path, data, out, cfg["lora"], cfg["dpo"], report=log.info).to_dict()


def cached(task_fn, cache: Path, folder: Path | None, **params: Any) -> dict[str, Any]:
    """Run a keyed task; a cached result whose output `folder` is gone is recomputed."""
    missing = folder is not None and not (folder / "merged" / "config.json").is_file()
    options = task_fn.with_options(result_storage=cache, refresh_cache=missing or None)
    return options(**params)


def release_inference() -> None:
    """Shut down this process's vLLM engines so training gets the GPU (and the memory)."""
    import sys

    get_llm.cache_clear()
    if "generators.backends.vllm" in sys.modules:
        sys.modules["generators.backends.vllm"].release_engines()


def promote_line(before: dict, after: dict, cfg) -> tuple[bool, str]:
    from trainers.promote import promote

    return promote(before, after, cfg.min_domain_gain, cfg.max_general_increase)


def dpo_rows(run_dir: Path) -> Path | None:
    path = run_dir / "export" / "dpo.jsonl"
    return path if path.is_file() and path.read_text(encoding="utf-8").strip() else None


def extra_rows(run: Path, name: str) -> list[str]:
    """The JSONL lines of export/<name>.jsonl (self_feedback, critique_sft) for train.extra_sft;
    a missing or empty file is an error naming it and the stage that writes it."""
    path = run / "export" / f"{name}.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    lines = [line for line in lines if line.strip()]
    if not lines:
        stage = "self_refine" if name == "self_feedback" else "multicritique"
        raise SelfAlignError(
            f"{path}: no rows for train.extra_sft '{name}' (the run needs {stage}.enabled)"
        )
    return lines


def sft_data(run: Path, out: Path, cfg: TrainConfig, seed: int) -> Path:
    """export/train.jsonl, or (<out>/sft_data.jsonl) a copy of it followed by train.extra_sft's
    rows, with each facts row `exposures` times and the general replay rows
    (flows/train_rows.py)."""
    data = run / "export" / "train.jsonl"
    reshaped = cfg.exposures > 1 or cfg.replay or cfg.order != "shuffled"
    if not cfg.extra_sft and not reshaped:
        return data
    lines = data.read_text(encoding="utf-8").splitlines()
    for name in cfg.extra_sft:
        lines += extra_rows(run, name)
    lines = [line for line in lines if line.strip()]
    if reshaped:
        rows = [json.loads(line) for line in lines]
        rows = training_rows(rows, cfg.exposures, cfg.replay, cfg.replay_set, seed, cfg.order)
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    path = out / "sft_data.jsonl"
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return path


def train_steps(r: Recipe, run: Path, base, out: Path) -> tuple[Any, dict, dict | None]:
    """SFT on the export, then DPO on its preference pairs if asked; (trained ref, sft, dpo)."""
    cfg, cache = r.train, run / "cache"
    data = sft_data(run, out, cfg, r.seed)
    train_cfg, code = cfg.model_dump(), code_version(TRAIN_CODE)
    train_cfg["sft"] = {**order_fields(cfg.order), **train_cfg["sft"]}
    key = content_key("sft", base.model_id, file_digest(data), train_cfg, code)
    sft = cached(
        sft_task, cache, out, key=key, model_path=base.path, data=str(data), out=str(out),
        cfg=train_cfg,
    )  # fmt: skip
    trained, dpo, pairs = resolve_model(sft["merged"]), None, dpo_rows(run)
    if cfg.dpo is not None and pairs:
        key = content_key("dpo", trained.model_id, file_digest(pairs), train_cfg, code)
        dpo = cached(
            dpo_task, cache, out / "dpo", key=key, model_path=trained.path, data=str(pairs),
            out=str(out / "dpo"), cfg=train_cfg,
        )  # fmt: skip
        trained = resolve_model(dpo["merged"])
    elif cfg.dpo is not None:
        get_run_logger().warning("train.dpo is set but %s has no dpo.jsonl rows: no DPO", run)
    return trained, sft, dpo


def measure(r: Recipe, run: Path, ref) -> dict[str, Any]:
    """The (cached) evaluation of one model on the recipe's held-out sets."""
    eval_cfg = r.train.eval.model_dump()
    sets = [file_digest(Path(p)) for p in (r.train.eval.domain, r.train.eval.general) if p]
    key = content_key("evaluate", ref.model_id, eval_cfg, sets, code_version(EVAL_CODE))
    return cached(evaluate_model, run / "cache", None, key=key, model_path=ref.path,
                  eval_cfg=eval_cfg)  # fmt: skip


@flow(name="fine-tune")
def fine_tune(
    run_dir: str, recipe: dict[str, Any] | None = None, round: int = 1, out_dir: str | None = None
) -> dict[str, Any]:
    """Train on a finished run's export; returns the metrics (also written to metrics.json)."""
    log, run = get_run_logger(), Path(run_dir).resolve()
    r = Recipe.model_validate(recipe) if recipe else load_recipe(run / "recipe.yaml")
    if not (run / "export" / "train.jsonl").is_file():
        raise SelfAlignError(f"{run}: no export/train.jsonl (run `selfalign run` first)")
    if not r.train.eval.domain:
        raise SelfAlignError(f"{run}: train.eval.domain is not set (the promote rule needs it)")
    out = Path(out_dir) if out_dir else run / "train" / str(round)
    release_inference()
    start = r.train.model or r.model.name
    base = resolve_model(start)
    before = measure(r, run, base)
    log.info(
        "before: dev domain loss %.4f, general %s", before["domain_loss"], before["general_loss"]
    )
    trained, sft, dpo = train_steps(r, run, base, out)
    after = measure(r, run, trained)
    promoted, reason = promote_line(before, after, r.train.promote)
    log.info("round %d: %s", round, reason)
    metrics = {
        "round": round,
        "run": str(run),
        "base_model": {"path": base.path, "model_id": base.model_id},
        "trained_model": {"path": trained.path, "model_id": trained.model_id},
        "before": before,
        "after": after,
        "sft": sft,
        "dpo": dpo,
        "split": split_record(before, r.train.eval.model_dump()),
        "promoted": promoted,
        "decision": reason,
        "next_model": trained.path if promoted else start,
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))
    publish_training(r.name, metrics)
    return metrics


def write_rounds(root: Path) -> Path:
    """root/rounds.json: each round's model, data size, before/after losses and decision."""
    rows = []
    for path in sorted((root / "train").glob("*/metrics.json"), key=lambda p: int(p.parent.name)):
        m = json.loads(path.read_text(encoding="utf-8"))
        rows.append(
            {
                "round": m["round"],
                "run": m["run"],
                "model": m["base_model"]["model_id"],
                "examples": m["sft"]["examples"],
                "domain_loss": [m["before"]["domain_loss"], m["after"]["domain_loss"]],
                "test_loss": [m["before"].get("test_loss"), m["after"].get("test_loss")],
                "general_loss": [m["before"]["general_loss"], m["after"]["general_loss"]],
                "domain_token_f1": [m["before"]["domain_token_f1"], m["after"]["domain_token_f1"]],
                "promoted": m["promoted"],
                "decision": m["decision"],
                "next_model": m["next_model"],
            }
        )
    target = root / "rounds.json"
    write_text_atomic(target, json.dumps(rows, indent=2, ensure_ascii=False))
    return target
