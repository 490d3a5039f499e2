"""Corpus ingest for a run: read and chunk (generators/corpus.py), then drop near-duplicate
passages (MinHash over word 5-grams, filters/dedup.py) so the same text is not indexed, retrieved
and generated from twice. Each dropped passage keeps a reason naming the passage kept in its
place (near_duplicate_of_<id>); the corpus stage's funnel counts them.

`stream_ingest` (recipe `corpus.stream: true`) reads the corpus once, straight into the index
folder (`PassageIndex.build_streaming`: index, ids.json, passages.parquet), so no copy of the
corpus is ever in memory: what stays is the index, the ids, a 16-byte digest per passage for exact
duplicates, the dropped passages and a seeded sample for generation; passage texts are read back
from passages.parquet as retrieval asks for them. The folder is reused while the corpus files,
chunking, index kind and embedder are unchanged (index.json's `stream_key`). Near-duplicate
removal is not offered there: it would hold every passage's MinHash (~1 KB each).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from filters.dedup import near_duplicate_texts
from flows.stages.base import Strict
from generators.corpus import (
    CHUNK_OVERLAP,
    CHUNK_WORDS,
    Corpus,
    Passage,
    iter_passages,
    load_corpus,
    source_digest,
)
from generators.errors import SelfAlignError
from generators.io import write_text_atomic
from generators.records import parts_digest
from generators.retrieval.index import IDS_FILE, MANIFEST_FILE, PassageIndex
from generators.retrieval.passages_file import PassageTexts, sample_passages


def corpus_section(value: Any) -> Any:
    """`corpus: PATH` is short for `corpus: {path: PATH}`; anything else is left as it is."""
    return {"path": value} if isinstance(value, str) else value


class CorpusConfig(Strict):
    path: str = Field(
        description="JSONL (id, text), Parquet, a folder of .txt, or a save_to_disk folder"
    )
    chunk_words: int = Field(CHUNK_WORDS, ge=16, description="passage length in words")
    overlap_words: int = Field(
        CHUNK_OVERLAP, ge=0, description="words shared by consecutive chunks"
    )
    near_duplicates: float | None = Field(
        0.7,
        gt=0,
        le=1,
        description="drop a passage whose word 5-gram Jaccard (MinHash estimate) with an earlier "
        "kept one is >= this, reason near_duplicate_of_<id>; null keeps them",
    )
    on_bad_record: Literal["error", "skip"] = Field(
        "error",
        description="a document with no text: stop with its file:line (error), or drop it with "
        "reason empty_text in the corpus stage's rejected records (skip)",
    )
    stream: bool = Field(
        False,
        description="read the corpus once, straight into the index (index/passages.parquet), "
        "never whole in memory: for corpora of millions of passages. Generation draws from a "
        "seeded sample of `sample` passages; retrieval searches them all. Needs "
        "near_duplicates: null (exact duplicates are still dropped)",
    )
    sample: int = Field(
        20_000, ge=1, description="stream: passages held in memory for generation to draw from"
    )
    index: Literal["flat", "fp16", "hnsw", "ivf"] = Field(
        "flat",
        description="faiss index: flat (exact), fp16 (exact search, half the memory), hnsw or "
        "ivf (approximate, for corpora past ~1M passages); anything but flat needs stream: true",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> CorpusConfig:
        if self.overlap_words >= self.chunk_words:
            raise ValueError("overlap_words must be smaller than chunk_words")
        if self.stream and self.near_duplicates is not None:
            raise ValueError(
                "near_duplicates: near-duplicate removal holds every passage's MinHash in "
                "memory; with stream: true set near_duplicates: null (exact duplicates are still "
                "dropped)"
            )
        if self.index != "flat" and not self.stream:
            raise ValueError(f"index: {self.index!r} is built by the streamed ingest; set "
                             "stream: true (or index: flat)")  # fmt: skip
        return self


log = logging.getLogger("selfalign")
DROPPED_FILE = "dropped.jsonl"  # streamed ingest: passages not indexed, with their reasons
PROGRESS_EVERY = 100_000  # passages between progress lines while streaming

NEAR_DUP_WORDS = 5  # shingle size for passages (Lee et al. 2022 use word 5-grams for documents)


def without_near_duplicates(corpus: Corpus, threshold: float) -> Corpus:
    """The corpus with each passage whose Jaccard estimate with an earlier kept passage is
    >= threshold moved to `dropped`, reason near_duplicate_of_<kept id>."""
    matches = near_duplicate_texts([p.text for p in corpus.passages], threshold, NEAR_DUP_WORDS)
    kept, dropped = [], list(corpus.dropped)
    for passage, match in zip(corpus.passages, matches, strict=True):
        if match is None:
            kept.append(passage)
        else:
            dropped.append((passage, f"near_duplicate_of_{corpus.passages[match[0]].id}"))
    return Corpus(passages=kept, dropped=dropped, source=corpus.source)


def ingest(cfg: CorpusConfig) -> Corpus:
    """The recipe's corpus as passages, exact and (when set) near duplicates dropped."""
    corpus = load_corpus(cfg.path, cfg.chunk_words, cfg.overlap_words, cfg.on_bad_record)
    if cfg.near_duplicates is None:
        return corpus
    return without_near_duplicates(corpus, cfg.near_duplicates)


