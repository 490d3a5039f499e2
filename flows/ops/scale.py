"""CPU-heavy work on a Dask cluster, through Prefect's Dask task runner (prefect-dask).

The recipe's `runner:` section picks where embedding and MinHash signatures are computed:

    kind: default   in the flow process, as one call (the embedder batches internally)
    kind: dask      split into chunks, each chunk a Prefect task run on a Dask cluster: a local
                    cluster of `workers` processes (started once per flow process and reused), or
                    the running scheduler at `address` (workers need this package and the
                    embedder installed, and the same Python)

Only the map over chunks is distributed; what depends on order (the faiss index, the sequential
dedup that keeps the first of a group) stays in the flow process, so both runners give the same
records. LLM generation scales differently: point the OpenAI-compatible backend at a fleet of
inference servers (generators/backends/openai.py).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.recipe import RunnerConfig

log = logging.getLogger("selfalign")

CHUNKS_PER_WORKER = 4  # enough chunks to keep every worker busy, few enough to stay cheap
MIN_CHUNK = 64  # texts per chunk at least: smaller chunks cost more in overhead than they gain


@task(cache_policy=NO_CACHE, persist_result=False)
def embed_chunk(texts: list[str], embedder: str) -> np.ndarray:
    """Unit vectors of one chunk of texts (the worker loads the embedder once)."""
    from flows.tasks import get_embedder

    return get_embedder(embedder).encode(texts)


@task(cache_policy=NO_CACHE, persist_result=False)
def minhash_chunk(texts: list[str]) -> list[Any]:
    """MinHash signatures of one chunk of texts."""
    from filters.dedup import minhashes

    return minhashes(texts)


def chunked(items: list[str], parts: int) -> list[list[str]]:
    """`items` cut into at most `parts` runs in order, each >= MIN_CHUNK long (but the last)."""
    size = max(MIN_CHUNK, math.ceil(len(items) / max(parts, 1)))
    return [items[i : i + size] for i in range(0, len(items), size)]


_CLUSTERS: dict[tuple[int, int], Any] = {}  # (workers, threads) -> a started local cluster


def local_cluster(workers: int, threads_per_worker: int):
    """A local Dask cluster of worker processes, started once per flow process and reused."""
    key = (workers, threads_per_worker)
    if key not in _CLUSTERS:
        from distributed import LocalCluster

        log.info("starting a local Dask cluster: %d workers x %d thread(s)", *key)
        _CLUSTERS[key] = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
        )
    return _CLUSTERS[key]


def close_local_clusters() -> None:
    """Stop the local clusters this process started (tests; the process exit does it too)."""
    while _CLUSTERS:
        _CLUSTERS.popitem()[1].close()


def dask_runner(cfg: RunnerConfig):
    """Prefect's DaskTaskRunner on the configured cluster (not yet started)."""
    from prefect_dask import DaskTaskRunner

    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    return DaskTaskRunner(
        address=local_cluster(cfg.workers, cfg.threads_per_worker).scheduler_address
    )


def map_chunks(cfg: RunnerConfig, chunk_task, chunks: list[list[str]], **fixed: Any) -> list[Any]:
    """`chunk_task(texts=chunk, **fixed)` for each chunk on the Dask runner; results in order."""
    from prefect.utilities.annotations import unmapped

    if not chunks:
        return []
    with dask_runner(cfg) as runner:
        futures = runner.map(
            chunk_task, {"texts": chunks, **{k: unmapped(v) for k, v in fixed.items()}}
        )
        return [f.result() for f in futures]


def parallelism(cfg: RunnerConfig) -> int:
    return cfg.workers * cfg.threads_per_worker * CHUNKS_PER_WORKER


class ClusterEncoder:
    """Embedder-shaped: `encode` maps chunks of texts over the Dask runner.

    `model_id` and `dim` come from the local embedder, which also encodes retrieval queries.
    """

    def __init__(self, local, cfg: RunnerConfig, embedder: str) -> None:
        self.local, self.cfg, self.embedder = local, cfg, embedder
        self.model_id, self.dim = local.model_id, local.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = map_chunks(
            self.cfg,
            embed_chunk,
            chunked(list(texts), parallelism(self.cfg)),
            embedder=self.embedder,
        )
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def cluster_minhashes(cfg: RunnerConfig):
    """A `minhashes`-shaped function that computes the signatures on the Dask runner."""

    def compute(texts: list[str]) -> list[Any]:
        parts = map_chunks(cfg, minhash_chunk, chunked(list(texts), parallelism(cfg)))
        return [m for part in parts for m in part]

    return compute
