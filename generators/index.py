"""A faiss index over passages, saved to a folder and reused while its inputs are unchanged.

The folder holds `index.faiss`, `ids.json` and `index.json`; `index.json` is written last and
carries a key (embedder id + every passage id and text), so a folder whose key matches is complete
and current, and anything else is rebuilt. IndexFlatIP on normalized vectors = exact cosine search.

`build_streaming` builds the same folder from a stream of passages (e.g. `iter_passages`), holding
one batch of texts at a time, and also writes `passages.parquet` (id, doc_id, text) so later
stages can look texts up without the corpus in memory. Its `kind="fp16"` stores vectors as
float16: half the memory (768 MB instead of 1.5 GB at a million 384-d passages), cosines off by
~1e-3.

Not handled: approximate search (IVF/HNSW; search is a linear scan over every vector), an index
larger than RAM, appending to a built index, and `build_or_load` (what the pipeline uses) still
takes every text in memory.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from generators.corpus import Passage
from generators.embedder import Embedder
from generators.errors import SelfAlignError
from generators.io import atomic_path, write_text_atomic
from generators.records import parts_digest

log = logging.getLogger("selfalign")

INDEX_FILE, IDS_FILE, MANIFEST_FILE = "index.faiss", "ids.json", "index.json"
PASSAGES_FILE = "passages.parquet"  # build_streaming only: id, doc_id, text in index order
ADD_BATCH = 4096  # passages embedded and added per step: bounds memory on big corpora
INDEX_KINDS = ("flat", "fp16")  # exact float32 vectors; float16 vectors (half the memory)


def corpus_key(embedder_id: str, ids: Sequence[str], texts: Sequence[str]) -> str:
    """Hash of what the index depends on: ('m', ['a'], ['x']) -> 'e3b0...'."""
    return pairs_key(embedder_id, zip(ids, texts, strict=True))


def pairs_key(embedder_id: str, pairs: Iterable[tuple[str, str]]) -> str:
    """`corpus_key` over (id, text) pairs, read once as they stream."""
    parts = (part for pair in pairs for part in pair)
    return parts_digest(itertools.chain([embedder_id], parts))


def new_index(kind: str, dim: int) -> Any:
    """An empty inner-product faiss index of `kind` (one of INDEX_KINDS)."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "fp16":
        return faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    raise SelfAlignError(f"index kind must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")


def _passages_schema() -> Any:
    """The Arrow schema of passages.parquet."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("doc_id", pa.string()), ("text", pa.string())])


def _batches(items: Iterable[Passage], size: int) -> Iterator[list[Passage]]:
    """[p0, p1, p2] in size 2 -> [p0, p1], [p2]."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class PassageIndex:
    """Passage ids + a faiss index; `search` returns (passage id, cosine score) lists."""

    def __init__(self, index, ids: list[str], embedder: Embedder) -> None:
        self.index, self.ids, self.embedder = index, ids, embedder

    @classmethod
    def build_or_load(
        cls, ids: Sequence[str], texts: Sequence[str], embedder: Embedder, folder: str | Path
    ) -> tuple[PassageIndex, bool]:
        """Load the index in `folder` if it was built from exactly these passages; else build it.

        Returns (index, built_now).
        """
        if len(set(ids)) != len(ids):
            raise SelfAlignError("index: passage ids are not unique")
        folder = Path(folder)
        key = corpus_key(embedder.model_id, ids, texts)
        manifest = folder / MANIFEST_FILE
        if manifest.is_file():
            info = json.loads(manifest.read_text())
            if info.get("key") == key and info.get("kind", "flat") == "flat":
                return cls.load(folder, embedder), False
        index = new_index("flat", embedder.dim)
        for start in range(0, len(texts), ADD_BATCH):
            index.add(embedder.encode(list(texts[start : start + ADD_BATCH])))
        folder.mkdir(parents=True, exist_ok=True)
        manifest.unlink(missing_ok=True)  # invalidate before touching the data files
        built = cls(index, list(ids), embedder)
        built._save(folder, {"key": key})
        return built, True

    @classmethod
    def build_streaming(
        cls,
        passages: Iterable[Passage],
        embedder: Embedder,
        folder: str | Path,
        *,
        kind: str = "flat",
        batch: int = ADD_BATCH,
    ) -> PassageIndex:
        """Build from a stream of passages, `batch` at a time; also writes passages.parquet.

        Holds the index, the ids and one batch of texts; the key is `corpus_key`'s, so a "flat"
        folder is one `build_or_load` would have written (and reuses) for the same passages.
        """
        import pyarrow.parquet as pq

        built = cls(new_index(kind, embedder.dim), [], embedder)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST_FILE).unlink(missing_ok=True)  # invalidate before touching the data
        with (
            atomic_path(folder / PASSAGES_FILE) as tmp,
            pq.ParquetWriter(tmp, _passages_schema()) as writer,
        ):
            key = pairs_key(embedder.model_id, built._add(passages, writer, batch))
        built._save(folder, {"key": key, "kind": kind, "passages": PASSAGES_FILE})
        return built

    def _add(self, passages: Iterable[Passage], writer, batch: int) -> Iterator[tuple[str, str]]:
        """Embed, add and write `batch` passages at a time; yield (id, text) once added."""
        import pyarrow as pa

        seen: set[str] = set()
        for chunk in _batches(passages, batch):
            for p in chunk:
                if p.id in seen:
                    raise SelfAlignError(f"index: duplicate passage id {p.id!r}")
                seen.add(p.id)
            self.index.add(self.embedder.encode([p.text for p in chunk]))
            columns = {name: [getattr(p, name) for p in chunk] for name in ("id", "doc_id", "text")}
            writer.write_table(pa.table(columns, schema=writer.schema))
            self.ids.extend(p.id for p in chunk)
            yield from ((p.id, p.text) for p in chunk)

    def _save(self, folder: Path, info: dict[str, Any]) -> None:
        """Write index.faiss and ids.json, then index.json (`info` + counts) last."""
        import faiss

        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(self.index, str(tmp))
        write_text_atomic(folder / IDS_FILE, json.dumps(self.ids))
        model_id = self.embedder.model_id
        info = {**info, "embedder": model_id, "count": len(self.ids), "dim": self.embedder.dim}
        write_text_atomic(folder / MANIFEST_FILE, json.dumps(info, indent=2))
        log.info("indexed %d passages with %s in %s", len(self.ids), model_id, folder)

    @classmethod
    def load(cls, folder: str | Path, embedder: Embedder) -> PassageIndex:
        """Load a complete index folder (one whose index.json was written)."""
        import faiss

        folder = Path(folder)
        if not (folder / MANIFEST_FILE).is_file():
            raise SelfAlignError(f"index {folder}: incomplete or missing (no {MANIFEST_FILE})")
        info = json.loads((folder / MANIFEST_FILE).read_text())
        if info["embedder"] != embedder.model_id:
            raise SelfAlignError(
                f"index {folder}: built with {info['embedder']}, not {embedder.model_id}"
            )
        index = faiss.read_index(str(folder / INDEX_FILE))
        return cls(index, json.loads((folder / IDS_FILE).read_text()), embedder)

    def search(self, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Top-k (passage id, cosine) for each query, best first."""
        if not queries or not self.ids:
            return [[] for _ in queries]
        scores, idx = self.index.search(self.embedder.encode(queries), min(k, len(self.ids)))
        return [
            [(self.ids[j], float(s)) for j, s in zip(row_idx, row_scores, strict=True) if j >= 0]
            for row_idx, row_scores in zip(idx, scores, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.ids)
