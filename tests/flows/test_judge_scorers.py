"""Judges scored without asking the model (flows/stages/judges/scored.py, s3ft.py, rating.py,
self_refine.py) and calibration choosing, per judge, between the model's verdict and its scorers
(flows/stages/calibrate.py). The model's verdicts come from a script; the likelihoods from the toy
copier of tests/trainers/toy_model.py, which predicts what its passages state."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from flows import pipeline
from flows.recipe import Recipe
from flows.stages import calibrate as cal
from flows.stages import likelihood
from flows.stages.judges.rating import rating_stage
from flows.stages.judges.s3ft import s3ft_targets
from flows.stages.judges.self_refine import self_refine_stage
from generators.records import Record
from tests.flows.fake_run import BASE, FakeRun
from tests.trainers.toy_model import AsciiTokenizer, Copier
from trainers.evaluate import answer_token_losses, ifd_scores

QA_FILE = Path(__file__).parents[2] / "data" / "biomed" / "heldout_qa.jsonl"
ALWAYS_EQUIVALENT = '{"equivalent": true, "rationale": "same"}'
ALWAYS_FIVE = '{"score": 5, "rationale": "fine"}'


class HashEncoder:
    """Bag-of-words vectors (hashed into 256 dims, L2-normalised): cosine = word overlap."""

    def encode(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % 256] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class ToyTask:
    """A stand-in for likelihood's cached tasks: the toy copier computes them in process."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def with_options(self, **options):
        return self

    def __call__(self, key, model_path, prompts, answers, precision="fp32"):
        self.calls += 1
        return self.fn(Copier(), AsciiTokenizer(), prompts, answers)


@pytest.fixture
def toy_likelihoods(monkeypatch):
    monkeypatch.setattr(likelihood, "token_loss_batch", ToyTask(answer_token_losses))
    monkeypatch.setattr(likelihood, "ifd_batch", ToyTask(ifd_scores))
    monkeypatch.setattr(likelihood, "_model_path", lambda tools: "/toy")
    monkeypatch.setattr(likelihood, "scoring_precision", lambda path: "fp32")


def dev_qa() -> list[dict]:
    rows = [json.loads(line) for line in QA_FILE.read_text().splitlines() if line.strip()]
    return cal.dev_rows(Recipe.model_validate(BASE), rows)


def qa_run(tmp_path: Path, script: dict, **sections) -> FakeRun:
    """A run calibrated on the demo's held-out QA (dev split, 12 pairs) whose index finds, for
    each question, a passage stating its answer."""
    run = FakeRun(script, calibration={"check_set": str(QA_FILE), "size": 12}, **sections)
    run.dir = tmp_path
    rows = dev_qa()
    run.texts = {row["id"]: f"{row['answer']}" for row in rows}
    by_question = {row["question"]: row["id"] for row in rows}
    run.retrieve = lambda batch, queries: [[(by_question[q], 1.0)] for q in queries]
    run.encoder = HashEncoder
    return run


def test_calibration_picks_the_s3ft_scorer_that_agrees_over_a_yes_saying_model(tmp_path):
    run = qa_run(
        tmp_path, {"calibrate-s3ft": ALWAYS_EQUIVALENT}, s3ft={"enabled": True, "judge": "auto"}
    )
    assert cal.judges_in(run.recipe) == ["s3ft_equivalence"]
    result = cal.calibrate(run.tools(run.texts), log=None)
    judged = result["judges"]["s3ft_equivalence"]
    assert list(judged["candidates"]) == ["f1", "cosine", "llm"]  # scorers first, then the model
    assert judged["candidates"]["llm"]["agreement"] == 0.5  # it calls everything equivalent
    assert judged["scorer"] == "f1"  # a tie with cosine goes to the one measured first
    assert judged["agreement"] == judged["candidates"]["f1"]["agreement"] >= 0.9
    assert judged["candidates"]["cosine"]["agreement"] >= 0.9
    assert judged["action"] == "used"
    assert cal.chosen_scorers(result) == {"s3ft_equivalence": "f1"}
    on_disk = json.loads((tmp_path / "calibration.json").read_text())
    assert on_disk["judges"]["s3ft_equivalence"]["scorer"] == "f1"


def test_calibration_picks_passage_gain_for_the_rating_judge(tmp_path, toy_likelihoods):
    run = qa_run(
        tmp_path, {"calibrate-rating": ALWAYS_FIVE}, rating={"enabled": True, "scorer": "auto"}
    )
    result = cal.calibrate(run.tools(run.texts), log=None)
    judged = result["judges"]["rating"]
    assert list(judged["candidates"]) == ["passage_gain", "ifd", "llm"]
    assert judged["candidates"]["llm"]["agreement"] == 0.5
    assert judged["scorer"] == "passage_gain"
    others = [m["agreement"] for name, m in judged["candidates"].items() if name != "passage_gain"]
    assert judged["agreement"] > max(others)
    # another question's answer (swapped) gains nothing from this one's passage; the copier
    # cannot see a changed number at the start of an answer, so it misses some "numeric" ones
    assert judged["by_kind"]["swapped"]["agreement"] == 1.0


