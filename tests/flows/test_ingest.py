"""Corpus ingest: near-duplicate passages are dropped naming the passage kept."""

from __future__ import annotations

import json

from flows.stages.ingest import CorpusConfig, ingest, without_near_duplicates
from generators.corpus import Corpus, Passage

HEART = (
    "The human heart has four chambers: two atria receive blood and two ventricles pump it out. "
    "The right ventricle sends blood to the lungs and the left ventricle sends it to the body "
    "through the aorta, the largest artery, at a pressure near 120 mmHg."
)
KIDNEY = (
    "Each kidney holds about a million nephrons that filter the blood, reclaim water and salts, "
    "and leave urea and other wastes in the urine that flows to the bladder through the ureter."
)


def test_a_near_copy_is_dropped_naming_the_passage_kept() -> None:
    near = HEART.replace("120 mmHg.", "125 mmHg.")  # one word of 45 changed
    corpus = Corpus(
        passages=[Passage("a", HEART, "a"), Passage("b", KIDNEY, "b"), Passage("c", near, "c")],
        dropped=[(Passage("z", "", "z"), "empty_text")],
        source="x",
    )
    out = without_near_duplicates(corpus, 0.7)
    assert [p.id for p in out.passages] == ["a", "b"]
    assert [(p.id, reason) for p, reason in out.dropped] == [
        ("z", "empty_text"),
        ("c", "near_duplicate_of_a"),
    ]
    assert [p.id for p in without_near_duplicates(corpus, 0.99).passages] == ["a", "b", "c"]


def test_ingest_applies_the_recipe_threshold(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    texts = [HEART, KIDNEY, HEART.replace("mmHg.", "mm Hg.")]
    path.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    assert [p.id for p in ingest(CorpusConfig(path=str(path))).passages] == ["d0", "d1"]
    off = CorpusConfig(path=str(path), near_duplicates=None)
    assert [p.id for p in ingest(off).passages] == ["d0", "d1", "d2"]
