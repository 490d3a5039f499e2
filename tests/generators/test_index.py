"""The embedder + faiss index on a small fixture corpus (real default embedder)."""

import os

import pytest

from generators.index import INDEX_FILE, PassageIndex

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
