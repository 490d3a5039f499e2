"""The fine-tune flow and the closed loop on the real default model (tiny budgets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.rundir import read_records
from tests.flows.test_flow import tiny_recipe

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY_EVAL = {
    "domain": str(ROOT / "data" / "biomed" / "heldout_qa.jsonl"),
    "general": str(ROOT / "data" / "general" / "user_oriented_instructions.jsonl"),
    "domain_size": 6,
    "general_size": 6,
    "generate_size": 2,
    "max_new_tokens": 16,
}
TINY_TRAIN = {
    "enabled": True,
    "lora": {"r": 4},
    "sft": {"max_steps": 2, "logging_steps": 1, "max_length": 128},
    "eval": TINY_EVAL,
}


QA = [("What do mitochondria make?", "ATP."), ("What is DNA?", "A polymer.")] * 3


def exported_run(tmp_path: Path, pairs=QA, train: dict = TINY_TRAIN) -> Path:
    """A run folder with only what the trainers read: recipe.yaml and export/train.jsonl."""
    import yaml

    run = tmp_path / "runs" / "tiny"
    (run / "export").mkdir(parents=True)
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in pairs
    ]
    (run / "export" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {**tiny_recipe(tmp_path), "train": train}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return run


def test_fine_tune_writes_metrics_then_reruns_from_cache(prefect_harness, tmp_path):
    from flows.train import fine_tune

    run = exported_run(tmp_path)
    metrics = fine_tune(str(run))
    saved = json.loads((run / "train" / "1" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert metrics["sft"]["steps"] == 2 and metrics["sft"]["examples"] == 6
    assert metrics["before"]["domain_n"] == 6 and metrics["before"]["general_n"] == 6
    assert metrics["after"]["model"] == metrics["trained_model"]["path"]
    assert metrics["trained_model"]["path"] == str(run / "train" / "1" / "merged")
    before, after, decision = metrics["before"], metrics["after"], metrics["decision"]
    assert f"dev domain loss {before['domain_loss']:.3f} -> {after['domain_loss']:.3f}" in decision
    assert decision.endswith(": promoted") == metrics["promoted"]
    expected_next = metrics["trained_model"]["path"] if metrics["promoted"] else "default"
    assert metrics["next_model"] == expected_next

    weights = run / "train" / "1" / "merged" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert fine_tune(str(run)) == metrics  # every step came from the cache
    assert weights.stat().st_mtime_ns == stamp

    shutil.rmtree(run / "train" / "1" / "merged")  # a cached result whose folder is gone
    again = fine_tune(str(run))
    assert weights.is_file() and again["sft"]["steps"] == 2


def test_the_general_loss_guard_refuses_a_model_that_forgot(prefect_harness, tmp_path):
    """Four steps at a high learning rate on one nonsense answer: the general answer loss rises
    far past the default 2% allowed, and the flow's decision says so with the numbers."""
    from flows.train import fine_tune

    sft = {**TINY_TRAIN["sft"], "max_steps": 4, "learning_rate": 5e-3}
    nonsense = [(q, "zq " * 40) for q, _ in QA]
    run = exported_run(tmp_path, nonsense, {**TINY_TRAIN, "sft": sft})
    metrics = fine_tune(str(run))
    before, after = metrics["before"]["general_loss"], metrics["after"]["general_loss"]
    rise = (after - before) / before
    assert rise > 0.02, (before, after)
    assert not metrics["promoted"] and metrics["next_model"] == "default"
    assert f"general loss rose {rise:.1%} > 2.0%" in metrics["decision"]


def test_two_rounds_the_second_generates_with_the_first_rounds_model(
    prefect_harness, tiny_run, tmp_path
):
    from flows.pipeline import self_specialize
    from generators.models import resolve_model

    # the loop is under test, not the promote rule: a round-1 model is promoted unless its
    # domain loss did not fall
    promote = {"max_general_increase": 10.0}
    train = {**TINY_TRAIN, "uds": {"enabled": True, "k": 2}, "promote": promote}
    recipe = {**tiny_recipe(tmp_path, "loop"), "rounds": 2, "train": train}
    tiny_run.reuse_replies(tmp_path / "runs" / "loop")  # round 1 is the tiny recipe's run
    root = Path(self_specialize(recipe=recipe))
    rounds = json.loads((root / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2]
    first = json.loads((root / "train" / "1" / "metrics.json").read_text())
    uds = first["sft"]["uds"]
    assert uds["steps"] == 2 and 0 < uds["selected"] <= 2 * uds["steps"] <= uds["candidates"]

    second_run = root / "rounds" / "round-2"
    second_model = resolve_model(first["next_model"]).model_id
    second = json.loads((second_run / "manifest.json").read_text())
    assert second["round"] == 2 and second["model_id"] == second_model
    assert rounds[1]["model"] == second_model
    for run_dir, round_ in ((root, 1), (second_run, 2)):
        records = read_records(sorted((run_dir / "stages").glob("*-respond"))[0] / "kept.parquet")
        assert records and all(r.meta["round"] == round_ for r in records)
    assert all(r.meta["model_id"] == second_model for r in records)
    assert (root / "train" / "2" / "metrics.json").is_file()
