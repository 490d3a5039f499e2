"""benchmarks/generation.py's workload and the engine-time figures a run's manifest carries."""

from pathlib import Path

import pytest

from flows import counts
from flows.stages.origins import self_instruct_steps as stages
from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("generation")


def test_workload_is_the_demo_recipes_first_generation_batch(bench):
    work = bench.workload(5, 48)
    assert len(work["conversations"]) == 5 and work["max_tokens"] == 48
    assert (work["temperature"], work["top_p"]) == (0.9, 0.95)
    assert work["seed"] == stages.derive_seed(0, "generate", 0)
    assert "generate.batch_prompts=5" in work["sets"]  # ours asks them as one batch too
    first = work["conversations"][0]
    assert first[-1]["role"] == "user" and "passage" in first[-1]["content"].lower()
    assert len({c[-1]["content"] for c in work["conversations"]}) == 5
    assert Path(work["model"]).is_dir()
    # 6 seed demos and a passage per prompt, counted once for every side's (prompt + output) tok/s
    assert 5 * 200 < work["prompt_tokens"] < 5 * 2048


def test_engine_time_is_busy_seconds_over_seconds_since_ready(monkeypatch):
    # the counters are this process's: earlier tests of the session may have run LLM batches
    for name in ("ready_at", "busy_seconds", "output_tokens"):
        monkeypatch.setitem(counts.ENGINE, name, 0)
    assert counts.engine_time() == {
        "ready_at": 0.0,
        "seconds_since_ready": 0.0,
        "busy_seconds": 0.0,
        "busy_fraction": 0.0,
        "output_tokens": 0,
    }
    monkeypatch.setitem(counts.ENGINE, "ready_at", 1000.0)
    monkeypatch.setitem(counts.ENGINE, "busy_seconds", 93.0)
    monkeypatch.setitem(counts.ENGINE, "output_tokens", 4000)
    got = counts.engine_time(now=1100.0)
    assert got["busy_fraction"] == 0.93 and got["seconds_since_ready"] == 100.0
    assert got["output_tokens"] == 4000
