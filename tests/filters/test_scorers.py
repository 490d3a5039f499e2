"""The scorers: verdicts computed without asking the model, on fixed pairs (S3FT equivalence in
filters/s3ft.py, the likelihood verdicts and the support guard in filters/support.py)."""

from __future__ import annotations

import pytest

from filters import s3ft as scorers
from filters import support

GOLD = "The human mitochondrial genome is 16,569 base pairs long and encodes 37 genes."


@pytest.mark.parametrize(
    ("candidate", "equivalent"),
    [
        (GOLD, True),
        ("It is 16,569 base pairs long and encodes 37 genes.", True),  # shorter, same facts
        (GOLD.replace("16,569", "33,139").replace("37", "75"), False),
        (GOLD.replace(" is ", " is not "), False),
        ("Insulin is made by the beta cells of the pancreas.", False),  # another answer
        ("", False),
    ],
)
def test_f1_scorer_on_fixed_pairs(candidate: str, equivalent: bool) -> None:
    verdict = scorers.f1_equivalent(candidate, GOLD)
    assert verdict["equivalent"] is equivalent
    assert verdict["judge"] == "f1"


def test_f1_scorer_reports_its_f1_and_its_threshold_decides() -> None:
    candidate = "Mitochondrial DNA has 16,569 base pairs."
    verdict = scorers.f1_equivalent(candidate, GOLD)
    assert verdict["f1"] == round(scorers.token_f1(candidate, GOLD), 4) == 0.4444
    assert verdict["equivalent"] is False  # under the default 0.5
    assert scorers.f1_equivalent(candidate, GOLD, min_f1=0.4)["equivalent"] is True


def test_token_f1_bag_of_words() -> None:
    assert scorers.token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert scorers.token_f1("red blue", "green yellow") == 0.0
    assert scorers.token_f1("", "") == 1.0
    assert scorers.token_f1("", "paris") == 0.0


def test_cosine_scorer_needs_the_cosine_and_the_facts() -> None:
    assert scorers.cosine_equivalent("37 genes", "37 genes in all", 0.9)["equivalent"] is True
    assert scorers.cosine_equivalent("37 genes", "37 genes in all", 0.6)["equivalent"] is False
    # a near-identical sentence with another number is not equivalent, however close
    assert scorers.cosine_equivalent("75 genes", "37 genes", 0.99)["equivalent"] is False
    assert scorers.cosine_equivalent("  ", "37 genes", 1.0)["equivalent"] is False
    assert scorers.cosine_equivalent("37 genes", "37 genes", 0.912345)["cosine"] == 0.9123


@pytest.mark.parametrize(
    ("candidate", "gold", "agree"),
    [
        ("37 genes", "37 genes (13 proteins, 22 tRNAs)", True),  # a part of the gold's numbers
        ("75 genes", "37 genes", False),
        ("37 genes and 5 more", "37 genes", False),  # a number the gold does not state
        ("about 1,200 mg", "1200 mg", True),
        ("many genes", "37 genes", False),  # the gold's number is lost
        ("no number here", "none there either", True),
    ],
)
def test_numbers_agree(candidate: str, gold: str, agree: bool) -> None:
    assert scorers.numbers_agree(candidate, gold) is agree


@pytest.mark.parametrize(
    ("candidate", "gold", "agree"),
    [
        ("Insulin lowers blood glucose.", "It lowers glucose in the blood.", True),
        ("Insulin raises blood glucose.", "Insulin lowers blood glucose.", False),
        ("The drug does not cross the barrier.", "The drug crosses the barrier.", False),
        ("It isn't soluble.", "It is not soluble.", True),  # one negation each
        ("Cortisol increases gluconeogenesis.", "Cortisol decreases gluconeogenesis.", False),
        ("The virus cannot replicate alone.", "The virus can not replicate alone.", True),
    ],
)
def test_polarity_agrees(candidate: str, gold: str, agree: bool) -> None:
    assert scorers.polarity_agrees(candidate, gold) is agree


def test_negations_count_words_and_contractions() -> None:
    assert scorers.negations("It does not bind, and cannot.") == 2
    assert scorers.negations("It isn't and won't.") == 2
    assert scorers.negations("Nothing notable.") == 0


def test_passage_gain_mean_and_worst_token() -> None:
    assert support.passage_gain([0.5, 1.0], [2.0, 1.5]) == {"gain": 1.0, "worst": 0.0}
    # the second token is 3 nats less likely after the passages: a contradiction
    assert support.passage_gain([0.5, 4.5], [2.0, 1.5]) == {"gain": -0.75, "worst": 3.0}
    assert support.passage_gain([], []) == {"gain": 0.0, "worst": 0.0}
    # tokenized apart (unequal lengths): the means only
    assert support.passage_gain([1.0, 1.0, 1.0], [3.0, 3.0]) == {"gain": 2.0, "worst": 0.0}


def test_gain_verdict_ifd_verdict_and_the_support_guard() -> None:
    assert support.gain_verdict({"gain": 0.8, "worst": 0.3}) is True
    assert support.gain_verdict({"gain": 0.8, "worst": 4.1}) is False
    assert support.gain_verdict({"gain": 0.05, "worst": 0.0}) is False
    assert support.gain_verdict({"gain": 0.05, "worst": 0.0}, min_gain=0.0) is True
    assert support.ifd_verdict(0.7) is True
    assert support.ifd_verdict(1.2) is False
    assert support.ifd_verdict(None) is False
    assert support.ifd_verdict(float("nan")) is False
    assert support.support_holds(0.5, 0.5) is True
    assert support.support_holds(0.5, 0.4) is False


def test_control_order_pairs_each_item_with_one_of_another_key() -> None:
    assert support.control_order(["q1", "q1", "q2"]) == [2, 2, 0]
    assert support.control_order(["q1", "q1"]) == [None, None]  # nothing unrelated to use
    keys = ["a", "b", "c", "a", "d"]
    order = support.control_order(keys, seed=3)
    assert all(j is not None and keys[j] != k for k, j in zip(keys, order, strict=True))
    assert order[0] == order[3]  # one control per key
    assert support.control_order(keys, seed=3) == order
