"""The embedder + faiss index on a small fixture corpus (real default embedder), built in memory
and streamed."""

import json
import os

import pyarrow.parquet as pq
import pytest

from generators.corpus import Passage
from generators.errors import SelfAlignError
from generators.retrieval.index import (
    INDEX_FILE,
    MANIFEST_FILE,
    PASSAGES_FILE,
    PassageIndex,
    corpus_key,
)

pytestmark = pytest.mark.slow

CORPUS = {
    "insulin": "Insulin is a peptide hormone made by pancreatic beta cells; it lowers blood "
    "glucose by driving glucose uptake into muscle and fat.",
    "malaria": "Malaria is caused by Plasmodium parasites transmitted through the bite of infected "
    "female Anopheles mosquitoes.",
    "nephron": "The nephron filters blood in the glomerulus and reabsorbs water and salts along "
    "the tubule to form urine.",
    "statins": "Statins inhibit HMG-CoA reductase, the rate-limiting enzyme of cholesterol "
    "synthesis in the liver, lowering LDL cholesterol.",
    "crispr": "CRISPR-Cas9 uses a guide RNA to direct the Cas9 nuclease to a matching DNA "
    "sequence, where it makes a double-strand cut.",
    "asthma": "Asthma is chronic airway inflammation with reversible bronchoconstriction; inhaled "
    "corticosteroids are the mainstay of control.",
}
PARAPHRASES = {
    "Which hormone from the pancreas brings down sugar levels in the blood?": "insulin",
    "What insect spreads the parasite behind this tropical fever?": "malaria",
    "How does the kidney's functional unit make urine?": "nephron",
    "Which drugs block the key enzyme for making cholesterol?": "statins",
    "How is a gene editing nuclease guided to its target site?": "crispr",
    "What is the main long-term treatment for inflamed, narrowed airways?": "asthma",
}


def test_paraphrased_queries_find_the_right_passage(embedder, tmp_path):
    index, built = PassageIndex.build_or_load(
        list(CORPUS), list(CORPUS.values()), embedder, tmp_path
    )
    assert built and len(index) == len(CORPUS)
    hits = index.search(list(PARAPHRASES), k=3)
    assert [h[0][0] for h in hits] == list(PARAPHRASES.values())
    for h in hits:
        assert len(h) == 3 and h[0][1] > h[1][1] and 0 < h[0][1] <= 1.0001


def test_index_is_reloaded_not_rebuilt_until_inputs_change(embedder, tmp_path):
    ids, texts = list(CORPUS), list(CORPUS.values())
    PassageIndex.build_or_load(ids, texts, embedder, tmp_path)
    stamp = os.stat(tmp_path / INDEX_FILE).st_mtime_ns
    again, built = PassageIndex.build_or_load(ids, texts, embedder, tmp_path)
    assert not built and os.stat(tmp_path / INDEX_FILE).st_mtime_ns == stamp
    assert again.search(["malaria mosquito"], k=1)[0][0][0] == "malaria"
    texts[0] = texts[0] + " It was discovered in 1921."
    _, rebuilt = PassageIndex.build_or_load(ids, texts, embedder, tmp_path)
    assert rebuilt


def test_embeddings_are_normalized(embedder):
    vecs = embedder.encode(["one sentence", "another"])
    assert vecs.shape == (2, 384) and vecs.dtype.name == "float32"
    assert abs(float((vecs**2).sum(axis=1).max()) - 1.0) < 1e-4


def streamed_passages() -> list[Passage]:
    return [Passage(pid, text, f"doc-{pid}") for pid, text in CORPUS.items()]


def assert_same_hits(got, want, tolerance):
    for got_row, want_row in zip(got, want, strict=True):
        assert [pid for pid, _ in got_row] == [pid for pid, _ in want_row]
        assert [s for _, s in got_row] == pytest.approx([s for _, s in want_row], abs=tolerance)


def test_streamed_index_is_the_one_build_or_load_makes(embedder, tmp_path):
    passages, folder = streamed_passages(), tmp_path / "streamed"
    streamed = PassageIndex.build_streaming(iter(passages), embedder, folder, batch=4)
    ids, texts = list(CORPUS), list(CORPUS.values())
    reference, _ = PassageIndex.build_or_load(ids, texts, embedder, tmp_path / "reference")
    loaded = PassageIndex.load(folder, embedder)
    assert streamed.ids == loaded.ids == reference.ids == ids
    assert_same_hits(
        loaded.search(list(PARAPHRASES), k=3), reference.search(list(PARAPHRASES), k=3), 1e-5
    )
    info = json.loads((folder / MANIFEST_FILE).read_text())
    assert info["key"] == corpus_key(embedder.model_id, ids, texts)
    assert (info["kind"], info["count"]) == ("flat", len(ids))
    assert pq.read_table(folder / PASSAGES_FILE).to_pylist() == [
        {"id": p.id, "doc_id": p.doc_id, "text": p.text} for p in passages
    ]
    _, built = PassageIndex.build_or_load(ids, texts, embedder, folder)
    assert not built  # same key: build_or_load reuses the streamed folder


def test_fp16_index_ranks_like_the_exact_one(embedder, tmp_path):
    flat = PassageIndex.build_streaming(streamed_passages(), embedder, tmp_path / "flat")
    PassageIndex.build_streaming(streamed_passages(), embedder, tmp_path / "half", kind="fp16")
    half = PassageIndex.load(tmp_path / "half", embedder)
    assert_same_hits(half.search(list(PARAPHRASES), k=3), flat.search(list(PARAPHRASES), k=3), 1e-3)
    _, built = PassageIndex.build_or_load(
        list(CORPUS), list(CORPUS.values()), embedder, tmp_path / "half"
    )
    assert built  # build_or_load keeps to exact indexes


def test_streamed_duplicate_id_leaves_no_index(embedder, tmp_path):
    passages = [Passage("a", "x", "a"), Passage("b", "y", "b"), Passage("a", "z", "a2")]
    with pytest.raises(SelfAlignError, match=r"^index: duplicate passage id 'a'$"):
        PassageIndex.build_streaming(passages, embedder, tmp_path, batch=2)
    assert list(tmp_path.iterdir()) == []
    kinds = r"index kind must be one of flat, fp16, hnsw, ivf, got 'pq'"
    with pytest.raises(SelfAlignError, match=kinds):
        PassageIndex.build_streaming(passages, embedder, tmp_path / "new", kind="pq")
    assert not (tmp_path / "new").exists()
