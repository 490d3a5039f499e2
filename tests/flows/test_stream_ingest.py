"""`corpus.stream`: the corpus read once into the index folder, never whole in memory; the
approximate index kinds (hnsw, ivf); texts read back by id. A hashed bag-of-words encoder stands in
for the embedder (these tests are about files, ids and faiss, not embedding quality)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from flows.recipe import load_recipe
from flows.stages.ingest import DROPPED_FILE, CorpusConfig, stream_ingest
from generators.corpus import Passage
from generators.errors import SelfAlignError
from generators.retrieval.index import INDEX_FILE, MANIFEST_FILE, PassageIndex
from generators.retrieval.passages_file import PassageTexts, sample_passages

DIM, BUCKETS = 64, 4096


class HashedWords:
    """Unit vectors of hashed word counts times a seeded projection: same text, same vector."""

    model_id, dim = "test-hashed-words", DIM

    def __init__(self) -> None:
        self.projection = np.random.default_rng(0).standard_normal((BUCKETS, DIM)).astype("f4")

    def encode(self, texts: list[str]) -> np.ndarray:
        counts = np.zeros((len(texts), BUCKETS), dtype="f4")
        for row, text in enumerate(texts):
            for word in text.lower().split():
                counts[row, zlib.crc32(word.encode()) % BUCKETS] += 1
        vecs = counts @ self.projection
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def text(i: int) -> str:
    rng = np.random.default_rng(i)
    return " ".join(f"w{n}" for n in rng.integers(0, 3000, size=40))


def write_corpus(path: Path, docs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": d, "text": t}) + "\n" for d, t in docs))
    return path


def config(path: Path, **fields) -> CorpusConfig:
    return CorpusConfig(path=str(path), near_duplicates=None, stream=True, **fields)


def test_streamed_corpus_keeps_dropped_samples_and_reads_texts_back(tmp_path):
    docs = [(f"d{i}", text(i)) for i in range(30)]
    docs += [("copy", text(4)), ("blank", "   ")]
    corpus = write_corpus(tmp_path / "c.jsonl", docs)
    folder = tmp_path / "index"
    got = stream_ingest(config(corpus, sample=7, on_bad_record="skip"), folder, HashedWords(), 1)
    assert got.count == 30 and len(got.sample) == 7
    assert sorted(reason for _, reason in got.dropped) == ["duplicate_of_d4", "empty_text"]
    assert all(got.texts[p.id] == p.text for p in got.sample)
    assert got.texts["d29"] == text(29) and len(got.texts) == 30
    with pytest.raises(KeyError):
        got.texts["copy"]
    info = json.loads((folder / MANIFEST_FILE).read_text())
    assert info["stream_key"] == got.key and info["kind"] == "flat"
    stamp = (folder / INDEX_FILE).stat().st_mtime_ns
    again = stream_ingest(config(corpus, sample=7, on_bad_record="skip"), folder, HashedWords(), 1)
    assert (folder / INDEX_FILE).stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert again.sample == got.sample and again.dropped == got.dropped
    write_corpus(corpus, docs[:-1] + [("d30", text(30))])
    changed = stream_ingest(config(corpus, sample=7), folder, HashedWords(), 1)
    assert changed.key != got.key and changed.count == 31
    assert (folder / INDEX_FILE).stat().st_mtime_ns != stamp


def test_an_interrupted_build_is_not_reused(tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", [(f"d{i}", text(i)) for i in range(5)])
    folder = tmp_path / "index"
    stream_ingest(config(corpus), folder, HashedWords(), 0)
    (folder / DROPPED_FILE).unlink()  # as if stopped after the index, before its last file
    stamp = (folder / INDEX_FILE).stat().st_mtime_ns
    stream_ingest(config(corpus), folder, HashedWords(), 0)
    assert (folder / INDEX_FILE).stat().st_mtime_ns != stamp and (folder / DROPPED_FILE).is_file()


def passages(n: int) -> list[Passage]:
    return [Passage(f"p{i}", text(i), f"doc{i}") for i in range(n)]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_a_passage_from_its_own_words(kind, tmp_path):
    encoder, corpus = HashedWords(), passages(600)
    PassageIndex.build_streaming(iter(corpus), encoder, tmp_path, kind=kind, batch=128)
    index = PassageIndex.load(tmp_path, encoder)
    queries = [" ".join(p.text.split()[:30]) for p in corpus[::10]]
    hits = index.search(queries, k=3)
    found = sum(row[0][0] == p.id for row, p in zip(hits, corpus[::10], strict=True))
    assert found >= 0.95 * len(queries)
    info = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert (info["kind"], info["count"]) == (kind, 600)
    if kind == "ivf":
        assert index.index.nlist == 600 // 39 and index.index.nprobe == 600 // 39


def test_texts_and_samples_span_row_groups(tmp_path):
    corpus = passages(50)
    PassageIndex.build_streaming(iter(corpus), HashedWords(), tmp_path, batch=8)  # 7 row groups
    texts = PassageTexts(tmp_path, [p.id for p in corpus])
    assert [texts[p.id] for p in reversed(corpus)] == [p.text for p in reversed(corpus)]
    sample = sample_passages(tmp_path, 10, seed=3)
    assert len(sample) == 10 and all(p in corpus for p in sample)
    assert sample == sorted(sample, key=corpus.index)  # file order
    assert sample == sample_passages(tmp_path, 10, seed=3)
    assert sample_passages(tmp_path, 500, seed=3) == corpus


@pytest.mark.parametrize(
    ("corpus", "message"),
    [
        (
            {"path": "c.jsonl", "stream": True},
            "'corpus': near_duplicates: near-duplicate removal holds every passage's MinHash",
        ),
        (
            {"path": "c.jsonl", "index": "hnsw"},
            "'corpus': index: 'hnsw' is built by the streamed ingest; set stream: true",
        ),
    ],
)
def test_stream_settings_that_cannot_work_are_recipe_errors(corpus, message, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"name": "x", "seeds": "s.jsonl", "corpus": corpus}))
    with pytest.raises(SelfAlignError, match="^" + str(recipe).replace(".", r"\.") + r":\d+:\d+: "):
        load_recipe(recipe)
    with pytest.raises(SelfAlignError) as err:
        load_recipe(recipe)
    assert message in str(err.value)
