"""Near-dup filters: MinHash on made-up texts, embedding dedup with fixed vectors (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from filters.dedup import (
    COSINE_MAX,
    JACCARD_MIN,
    _best_match,
    embedding_dedup,
    minhash_dedup,
    minhashes,
    shingles,
    unit_rows,
)
from generators.records import Record

# 20 words, all different, so every word 3-gram is different too.
TEXT = (
    "Explain how the liver clears ammonia from blood through the urea cycle "
    "and what happens when one enzyme is missing"
)
WORDS = TEXT.split()


def rec(rid: str, instruction: str) -> Record:
    return Record(instruction=instruction, id=rid)


def with_word(i: int, word: str) -> str:
    """TEXT with word i replaced."""
    return " ".join(WORDS[:i] + [word] + WORDS[i + 1 :])


def outcome(kept: list[Record], dropped: list[Record]) -> tuple[list[str], list[tuple[str, str]]]:
    return [r.id for r in kept], [(r.id, r.meta["drop_reason"]) for r in dropped]


# --- shingles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("A b c D", 3, {"a b c", "b c d"}),
        ("Define  ATP\nbriefly now", 3, {"define atp briefly", "atp briefly now"}),
        ("a b a b a", 2, {"a b", "b a"}),
        ("Define ATP", 3, {"define atp"}),  # shorter than n: the whole text
        ("  ", 3, {""}),
        ("one two three", 3, {"one two three"}),
    ],
)
def test_shingles(text, n, expected):
    assert shingles(text, n) == expected


def test_shingles_of_a_long_text_are_its_word_trigrams():
    assert len(WORDS) == 20
    assert shingles(TEXT) == {" ".join(WORDS[i : i + 3]).lower() for i in range(18)}


# --- minhash ----------------------------------------------------------------------------------


def test_minhash_drops_exact_and_one_word_edits_naming_the_first_record():
    records = [
        rec("first", TEXT),
        rec("other", "List three symptoms of vitamin B12 deficiency in older adults."),
        rec("copy", TEXT),
        rec("shouty", "  " + TEXT.upper()),  # equal after lowercasing and splitting
        rec("last_word", with_word(19, "absent")),  # 17 of 19 shingles shared: J = 0.89
        rec("first_word", with_word(0, "Describe")),
    ]
    assert outcome(*minhash_dedup(records)) == (
        ["first", "other"],
        [
            ("copy", "near_duplicate_of_first"),
            ("shouty", "near_duplicate_of_first"),
            ("last_word", "near_duplicate_of_first"),
            ("first_word", "near_duplicate_of_first"),
        ],
    )


def test_minhash_keeps_unrelated_texts_and_distant_edits():
    records = [
        rec("a", TEXT),
        rec("b", "Summarize the mechanism of action of metformin in type 2 diabetes."),
        rec("c", "Compare innate and adaptive immunity in two short paragraphs."),
        rec("mid", with_word(10, "ornithine")),  # 3 of 18 shingles changed: J = 15/21 = 0.71
    ]
    kept, dropped = minhash_dedup(records)
    assert kept == records
    assert dropped == []


def test_minhash_keeps_the_first_occurrence():
    a, b = rec("a", TEXT), rec("b", with_word(19, "absent"))
    assert outcome(*minhash_dedup([a, b])) == (["a"], [("b", "near_duplicate_of_a")])
    assert outcome(*minhash_dedup([b, a])) == (["b"], [("a", "near_duplicate_of_b")])


def test_minhash_is_deterministic():
    records = [rec(f"r{i}", with_word(i % 20, f"w{i}")) for i in range(40)] + [rec("t", TEXT)]
    first, second = minhash_dedup(records), minhash_dedup(records)
    assert [[r.to_dict() for r in part] for part in first] == [
        [r.to_dict() for r in part] for part in second
    ]
    assert first[1], "the fixture should contain near-duplicates"


def test_minhash_meta_and_unchanged_kept_records():
    a, b = rec("a", TEXT), rec("b", TEXT.lower())
    kept, dropped = minhash_dedup([a, b], stage="dedup_1")
    assert kept[0] is a
    assert dropped[0].meta == {
        "dedup": {"method": "minhash", "jaccard_estimate": 1.0, "duplicate_of": "a"},
        "dropped_by": "dedup_1",
        "drop_reason": "near_duplicate_of_a",
    }


def test_minhash_estimate_is_rounded_and_over_the_threshold():
    _, dropped = minhash_dedup([rec("a", TEXT), rec("b", with_word(19, "absent"))])
    estimate = dropped[0].meta["dedup"]["jaccard_estimate"]
    assert JACCARD_MIN <= estimate < 1.0
    assert estimate == round(estimate, 3)


def test_minhash_key_picks_the_compared_text():
    a = Record(instruction="Define ATP.", output=TEXT, id="a")
    b = Record(instruction="Explain ATP synthase.", output=TEXT, id="b")
    assert outcome(*minhash_dedup([a, b], key=lambda r: r.output))[1] == [
        ("b", "near_duplicate_of_a")
    ]
    assert outcome(*minhash_dedup([a, b], key=lambda r: r.instruction))[1] == []


def test_minhash_empty():
    assert minhash_dedup([]) == ([], [])


def test_best_match_prefers_highest_estimate_then_earliest_and_verifies_candidates():
    far, query, copy = minhashes([with_word(10, "ornithine"), TEXT, TEXT])
    # far is an LSH-style false positive (J ~ 0.71 < 0.8): ignored.
    assert _best_match(query, [0], [far], JACCARD_MIN) is None
    assert _best_match(query, [0, 1], [far, copy], JACCARD_MIN) == (1, 1.0)
    assert _best_match(query, [2, 1], [far, copy, copy], JACCARD_MIN) == (1, 1.0)


# --- embedding --------------------------------------------------------------------------------


def unit(x: float, axis: int = 1) -> list[float]:
    """A 5-d unit vector with cosine `x` to e0."""
    v = [x, 0.0, 0.0, 0.0, 0.0]
    v[axis] = float(np.sqrt(1 - x * x))
    return v


E0 = [1.0, 0.0, 0.0, 0.0, 0.0]
COS_99 = unit(0.99)
COS_90 = unit(0.90, axis=2)  # cosine with COS_99: 0.891
# 19^2 + 6^2 + 1 + 1 + 1 = 20^2: normalizing divides by exactly 20, so the float32 cosine with E0 is
# float32(0.95) exactly.
COS_95 = [19.0, 6.0, 1.0, 1.0, 1.0]


class FakeEmbed:
    """Vectors by instruction; remembers each call's texts."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        return np.array([self.vectors[t.split("\n")[0]] for t in texts], dtype=np.float32)


