"""The demo job on the real model, reusing the session's vLLM engine."""

import json

import pytest

from flows.smoke import run_smoke

pytestmark = pytest.mark.slow


def test_demo_writes_grounded_records(vllm_llm, tmp_path):
    result = run_smoke(tmp_path / "run", backend="vllm", limit=6)
    rows = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert result.count == len(rows) == 6
    for row in rows:
        assert row["output"].strip() and len(row["passages"]) == 2
        assert all(p.startswith("bio-") for p in row["passages"])
        assert row["meta"]["model_id"] == vllm_llm.model_id and row["meta"]["seed_id"].startswith(
            "bio_seed_"
        )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["records"] == 6 and manifest["output_tokens"] > 0
    assert (tmp_path / "run" / "index" / "index.faiss").is_file()
