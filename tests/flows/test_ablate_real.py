"""`selfalign ablate` on the real default model: two trained variants, a few steps, a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flows.test_train import exported_run

pytestmark = pytest.mark.slow

TINY_ABLATE = {"variants": ["corpus-only", "recipe"], "token_budget": 600}
TINY_EVAL = {"domain_size": 4, "general_size": 4, "generate_size": 0}


def tiny_knowledge_set(tmp_path) -> Path:
    """20 covered and 20 uncovered items of the demo's knowledge set."""
    shipped = Path(__file__).resolve().parents[2] / "data" / "biomed" / "knowledge_mc.jsonl"
    items = [json.loads(line) for line in shipped.read_text().splitlines()]
    covered = [it for it in items if it["passage_id"]][:20]
    uncovered = [it for it in items if not it["passage_id"]][:20]
    path = tmp_path / "knowledge.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in covered + uncovered))
    return path


def test_ablate_writes_every_output_then_reruns_from_cache(prefect_harness, tmp_path):
    import yaml

    from flows.ablation.ablate import ablate

    run = exported_run(tmp_path)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["train"]["eval"].update(TINY_EVAL, knowledge=str(tiny_knowledge_set(tmp_path)))
    recipe["ablate"] = TINY_ABLATE
    result = ablate(recipe=recipe, run_dir=str(run))

    out = run / "ablation"
    saved = json.loads((out / "ablation.json").read_text())
    assert set(saved["variants"]) == {"base", "corpus-only", "recipe"}
    assert saved["token_budget"] == 600 and saved["split"]["dev_n"] == 4
    assert set(saved["split"]["dev_ids"]).isdisjoint(saved["split"]["test_ids"])
    for name in ("corpus-only", "recipe"):
        v = saved["variants"][name]
        assert v["tokens"] >= 600 and v["steps"] >= 1 and v["rows"] >= 1
        assert (out / name / "train.jsonl").is_file()
        assert (out / name / "model" / "merged" / "config.json").is_file()
        for metric in ("test_loss", "dev_loss", "general_loss", "test_acc", "test_acc_norm",
                       "dev_acc", "dev_acc_norm"):  # fmt: skip
            cell = v["metrics"][metric]
            assert cell["lo"] <= cell["value"] <= cell["hi"], (name, metric)
            change = cell["change"]
            assert change["lo"] <= change["value"] <= change["hi"], (name, metric)
    for name in ("corpus-only", "recipe"):  # knowledge: covered, uncovered and their gap
        metrics = saved["variants"][name]["metrics"]
        for metric in ("covered_test_acc_norm", "uncovered_test_acc_norm", "covered_dev_acc"):
            change = metrics[metric]["change"]
            assert change["lo"] <= change["value"] <= change["hi"], (name, metric)
        gap = metrics["knowledge_test_acc_norm"]["change"]
        covered = metrics["covered_test_acc_norm"]["change"]["value"]
        uncovered = metrics["uncovered_test_acc_norm"]["change"]["value"]
        assert gap["value"] == pytest.approx(covered - uncovered)
    assert sum(saved["knowledge_n"].values()) == 40
    assert "test covered − uncovered" in (out / "ablation.md").read_text()
    assert saved["variants"]["base"]["metrics"]["test_loss"]["change"] is None
    assert saved["per_question"]["base"]["mc"]["test"]["n"] == 4
    for split in ("dev", "test"):
        task = yaml.safe_load(open(saved["mc_tasks"][split]))
        assert task["output_type"] == "multiple_choice"
    table = (out / "ablation.md").read_text()
    assert "| corpus-only |" in table and "| recipe |" in table
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "## Ablation" in (run / "export" / "README.md").read_text()
        if (run / "export" / "README.md").is_file()
        else True
    )

    weights = out / "recipe" / "model" / "merged" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = ablate(recipe=recipe, run_dir=str(run))
    assert weights.stat().st_mtime_ns == stamp  # nothing was trained again
    assert again["variants"] == result["variants"]
