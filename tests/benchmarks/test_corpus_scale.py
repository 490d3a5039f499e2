"""benchmarks/corpus_scale.py at a tiny scale: synthetic corpus -> stand-in encoder -> index."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("corpus_scale")


def test_synthetic_corpus_is_seeded_short_documents_with_copies(bench, tmp_path):
    copies = bench.write_corpus(tmp_path / "a.parquet", 3000)
    assert bench.write_corpus(tmp_path / "b.parquet", 3000) == copies and 10 < copies < 60
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.equals(pq.read_table(tmp_path / "b.parquet"))
    assert table.column_names == ["id", "text"] and table.num_rows == 3000
    texts = table.column("text").to_pylist()
    assert len(set(texts)) == 3000 - copies
    assert all(bench.MIN_WORDS <= len(t.split()) <= bench.MAX_WORDS for t in texts)


def test_stand_in_vectors_are_deterministic_unit_vectors(bench):
    texts = ["insulin lowers glucose", "Insulin lowers glucose", "malaria parasites"]
    vecs = bench.StandInEncoder().encode(texts)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vecs, bench.StandInEncoder().encode(texts))
    assert vecs[0] @ vecs[1] == pytest.approx(1.0) and vecs[0] @ vecs[2] < 0.9


def test_stand_in_run_counts_and_report(bench, tmp_path, capsys):
    copies = bench.write_corpus(tmp_path / "c.parquet", 3000)
    encoder = bench.StandInEncoder()
    full = bench.measure(tmp_path / "c.parquet", tmp_path / "full", encoder, None, "fp16")
    assert (full["kept"], full["dropped"]) == (3000 - copies, copies)
    assert full["search_ok"] and full["search_score"] > 0.99
    vectors_bytes = full["kept"] * 384 * 2  # fp16: 2 bytes a dimension
    assert vectors_bytes < full["files"]["index.faiss"] < vectors_bytes + 4096
    first = bench.measure(tmp_path / "c.parquet", tmp_path / "first", encoder, 500, "flat")
    assert first["kept"] + first["dropped"] == 500
    memory = {"baseline_kib": 2**20, "peak_reset": True}
    bench.report(3000, copies, {"model": {**first, **memory}, "stand-in": {**full, **memory}})
    out = capsys.readouterr().out
    assert f"| stand-in | 3,000 | {3000 - copies:,} | {copies} | fp16 |" in out
    assert "estimated total with the real embedder at 3,000 documents" in out
