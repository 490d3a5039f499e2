"""A run that exports nothing says so: exit 3, the stage and reason that dropped the most, and a
data card that says the export is empty; `--allow-empty` accepts it (exit 0). The same run drops a
near-duplicate passage at ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.export import biggest_drop, empty_export_reason

SELFALIGN = str(Path(sys.executable).with_name("selfalign"))
# Reading tasks only (no LLM involved), asking for cause tasks from passages that state no cause:
# every passage is mined and none gives a task.
RECIPE = """name: empty
seeds: seeds.jsonl
corpus: corpus.jsonl
mix: {self_instruct: 0, reading: 1}
reading: {kinds: [cause]}
runs_dir: runs
"""


def test_biggest_drop_names_the_stage_and_its_most_common_reason() -> None:
    stages = [
        {"stage": "generate", "dropped": 2, "reasons": {"no_list": 2}},
        {"stage": "grounding", "dropped": 5, "reasons": {"unsupported": 4, "empty": 1}},
    ]
    assert biggest_drop(stages) == "grounding dropped 5 records, most often unsupported (4)"
    assert biggest_drop([{"stage": "corpus", "dropped": 0, "reasons": {}}]) == ""
    near = {"near_duplicate": 1}
    stages = [{"stage": "corpus", "in": 3, "kept": 2, "dropped": 1, "reasons": near},
              {"stage": "reading", "in": 2, "kept": 0, "dropped": 0, "reasons": {}}]  # fmt: skip
    assert empty_export_reason(stages) == (
        "reading kept 0 of 2; corpus dropped 1 records, most often near_duplicate (1)"
    )


@pytest.mark.slow
def test_an_empty_export_exits_3_unless_allowed(tmp_path) -> None:
    (tmp_path / "seeds.jsonl").write_text('{"instruction": "Explain ATP.", "output": "Energy."}\n')
    from tests.flows.test_ingest import HEART, KIDNEY

    docs = [HEART, KIDNEY, HEART.replace("120 mmHg.", "125 mmHg.")]  # the third: a near copy
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([SELFALIGN, "run", "recipe.yaml", *extra], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    proc = run()
    assert proc.returncode == 3, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "0 records exported" in errors[0], proc.stderr[-3000:]
    last = errors[0]
    assert "reading kept 0 of 2; corpus dropped 1 records" in last and "--allow-empty" in last
    manifest = json.loads((tmp_path / "runs" / "empty" / "manifest.json").read_text())
    corpus = manifest["stages"][0]
    assert (corpus["stage"], corpus["kept"], corpus["reasons"]) == (
        "corpus",
        2,
        {"near_duplicate": 1},
    )
    card = (tmp_path / "runs" / "empty" / "export" / "README.md").read_text()
    assert "**The export is empty:** reading kept 0 of 2; corpus dropped 1 records" in card
    assert (tmp_path / "runs" / "empty" / "export" / "train.jsonl").read_text() == ""
    assert run("--allow-empty").returncode == 0