def records_for(*names: str) -> list[Record]:
    return [rec(name, name) for name in names]


def test_embedding_drops_above_threshold_naming_the_kept_record():
    embed = FakeEmbed({"base": E0, "near": COS_99, "far": COS_90, "other": [0, 0, 0, 1, 0]})
    records = records_for("base", "near", "far", "other")
    assert outcome(*embedding_dedup(records, embed)) == (
        ["base", "far", "other"],
        [("near", "embedding_duplicate_of_base")],
    )
    assert embed.calls == [["base\n", "near\n", "far\n", "other\n"]]  # one batch, task text


def test_embedding_meta_and_unchanged_kept_records():
    records = records_for("base", "near")
    kept, dropped = embedding_dedup(records, FakeEmbed({"base": E0, "near": COS_99}), stage="emb")
    assert kept[0] is records[0]
    assert dropped[0].meta == {
        "dedup": {"method": "embedding", "cosine": 0.99, "duplicate_of": "base"},
        "dropped_by": "emb",
        "drop_reason": "embedding_duplicate_of_base",
    }


def test_embedding_cosine_equal_to_threshold_is_kept():
    embed = FakeEmbed({"base": E0, "edge": COS_95})
    assert float(unit_rows(np.array([COS_95]))[0, 0]) == float(np.float32(COSINE_MAX))
    kept, dropped = embedding_dedup(records_for("base", "edge"), embed)
    assert ([r.id for r in kept], dropped) == (["base", "edge"], [])
    _, dropped = embedding_dedup(records_for("base", "edge"), embed, threshold=0.949)
    assert dropped[0].meta["dedup"]["cosine"] == 0.95


def test_embedding_compares_with_the_nearest_kept_record():
    embed = FakeEmbed(
        {"a": E0, "b": unit(0.5), "c": unit(0.3, axis=3), "near_b": [0.51, 0.86, 0, 0, 0]}
    )
    _, dropped = embedding_dedup(records_for("a", "b", "c", "near_b"), embed)
    assert [r.meta["drop_reason"] for r in dropped] == ["embedding_duplicate_of_b"]


def test_embedding_keeps_the_first_occurrence():
    embed = FakeEmbed({"base": E0, "near": COS_99})
    assert outcome(*embedding_dedup(records_for("near", "base"), embed)) == (
        ["near"],
        [("base", "embedding_duplicate_of_near")],
    )


def test_embedding_normalizes_non_unit_vectors():
    embed = FakeEmbed(
        {"base": [7 * x for x in E0], "near": [0.1 * x for x in COS_99], "zero": [0] * 5}
    )
    kept, dropped = embedding_dedup(records_for("base", "near", "zero"), embed)
    assert [r.id for r in kept] == ["base", "zero"]  # a zero vector has cosine 0 with everything
    assert dropped[0].meta["dedup"]["cosine"] == 0.99


def test_unit_rows():
    out = unit_rows(np.array([[3, 4], [0, 0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0]])


def test_embedding_empty_list_does_not_call_embed():
    embed = FakeEmbed({})
    assert embedding_dedup([], embed) == ([], [])
    assert embed.calls == []


def test_embedding_rejects_a_wrong_number_of_vectors():
    with pytest.raises(ValueError, match="for 2 texts"):
        embedding_dedup(records_for("a", "b"), lambda texts: np.zeros((1, 5), dtype=np.float32))
