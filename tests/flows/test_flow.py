"""The Self-Specialization flow on the real default model: end to end, rerun, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.rundir import read_records
from flows.tasks import LLM_CALLS

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[2] / "data" / "biomed"
CORPUS_DOCS = 40  # of the demo's 330: indexing a fresh run folder takes seconds, not a minute
STAGES = ["corpus", "generate", "heuristics", "novelty", "classify", "instances", "respond",
          "grounding"]  # fmt: skip


def small_corpus(folder: Path, docs: int = CORPUS_DOCS) -> Path:
    """The demo corpus's first `docs` documents, written once into `folder`."""
    path = folder / f"corpus-{docs}.jsonl"
    if not path.is_file():
        lines = (DATA / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[:docs]) + "\n", encoding="utf-8")
    return path


def tiny_recipe(tmp_path: Path, name: str = "tiny", batch_prompts: int = 2) -> dict:
    """The smallest run that still passes every stage: 4 prompts asking 3 tasks each, short
    answers, 40 passages (the suite runs it about ten times on 2 CPU cores)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return {
        "name": name,
        "seed": 3,
        "seeds": str(DATA / "seeds.jsonl"),
        "corpus": {"path": str(small_corpus(tmp_path))},
        "model": {"backend": "vllm"},
        "generate": {
            "prompts": 4,
            "batch_prompts": batch_prompts,
            "new_per_prompt": 3,
            "max_tokens": 120,
        },
        "instances": {"max_tokens": 64},
        "respond": {"max_tokens": 64},
        "batch_records": 8,
        "runs_dir": str(tmp_path / "runs"),
    }


def test_flow_end_to_end_then_rerun_makes_no_llm_calls(vllm_llm, tiny_run, tmp_path):
    from flows.pipeline import self_specialize

    run_dir, first_calls = tiny_run.dir, tiny_run.calls  # the session's run of tiny_recipe
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert first_calls > 0 and manifest["llm_calls_this_process"]["conversations"] >= first_calls
    assert [s["stage"] for s in manifest["stages"]] == STAGES
    engine = manifest["engine"]  # this process's engine time (shared by the tests before)
    assert engine["output_tokens"] > 0 and 0 < engine["busy_seconds"]
    assert 0 < engine["busy_fraction"] <= 1
    for number, stage in enumerate(manifest["stages"]):
        folder = run_dir / "stages" / f"{number:02d}-{stage['stage']}"
        kept, dropped = (
            read_records(folder / "kept.parquet"),
            read_records(folder / "rejected.parquet"),
        )
        assert (len(kept), len(dropped)) == (stage["kept"], stage["dropped"])
        assert all(
            r.meta["dropped_by"] == stage["stage"] and r.meta["drop_reason"] for r in dropped
        )
        if stage["stage"] not in ("generate", "corpus"):
            assert stage["in"] == stage["kept"] + stage["dropped"], stage

    export = run_dir / "export"
    rows = [json.loads(line) for line in (export / "train.jsonl").read_text().splitlines()]
    assert len(rows) == manifest["records"] >= 1
    for row in rows:
        assert row["messages"][0]["role"] == "user" and row["messages"][1]["content"].strip()
        assert row["meta"]["model_id"] == vllm_llm.model_id and row["meta"]["instruction_id"]
        assert len(row["passages"]) == 2 and len(row["meta"]["demo_seed_ids"]) == 6
    assert len({r["id"] for r in rows}) == len(rows)
    assert (export / "train.parquet").is_file() and (export / "hf").is_dir()
    assert "## Funnel" in (export / "README.md").read_text()

    from tests.flows.test_cli import run_cli

    proc = run_cli("export", str(run_dir), "--format", "alpaca", "--out", str(tmp_path / "a.json"))
    assert proc.returncode == 0 and proc.stdout.strip() == str(tmp_path / "a.json")
    alpaca = json.loads((tmp_path / "a.json").read_text())
    assert [a["output"] for a in alpaca] == [r["output"] for r in rows]

    jsonl = (export / "train.jsonl").read_bytes()
    calls = LLM_CALLS["conversations"]
    self_specialize(recipe=tiny_recipe(tiny_run.tmp))
    assert LLM_CALLS["conversations"] == calls  # every LLM batch came from the cache
    assert (export / "train.jsonl").read_bytes() == jsonl


def _write_recipe(tmp_path: Path, name: str) -> Path:
    import yaml

    path = tmp_path / f"{name}.yaml"
    recipe = tiny_recipe(tmp_path, name, batch_prompts=1)
    recipe["generate"]["prompts"] = 3  # three generation batches: killed after the first
    path.write_text(yaml.safe_dump(recipe))
    return path


def _start(recipe: Path, env: dict) -> subprocess.Popen:
    selfalign = str(Path(sys.executable).with_name("selfalign"))
    return subprocess.Popen(
        [selfalign, "run", str(recipe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def _export_ids(run_dir: Path) -> list[str]:
    lines = (run_dir / "export" / "train.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines]


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": ""}
    reference = _start(_write_recipe(tmp_path, "whole"), env)
    out, _ = reference.communicate(timeout=900)
    assert reference.returncode == 0, out[-3000:]

    recipe = _write_recipe(tmp_path, "killed")
    victim, seen = _start(recipe, env), []
    deadline = time.time() + 600
    for line in victim.stdout:  # kill once the first generation batch is done
        seen.append(line)
        if "generate batch 1/3" in line or time.time() > deadline:
            break
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert any("generate batch 1/3" in line for line in seen), "".join(seen)[-3000:]
    assert not (tmp_path / "runs" / "killed" / "export").exists()

    resumed = _start(recipe, env)
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out[-3000:]
    assert (
        "generate-0' - Finished in state Cached" in out  # done before the kill
        and "generate-1' - Finished in state Completed" in out  # cut by it: generated again
    )
    ids = _export_ids(tmp_path / "runs" / "killed")
    assert ids == _export_ids(tmp_path / "runs" / "whole") and len(ids) == len(set(ids)) >= 1


def test_changed_corpus_is_retrieved_afresh(monkeypatch, tmp_path):
    """Retrieval batches are keyed by the indexed corpus content, not by the index folder."""
    from flows import run as run_module
    from flows.recipe import Recipe
    from generators.corpus import Passage

    seen = []
    monkeypatch.setattr(run_module, "build_index", _Recorder(seen))
    monkeypatch.setattr(run_module, "retrieve_batch", _Recorder(seen))
    run = run_module.Run.start(Recipe.model_validate(tiny_recipe(tmp_path)))
    keys = []
    for text in ("Insulin lowers glucose.", "Statins lower LDL."):
        run.index([Passage("p1", text, "p1")])
        run.retrieve(0, ["what lowers glucose?"])
        keys.append(seen[-1]["key"])
    assert keys[0] != keys[1]


class _Recorder:
    """Stands in for a Prefect task: records the call's parameters."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def with_options(self, **_options):
        return self

    def __call__(self, **params):
        self.seen.append(params)
        return [[]]
