"""The dev/test split and the bootstrap intervals (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.data import QA, load_qa
from trainers.heldout import (
    difference_ci,
    is_test,
    load_split,
    mean_ci,
    relative_change_ci,
    split,
    split_summary,
)

DOMAIN_QA = Path(__file__).parents[2] / "data" / "biomed" / "heldout_qa.jsonl"


def _qas(n: int) -> list[QA]:
    return [QA(f"qa-{i:03d}", f"q{i}", f"a{i}") for i in range(n)]


def test_split_is_deterministic_disjoint_and_complete() -> None:
    qas = _qas(200)
    dev, test = split(qas, seed=0)
    assert split(qas, seed=0) == (dev, test)
    assert {q.id for q in dev}.isdisjoint({q.id for q in test})
    assert len(dev) + len(test) == 200 and 70 < len(test) < 130
    assert [q.id for q in dev] == sorted(q.id for q in dev)  # input order kept
    assert split(qas, seed=1) != (dev, test)


def test_split_depends_on_the_id_only() -> None:
    qas = _qas(50)
    _, test = split(qas, seed=4)
    _, test_reversed = split(list(reversed(qas)), seed=4)
    assert {q.id for q in test} == {q.id for q in test_reversed}
    _, test_more = split(qas + _qas(80)[50:], seed=4)  # new questions move no old one
    assert {q.id for q in test} == {q.id for q in test_more if int(q.id[3:]) < 50}
    assert all(is_test(q.id, 4) for q in test)


def test_split_fraction_and_keyed_rows() -> None:
    rows = [{"id": f"r{i}"} for i in range(400)]
    dev, test = split(rows, seed=0, test_fraction=0.25, key=lambda row: row["id"])
    assert 70 < len(test) < 130 and len(dev) + len(test) == 400


def test_load_split_on_the_demo_heldout_set() -> None:
    dev, test = load_split(str(DOMAIN_QA), seed=0)
    assert len(dev) + len(test) == len(load_qa(DOMAIN_QA)) == 120
    assert 40 <= len(test) <= 80
    capped_dev, capped_test = load_split(str(DOMAIN_QA), seed=0, size=5)
    assert capped_dev == dev[:5] and capped_test == test[:5]
    summary = split_summary([qa.id for qa in dev], [qa.id for qa in test], 0, 0.5)
    assert summary["dev_n"] == len(dev) and summary["test_ids"] == [qa.id for qa in test]


def test_mean_ci_on_a_known_sample() -> None:
    constant = mean_ci([2.0] * 30)
    assert constant == {"value": 2.0, "lo": 2.0, "hi": 2.0}
    coin = mean_ci([0, 1] * 50, seed=0)  # mean 0.5, standard error 0.05
    assert coin["value"] == 0.5
    assert coin["lo"] == pytest.approx(0.5 - 1.96 * 0.05, abs=0.02)
    assert coin["hi"] == pytest.approx(0.5 + 1.96 * 0.05, abs=0.02)
    weighted = mean_ci([4.0, 2.0], weights=[2, 2])
    assert weighted["value"] == 1.5 and 1.0 <= weighted["lo"] <= 1.5 <= weighted["hi"] <= 2.0


def test_paired_changes() -> None:
    before = [2.0, 3.0, 4.0, 1.0]
    lower = relative_change_ci(before, [x * 0.9 for x in before])
    assert lower["value"] == pytest.approx(-0.1)
    assert lower["lo"] == pytest.approx(-0.1) and lower["hi"] == pytest.approx(-0.1)
    mixed = relative_change_ci([1.0] * 40, [0.5, 1.3] * 20, seed=2)
    assert mixed["value"] == pytest.approx(-0.1) and mixed["lo"] < -0.1 < mixed["hi"]
    diff = difference_ci([0, 0, 1, 1] * 10, [1, 0, 1, 1] * 10)
    assert diff["value"] == pytest.approx(0.25) and 0 < diff["lo"] <= 0.25 <= diff["hi"]
    with pytest.raises(ValueError, match="questions"):
        difference_ci([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no questions"):
        mean_ci([])