@dataclass
class StreamedCorpus:
    """What a streamed ingest leaves in memory: counts, the dropped passages, the sample
    generation draws from, and texts by id read from the index folder."""

    key: str  # what the index was built from (corpus bytes, chunking, kind, embedder)
    count: int  # passages in the index
    dropped: list[tuple[Passage, str]]
    sample: list[Passage]
    texts: PassageTexts


def stream_key(cfg: CorpusConfig, embedder_id: str) -> str:
    """The reuse key of a streamed index folder: '3f1c...'."""
    settings = (cfg.chunk_words, cfg.overlap_words, cfg.on_bad_record, cfg.index)
    return parts_digest([embedder_id, source_digest(cfg.path), *map(str, settings)])


def _current(folder: Path, key: str) -> bool:
    manifest = folder / MANIFEST_FILE
    if not (manifest.is_file() and (folder / DROPPED_FILE).is_file()):
        return False
    return json.loads(manifest.read_text()).get("stream_key") == key


def _build(cfg: CorpusConfig, folder: Path, encoder: Any, key: str) -> None:
    """Stream the corpus into `folder`; the dropped passages go to dropped.jsonl, written last."""
    dropped: list[tuple[Passage, str]] = []

    def kept() -> Iterator[Passage]:
        seen = 0
        stream = iter_passages(cfg.path, cfg.chunk_words, cfg.overlap_words, cfg.on_bad_record)
        for passage, reason in stream:
            seen += 1
            if seen % PROGRESS_EVERY == 0:
                log.info("corpus: %d passages read, %d dropped", seen, len(dropped))
            if reason is None:
                yield passage
            else:
                dropped.append((passage, reason))

    (folder / DROPPED_FILE).unlink(missing_ok=True)
    index = PassageIndex.build_streaming(
        kept(), encoder, folder, kind=cfg.index, info={"stream_key": key}
    )
    if not index.ids:
        shutil.rmtree(folder)
        raise SelfAlignError(f"{cfg.path}: empty corpus: no document has any text")
    lines = (
        json.dumps({"id": p.id, "doc_id": p.doc_id, "text": p.text, "reason": reason})
        for p, reason in dropped
    )
    write_text_atomic(folder / DROPPED_FILE, "".join(line + "\n" for line in lines))


def stream_ingest(cfg: CorpusConfig, folder: Path, encoder: Any, seed: int) -> StreamedCorpus:
    """The recipe's corpus indexed in `folder` without holding it (reused while current)."""
    key = stream_key(cfg, encoder.model_id)
    if _current(folder, key):
        log.info("corpus: reusing the streamed index in %s", folder)
    else:
        _build(cfg, folder, encoder, key)
    ids = json.loads((folder / IDS_FILE).read_text())
    dropped = [
        (Passage(row["id"], row["text"], row["doc_id"]), row["reason"])
        for row in map(json.loads, (folder / DROPPED_FILE).read_text().splitlines())
    ]
    sample = sample_passages(folder, cfg.sample, seed)
    texts = PassageTexts(folder, ids)
    texts.preload(sample)
    return StreamedCorpus(key, len(ids), dropped, sample, texts)
