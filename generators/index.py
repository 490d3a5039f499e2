"""A faiss index over passages, saved to a folder and reused while its inputs are unchanged.

The folder holds `index.faiss`, `ids.json` and `index.json`; `index.json` is written last and
carries a key (embedder id + every passage id and text), so a folder whose key matches is complete
and current, and anything else is rebuilt. IndexFlatIP on normalized vectors = exact cosine search.

Not handled yet: IVF/HNSW for corpora past ~1M passages.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from generators.embedder import Embedder
from generators.errors import SelfAlignError
from generators.io import atomic_path, write_text_atomic
from generators.records import parts_digest

log = logging.getLogger("selfalign")

INDEX_FILE, IDS_FILE, MANIFEST_FILE = "index.faiss", "ids.json", "index.json"
ADD_BATCH = 4096  # passages embedded and added per step: bounds memory on big corpora


def corpus_key(embedder_id: str, ids: Sequence[str], texts: Sequence[str]) -> str:
    """Hash of what the index depends on: ('m', ['a'], ['x']) -> 'e3b0...'."""
    pairs = (part for pair in zip(ids, texts, strict=True) for part in pair)
    return parts_digest(itertools.chain([embedder_id], pairs))


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
        import faiss

        if len(set(ids)) != len(ids):
            raise SelfAlignError("index: passage ids are not unique")
        folder = Path(folder)
        key = corpus_key(embedder.model_id, ids, texts)
        manifest = folder / MANIFEST_FILE
        if manifest.is_file() and json.loads(manifest.read_text()).get("key") == key:
            return cls.load(folder, embedder), False
        index = faiss.IndexFlatIP(embedder.dim)
        for start in range(0, len(texts), ADD_BATCH):
            index.add(embedder.encode(list(texts[start : start + ADD_BATCH])))
        folder.mkdir(parents=True, exist_ok=True)
        manifest.unlink(missing_ok=True)  # invalidate before touching the data files
        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(index, str(tmp))
        write_text_atomic(folder / IDS_FILE, json.dumps(list(ids)))
        info = {"key": key, "embedder": embedder.model_id, "count": len(ids), "dim": embedder.dim}
        write_text_atomic(manifest, json.dumps(info, indent=2))
        log.info("indexed %d passages with %s in %s", len(ids), embedder.model_id, folder)
        return cls(index, list(ids), embedder), True

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
