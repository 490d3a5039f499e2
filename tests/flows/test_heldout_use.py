"""Nothing in calibration, promotion or any default reads the held-out test split."""

from __future__ import annotations

from pathlib import Path

from flows.recipe import load_recipe, validated
from flows.stages.calibrate import check_items
from trainers.heldout import load_split

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_QA = str(ROOT / "data" / "biomed" / "heldout_qa.jsonl")


def _recipe(**extra):
    data = {"name": "t", "seeds": "s.jsonl", "corpus": {"path": "c.jsonl"}, **extra}
    return validated(data, "t")


def test_calibration_check_set_is_the_dev_split_only() -> None:
    recipe = _recipe(
        calibration={"check_set": DOMAIN_QA, "size": 500},
        train={"eval": {"domain": DOMAIN_QA}},
    )
    dev, test = load_split(DOMAIN_QA)
    used = {item.id.rsplit(":", 1)[0] for item in check_items(recipe)}
    assert used == {qa.id for qa in dev}
    assert used.isdisjoint(qa.id for qa in test)


def test_a_different_split_seed_moves_the_check_set_with_it() -> None:
    recipe = _recipe(
        calibration={"check_set": DOMAIN_QA, "size": 500},
        train={"eval": {"domain": DOMAIN_QA, "split_seed": 7, "test_fraction": 0.3}},
    )
    dev, _ = load_split(DOMAIN_QA, seed=7, test_fraction=0.3)
    assert {item.id.rsplit(":", 1)[0] for item in check_items(recipe)} == {qa.id for qa in dev}


def test_shipped_recipes_keep_a_test_split() -> None:
    for path in sorted((ROOT / "flows" / "recipes").glob("*.yaml")):
        ev = load_recipe(path).train.eval
        assert 0 < ev.test_fraction < 1, path.name  # a default never folds test into dev
