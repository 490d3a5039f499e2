"""The Dask task runner (prefect-dask) for embedding and dedup: same numbers, same records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.ops.scale import MIN_CHUNK, chunked
from flows.recipe import RunnerConfig
from flows.tasks import LLM_CALLS

from .test_flow import tiny_recipe


def test_chunks_keep_order_and_a_minimum_size():
    items = [str(i) for i in range(300)]
    parts = chunked(items, 16)
    assert [x for part in parts for x in part] == items
    assert all(len(part) >= MIN_CHUNK for part in parts[:-1])
    assert len(chunked(items, 2)) == 2 and chunked([], 4) == []


@pytest.fixture(scope="module")
def dask_cluster():
    from flows.ops.scale import close_local_clusters

    yield RunnerConfig(kind="dask", workers=2)
    close_local_clusters()


@pytest.mark.slow
def test_dask_embeddings_and_minhashes_equal_the_local_ones(prefect_harness, dask_cluster):
    from prefect import flow

    from filters.dedup import minhashes
    from flows.ops.scale import ClusterEncoder, cluster_minhashes
    from flows.tasks import get_embedder

    texts = [f"passage {i}: enzyme {i % 7} binds substrate {i % 11}" for i in range(300)]

    @flow
    def on_the_cluster():
        local = get_embedder("default")
        return (
            ClusterEncoder(local, dask_cluster, "default").encode(texts),
            cluster_minhashes(dask_cluster)(texts),
        )

    vectors, hashes = on_the_cluster()
    assert vectors.shape == (300, 384)
    np.testing.assert_allclose(vectors, get_embedder("default").encode(texts), atol=1e-6)
    assert [h.hashvalues.tolist() for h in hashes] == [
        h.hashvalues.tolist() for h in minhashes(texts)
    ]


def _same_index(a: Path, b: Path, queries: list[str]) -> None:
    """Both indexes hold the same vectors (to float noise: the cluster embeds in other batches)
    and rank the same passages for `queries`."""
    from flows.tasks import get_embedder
    from generators.retrieval.index import PassageIndex

    first, second = (PassageIndex.load(f, get_embedder("default")) for f in (a, b))
    assert first.ids == second.ids
    n = first.index.ntotal
    np.testing.assert_allclose(
        first.index.reconstruct_n(0, n), second.index.reconstruct_n(0, n), atol=1e-5
    )
    ranked = [[pid for pid, _ in hits] for hits in first.search(queries, 2)]
    assert ranked == [[pid for pid, _ in hits] for hits in second.search(queries, 2)]


def _export(run_dir: Path) -> list[dict]:
    lines = (run_dir / "export" / "train.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_flow_on_a_local_two_worker_cluster_gives_the_default_runners_records(
    vllm_llm, prefect_harness, dask_cluster, tiny_run, tmp_path
):
    from flows.ops.scale import _CLUSTERS
    from flows.pipeline import self_specialize

    dedup = {"minhash": True, "embedding": True, "cosine": 0.9}
    default = {**tiny_recipe(tmp_path, "threads"), "dedup": dedup}
    on_dask = {
        **tiny_recipe(tmp_path, "dask"),
        "dedup": dedup,
        "runner": dask_cluster.model_dump(),
    }
    # Both runs get the session's cached LLM replies for the tiny recipe (same keys), so the
    # engine's own run-to-run noise (its prefix cache) cannot differ; each builds its index,
    # embeds and dedups afresh, the dask run on the cluster.
    tiny_run.reuse_replies(tmp_path / "runs" / "threads")
    a = Path(self_specialize(recipe=default))
    shutil.copytree(a / "cache", tmp_path / "runs" / "dask" / "cache")
    calls = LLM_CALLS["conversations"]
    b = Path(self_specialize(recipe=on_dask))
    assert LLM_CALLS["conversations"] == calls
    assert (2, 1) in _CLUSTERS  # the dask run did start (and use) the local cluster
    _same_index(a / "index", b / "index", [r["instruction"] for r in _export(a)])
    records_a, records_b = _export(a), _export(b)
    assert records_a, "the tiny run exported nothing: nothing to compare"
    assert [(r["id"], r["output"]) for r in records_a] == [
        (r["id"], r["output"]) for r in records_b
    ]
    stages_a = json.loads((a / "manifest.json").read_text())["stages"]
    stages_b = json.loads((b / "manifest.json").read_text())["stages"]
    counts = [(s["stage"], s["in"], s["kept"], s["dropped"], s["reasons"]) for s in stages_a]
    assert counts == [
        (s["stage"], s["in"], s["kept"], s["dropped"], s["reasons"]) for s in stages_b
    ]
    assert {"minhash_dedup", "embedding_dedup"} <= {s["stage"] for s in stages_b}
