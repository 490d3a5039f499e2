"""`selfalign train` stops on SIGTERM within seconds with one line saying how to resume, leaves no
model folder behind, and the same command resumes from the last epoch checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SELFALIGN = str(Path(sys.executable).with_name("selfalign"))


def tiny_run(tmp_path: Path) -> Path:
    """8 rows, batch 4, 3 epochs: 6 steps, a checkpoint after steps 2, 4 and 6."""
    run = tmp_path / "runs" / "stop"
    (run / "export").mkdir(parents=True)
    rows = [
        {"messages": [{"role": "user", "content": f"What does enzyme E{i} make?"},
                      {"role": "assistant", "content": f"Enzyme E{i} makes product P{i}."}]}
        for i in range(8)
    ]  # fmt: skip
    (run / "export" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = ROOT / "data" / "biomed"
    recipe = {
        "name": "stop",
        "seeds": str(data / "seeds.jsonl"),
        "corpus": str(data / "corpus.jsonl"),
        "runs_dir": str(tmp_path / "runs"),
        "train": {
            "lora": {"r": 4},
            "sft": {"num_train_epochs": 3, "max_length": 64, "logging_steps": 1},
            "eval": {"domain": str(data / "heldout_qa.jsonl"), "domain_size": 2,
                     "generate_size": 0},
        },
    }  # fmt: skip
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return run


def test_sigterm_stops_training_then_the_same_command_resumes(default_model, tmp_path) -> None:
    run = tiny_run(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    command = [SELFALIGN, "train", str(run)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    seen = []
    for line in proc.stdout:  # the first epoch's checkpoint is written after step 2
        seen.append(line)
        if "step 3/6" in line:
            break
    assert any("step 3/6" in line for line in seen), "".join(seen)[-3000:]
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    rest = proc.communicate(timeout=60)[0]
    assert time.monotonic() - start < 10, "took more than 10 s to stop"
    assert proc.returncode == 128 + signal.SIGTERM, rest[-3000:]
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: stopped by SIGTERM; run the same command again to resume: finished steps are "
        "cached and training resumes from its last epoch checkpoint"
    ], rest[-3000:]
    out = run / "train" / "1"
    assert not (out / "merged").exists() and not (out / "metrics.json").exists()
    assert (out / "trainer" / "checkpoint-2").is_dir()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    log = again.stdout + again.stderr  # Prefect's run logger writes to either
    assert "resuming from" in log and "checkpoint-2" in log, log[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft"]["steps"] == 6 and (out / "merged" / "config.json").is_file()
    assert len(metrics["sft"]["losses"]) == 4  # steps 3-6: the first two were not trained again
    assert not (out / "trainer").exists()
