"""Utility-diversity selection with hand-made 2-d vectors (no embedder, no model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from filters.selection import (
    IFD_MAX,
    OVER_BUDGET,
    ifd_utilities,
    rating_utilities,
    select_diverse,
)
from generators.records import Record

# Unit vectors with easy cosines: cos(D, C) = 0.6, cos(C, A) = 0.96, cos(C, B) = 0.8, cos(D, B) = 0.
A, B, C, D = [4.0, 3.0], [0.0, 1.0], [3.0, 4.0], [1.0, 0.0]


def recs(*ids: str) -> list[Record]:
    return [Record(instruction=f"Task {i}?", id=i, meta={"round": 0}) for i in ids]


def outcome(kept: list[Record], dropped: list[Record]) -> tuple[list[str], list[tuple[str, str]]]:
    return [r.id for r in kept], [(r.id, r.meta["drop_reason"]) for r in dropped]


def four(budget: int = 10, tau: float = 0.7) -> tuple[list[Record], list[Record]]:
    """a, b, c, d with utilities 2, 1, 3, 4: visited d, c, a, b."""
    return select_diverse(
        recs("a", "b", "c", "d"), [2, 1, 3, 4], np.array([A, B, C, D]), budget, tau
    )


def test_greedy_keeps_high_utility_records_unlike_the_selected_ones():
    kept, dropped = four()
    # d first; c (cos 0.6 to d) fits; a (0.96 to c) and b (0.8 to c) are too close; input order
    assert outcome(kept, dropped) == (
        ["c", "d"],
        [("a", "selection_cos_0.96_vs_c"), ("b", "selection_cos_0.80_vs_c")],
    )
    assert all(r.meta["dropped_by"] == "select" for r in dropped)


def test_every_record_gets_its_selection_meta():
    kept, dropped = four()
    meta = {r.id: r.meta["selection"] for r in kept + dropped}
    assert meta == {
        "d": {"utility": 4.0, "rank": 0, "max_cosine": None, "nearest": None},
        "c": {"utility": 3.0, "rank": 1, "max_cosine": 0.6, "nearest": "d"},
        "a": {"utility": 2.0, "rank": 2, "max_cosine": 0.96, "nearest": "c"},
        "b": {"utility": 1.0, "rank": 3, "max_cosine": 0.8, "nearest": "c"},
    }
    assert all(r.meta["round"] == 0 for r in kept + dropped)  # earlier lineage is kept
    assert "dropped_by" not in kept[0].meta


def test_budget_full_drops_the_rest_without_comparing_them():
    kept, dropped = four(budget=1)
    assert outcome(kept, dropped) == (
        ["d"],
        [("a", OVER_BUDGET), ("b", OVER_BUDGET), ("c", OVER_BUDGET)],
    )
    assert dropped[0].meta["selection"] == {
        "utility": 2.0,
        "rank": 2,
        "max_cosine": None,
        "nearest": None,
    }


def test_budget_counts_only_selected_records():
    # a and b are too close to c, so they do not use up a budget of 3
    kept, dropped = four(budget=3)
    assert [r.id for r in kept] == ["c", "d"]
    assert [r.meta["drop_reason"] for r in dropped] == [
        "selection_cos_0.96_vs_c",
        "selection_cos_0.80_vs_c",
    ]
    # with a budget of 2 it is full once c is in: the rest is over budget, not compared
    _, dropped = four(budget=2)
    assert [r.meta["drop_reason"] for r in dropped] == [OVER_BUDGET, OVER_BUDGET]


@pytest.mark.parametrize(
    ("tau", "kept_ids", "reasons"),
    [
        (0.6, ["x", "y"], []),  # cos == tau is kept
        (0.59, ["x"], [("y", "selection_cos_0.60_vs_x")]),
        (1.0, ["x", "y"], []),
    ],
)
def test_tau_edge(tau, kept_ids, reasons):
    kept, dropped = select_diverse(recs("x", "y"), [1.0, 0.5], np.array([D, C]), 5, tau)
    assert outcome(kept, dropped) == (kept_ids, reasons)


def test_tau_one_keeps_exact_duplicates():
    kept, _ = select_diverse(recs("x", "y"), [1.0, 1.0], np.array([C, C]), 5, 1.0)
    assert [r.id for r in kept] == ["x", "y"]
    assert kept[1].meta["selection"]["max_cosine"] == 1.0


def test_ties_go_by_input_order():
    kept, dropped = select_diverse(
        recs("p", "q", "r"), [1.0, 1.0, 1.0], np.array([C, C, D]), 5, 0.9
    )
    assert outcome(kept, dropped) == (["p", "r"], [("q", "selection_cos_1.00_vs_p")])
    assert [r.meta["selection"]["rank"] for r in kept + dropped] == [0, 2, 1]


def test_vectors_are_normalized_inside():
    scaled = np.array([[10.0, 0.0], [30.0, 40.0]])  # cos 0.6 whatever the lengths
    kept, dropped = select_diverse(recs("x", "y"), [2.0, 1.0], scaled, 5, 0.5)
    assert outcome(kept, dropped) == (["x"], [("y", "selection_cos_0.60_vs_x")])


def test_zero_vector_is_similar_to_nothing_and_custom_stage_name():
    kept, dropped = select_diverse(recs("x", "y"), [2.0, 1.0], np.array([D, [0, 0]]), 1, 0.5, "s")
    assert outcome(kept, dropped) == (["x"], [("y", OVER_BUDGET)])
    assert dropped[0].meta["dropped_by"] == "s"


def test_no_records():
    assert select_diverse([], [], np.zeros((0, 3)), 5, 0.9) == ([], [])


@pytest.mark.parametrize(
    ("n_utilities", "vectors", "budget", "tau", "message"),
    [
        (2, [D, C], 0, 0.9, "budget must be >= 1"),
        (2, [D, C], 1, 0.0, "tau must be in"),
        (2, [D, C], 1, 1.01, "tau must be in"),
        (1, [D, C], 1, 0.9, "1 utilities for 2 records"),
        (2, [D], 1, 0.9, "vectors of shape (1, 2) for 2 records"),
        (2, [1.0, 0.0], 1, 0.9, "vectors of shape (2,)"),
    ],
)
def test_bad_arguments_raise(n_utilities, vectors, budget, tau, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_diverse(recs("x", "y"), [1.0] * n_utilities, np.array(vectors), budget, tau)


def test_non_finite_utility_raises():
    with pytest.raises(ValueError, match="finite"):
        select_diverse(recs("x", "y"), [1.0, math.nan], np.array([D, C]), 1, 0.9)


@pytest.mark.parametrize(
    ("meta", "utility"),
    [
        ({"rating": {"score": 4, "rationale": "ok"}}, 4.0),
        ({"rating": {"score": 1}}, 1.0),
        ({"rating": {"error": "judge_unparseable", "reply": "?"}}, 0.0),
        ({"rating": {"skipped": "uncalibrated"}}, 0.0),
        ({"rating": {"score": "4"}}, 0.0),  # only parsed (numeric) scores count
        ({"rating": {"score": True}}, 0.0),
        ({"rating": "4"}, 0.0),
        ({}, 0.0),
    ],
)
def test_rating_utilities(meta, utility):
    assert rating_utilities([Record(instruction="t", meta=meta)]) == [utility]


@pytest.mark.parametrize(
    ("meta", "utility"),
    [
        ({"ifd": 0.83}, 0.83),
        ({"ifd": IFD_MAX}, 1.0),
        ({"ifd": 1.4}, 0.0),  # the instruction does not help: ranked last
        ({"ifd": math.nan}, 0.0),
        ({"ifd": math.inf}, 0.0),
        ({"ifd": None}, 0.0),
        ({}, 0.0),
    ],
)
def test_ifd_utilities(meta, utility):
    assert ifd_utilities([Record(instruction="t", meta=meta)]) == [utility]
