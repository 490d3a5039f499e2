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
    "promote": {"max_general_increase": 10.0},
}


def exported_run(tmp_path: Path) -> Path:
    """A run folder with only what the trainers read: recipe.yaml and export/train.jsonl."""
    import yaml

    run = tmp_path / "runs" / "tiny"
    (run / "export").mkdir(parents=True)
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in [("What do mitochondria make?", "ATP."), ("What is DNA?", "A polymer.")] * 3
    ]
    (run / "export" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {**tiny_recipe(tmp_path), "train": TINY_TRAIN}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return run


def test_fine_tune_writes_metrics_then_reruns_from_cache(prefect_harness, tmp_path):
    from flows.train import fine_tune
    from trainers.evaluate import promote

    run = exported_run(tmp_path)
    metrics = fine_tune(str(run))
    saved = json.loads((run / "train" / "1" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert metrics["sft"]["steps"] == 2 and metrics["sft"]["examples"] == 6
    assert metrics["before"]["domain_n"] == 6 and metrics["before"]["general_n"] == 6
    assert metrics["after"]["model"] == metrics["trained_model"]["path"]
    assert metrics["trained_model"]["path"] == str(run / "train" / "1" / "merged")
    promoted, reason = promote(metrics["before"], metrics["after"], 0.0, 10.0)
    assert (metrics["promoted"], metrics["decision"]) == (promoted, reason)
    expected_next = metrics["trained_model"]["path"] if promoted else "default"
    assert metrics["next_model"] == expected_next

    weights = run / "train" / "1" / "merged" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert fine_tune(str(run)) == metrics  # every step came from the cache
    assert weights.stat().st_mtime_ns == stamp

    shutil.rmtree(run / "train" / "1" / "merged")  # a cached result whose folder is gone
    again = fine_tune(str(run))
    assert weights.is_file() and again["sft"]["steps"] == 2


def test_two_rounds_the_second_generates_with_the_first_rounds_model(
    prefect_harness, tiny_run, tmp_path
):
    from flows.pipeline import self_specialize
    from generators.models import resolve_model

    train = {**TINY_TRAIN, "uds": {"enabled": True, "k": 2}}
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
