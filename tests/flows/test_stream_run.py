"""`corpus.stream` on the real engine and embedder: a streamed run with an HNSW index gives the
records of the in-memory run (the tiny corpus is smaller than the sample, so generation sees the
same passages; HNSW over 40 vectors searches them all)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.tasks import LLM_CALLS

from .test_flow import tiny_recipe


def _export(run_dir: Path) -> list[dict]:
    lines = (run_dir / "export" / "train.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_streamed_run_with_an_hnsw_index_exports_the_in_memory_runs_records(
    vllm_llm, tiny_run, tmp_path
):
    from flows.pipeline import self_specialize

    recipe = tiny_recipe(tmp_path, "streamed")
    recipe["corpus"] = {
        **recipe["corpus"],
        "stream": True,
        "near_duplicates": None,
        "index": "hnsw",
    }
    tiny_run.reuse_replies(tmp_path / "runs" / "streamed")
    calls = LLM_CALLS["conversations"]
    run_dir = Path(self_specialize(recipe=recipe))
    assert LLM_CALLS["conversations"] == calls  # every prompt was the in-memory run's
    records = _export(run_dir)
    assert records and [(r["id"], r["output"]) for r in records] == [
        (r["id"], r["output"]) for r in _export(tiny_run.dir)
    ]
    streamed = json.loads((run_dir / "manifest.json").read_text())["stages"]
    in_memory = json.loads((tiny_run.dir / "manifest.json").read_text())["stages"]
    counts = [(s["stage"], s["in"], s["kept"], s["dropped"]) for s in in_memory]
    assert [(s["stage"], s["in"], s["kept"], s["dropped"]) for s in streamed] == counts
    info = json.loads((run_dir / "index" / "index.json").read_text())
    assert info["kind"] == "hnsw" and info["count"] == streamed[0]["kept"] > 0
    assert pq.read_metadata(run_dir / "index" / "passages.parquet").num_rows == info["count"]