def test_a_named_scorer_is_the_only_candidate_and_a_rule_is_not_calibrated(tmp_path):
    run = qa_run(tmp_path, {}, s3ft={"enabled": True, "judge": "f1"})
    result = cal.calibrate(run.tools(run.texts), log=None)
    assert "candidates" not in result["judges"]["s3ft_equivalence"]
    assert result["judges"]["s3ft_equivalence"]["scorer"] == "f1"
    assert cal.judges_in(FakeRun(s3ft={"enabled": True, "judge": "exact"}).recipe) == []
    # asked by name (selfalign calibrate --judge), a rule's judge is measured by its model verdict
    exact = FakeRun(s3ft={"enabled": False, "judge": "exact"}).recipe
    assert cal.candidates_of(exact, "s3ft_equivalence") == ["llm"]


def test_auto_without_a_check_set_is_a_recipe_error():
    with pytest.raises(ValidationError, match=r"rating: 'auto' needs calibration.check_set"):
        Recipe.model_validate({**BASE, "rating": {"enabled": True, "scorer": "auto"}})
    with pytest.raises(ValidationError, match=r"s3ft: 'auto' needs calibration.check_set"):
        Recipe.model_validate({**BASE, "s3ft": {"enabled": True, "judge": "auto"}})


def test_the_pipeline_hands_each_judge_the_scorer_calibration_chose():
    recipe = FakeRun(
        rating={"enabled": True, "scorer": "auto"},
        s3ft={"enabled": True},
        calibration={"check_set": str(QA_FILE)},
    ).recipe
    stages = pipeline.judged_stages(recipe, [], {}, {"rating": "ifd"})
    assert all(isinstance(s, partial) for s in stages)
    assert [(s.func.__name__, s.keywords["scorer"]) for s in stages] == [
        ("rating_stage", "ifd"),
        ("s3ft_stage", None),
    ]


def test_rating_by_passage_gain_keeps_what_the_passage_states(toy_likelihoods):
    run = FakeRun(rating={"enabled": True})
    run.texts = {"p1": "The mitochondrial genome has 16569 base units."}
    records = [
        Record(instruction="How long is the genome?", output=run.texts["p1"], passages=("p1",)),
        Record(
            instruction="How long is the genome?",
            output="The mitochondrial genome has 16569 base pairs.",
            passages=("p1",),
        ),
    ]
    outcome = run.apply(rating_stage, records, scorer="passage_gain")
    assert [r.output for r in outcome.records] == [run.texts["p1"]]
    (dropped,) = run.stages[0][3]
    assert dropped.meta["drop_reason"] == "scorer_passage_contradicts"
    assert dropped.meta["rating"]["scorer"] == "passage_gain"
    assert outcome.records[0].meta["rating"]["correct"] is True
    assert "rating" not in run.asked  # the model was not asked for a rating


def test_s3ft_with_the_f1_scorer_asks_the_model_for_answers_only():
    gold = "The genome has 16,569 base pairs."
    script = {"s3ft-own": "It has 16,569 base pairs.", "s3ft-paraphrase": "Its length: 16,569 bp."}
    run = FakeRun(script, s3ft={"enabled": True, "judge": "auto"}, calibration={"check_set": "x"})
    out = run.apply(s3ft_targets, [Record(instruction="How long?", output=gold)], scorer="f1")
    (record,) = out.records
    assert record.meta["target_source"] == "own"
    assert record.meta["s3ft"]["own_verdict"]["judge"] == "f1"
    assert set(run.asked) == {"s3ft-own"}  # no equivalence verdict asked of the model
    # skipped by calibration: exact match instead
    out = run.apply(s3ft_targets, [Record(instruction="How long?", output=gold)], skipped="low")
    assert out.records[0].meta["s3ft"]["own_verdict"]["judge"] == "exact"


def test_self_refine_by_a_scorer_and_the_support_guard(toy_likelihoods):
    stated = "The mitochondrial genome has 16569 base units."
    script = {"self-refine-0": "Bananas are a yellow fruit."}  # a refinement the passage lacks
    run = FakeRun(script, self_refine={"enabled": True, "max_steps": 1})
    run.texts = {"p1": stated}
    records = [
        Record(instruction="How long is the genome?", output=stated, passages=("p1",)),
        Record(
            instruction="How long is the genome?",
            output="The mitochondrial genome has 16569 base pairs.",
            passages=("p1",),
        ),
    ]
    outcome = run.apply(self_refine_stage, records, scorer="passage_gain")
    assert [r.output for r in outcome.records] == [stated]
    assert "self-feedback-0" not in run.asked  # the scorer judged, the model only refined
    (dropped,) = run.stages[0][3]
    assert dropped.meta["drop_reason"] == "refinement_lowers_support"
    assert dropped.meta["self"]["support_before"] > dropped.meta["self"]["support_after"]
    rows = outcome.datasets["self_feedback"]
    assert [row["verdict"] for row in rows] == ["correct", "incorrect"]


def test_self_refine_keeps_a_refinement_whose_support_holds(toy_likelihoods):
    stated = "The mitochondrial genome has 16569 base units."
    run = FakeRun({"self-refine-0": stated}, self_refine={"enabled": True, "max_steps": 1})
    run.texts = {"p1": stated}
    wrong = Record(
        instruction="How long?", output="The genome has 99 base pairs.", passages=("p1",)
    )
    outcome = run.apply(self_refine_stage, [wrong], scorer="passage_gain")
    (kept,) = outcome.records
    assert kept.output == stated
    assert kept.meta["self"]["accepted_at_step"] == 1
