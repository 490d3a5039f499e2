"""trainers.mc on the real default model: a task from 8 held-out QAs scored by lm-eval (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.calibration import load_qa, mc_items
from trainers.mc import score_tasks, write_task

HELDOUT = Path(__file__).parents[2] / "data" / "biomed" / "heldout_qa.jsonl"


@pytest.mark.slow
def test_score_8_heldout_questions(default_model, tmp_path):
    items = mc_items(load_qa(HELDOUT))[:8]
    folder = tmp_path / "mc"
    yaml_path = write_task(items, folder, "biomed_mc8")
    # ~40 s on 2 idle cores (imports ~15 s, model ~2 s, 32 choice sequences ~15 s); not asserted:
    # the machine is shared, and timings belong in benchmarks/
    scores = score_tasks(default_model.path, folder, ["biomed_mc8"])

    assert yaml_path.is_file() and (folder / "biomed_mc8.jsonl").is_file()
    lines = (folder / "biomed_mc8.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == items
    got = scores["biomed_mc8"]
    assert got["n"] == 8
    assert got["ids"] == [item["id"] for item in items]
    for metric in ("acc", "acc_norm"):
        per_q = got[f"{metric}_per_q"]
        assert len(per_q) == 8 and set(per_q) <= {0, 1}
        assert 0 <= got[metric] <= 1
        assert got[metric] == pytest.approx(sum(per_q) / 8)
