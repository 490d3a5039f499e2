"""trainers.mc without a model: the acc / acc_norm definitions and the task files lm-eval reads."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from trainers.mc import _per_question, mc_scores, write_task

HELDOUT = Path(__file__).parents[2] / "data" / "biomed" / "heldout_qa.jsonl"
ITEMS = [
    {"id": "q1", "question": "Which?", "choices": ["a b", 'it\'s "x"', "ü"], "gold": 1},
    {"id": "q2", "question": "How many?", "choices": ["37.", "75."], "gold": 0, "extra": [1]},
]


def test_acc_and_acc_norm_differ_on_a_long_choice():
    # the short choice wins on the sum (-20 > -21); the long one (26 characters) wins per
    # character (-21/26 = -0.81 > -20/4 = -5.0)
    choices = [["IgG.", "a much longer right answer"]]
    assert mc_scores([[-20.0, -21.0]], choices, [1]) == {"acc": [0], "acc_norm": [1]}
    assert mc_scores([[-20.0, -21.0]], choices, [0]) == {"acc": [1], "acc_norm": [0]}
    # both agree when the long choice also has the larger sum
    assert mc_scores([[-30.0, -9.0]], choices, [1]) == {"acc": [1], "acc_norm": [1]}


def test_ties_go_to_the_first_choice_like_numpy_argmax():
    assert mc_scores([[-2.0, -2.0, -3.0]], [["ab", "cd", "ef"]], [0]) == {
        "acc": [1],
        "acc_norm": [1],
    }
    assert mc_scores([[-2.0, -2.0, -3.0]], [["ab", "cd", "ef"]], [1]) == {
        "acc": [0],
        "acc_norm": [0],
    }
    # equal per-character scores (-1.0 each), different sums: acc_norm takes the first
    assert mc_scores([[-4.0, -2.0]], [["abcd", "ab"]], [0]) == {"acc": [0], "acc_norm": [1]}


def test_mc_scores_several_questions_in_order():
    logliks = [[-1.0, -5.0], [-5.0, -1.0], [-3.0, -1.0, -2.0]]
    choices = [["x", "y"], ["x", "y"], ["x", "y", "z"]]
    assert mc_scores(logliks, choices, [0, 0, 1]) == {"acc": [1, 0, 1], "acc_norm": [1, 0, 1]}
    assert mc_scores([], [], []) == {"acc": [], "acc_norm": []}


@pytest.mark.parametrize(
    ("logliks", "choices", "gold", "message"),
    [
        ([[-1.0]], [["x"]], [0, 1], r"1 loglikelihood rows, 1 choice rows, 2 gold"),
        ([[-1.0, -2.0]], [["x"]], [0], r"2 loglikelihoods"),
        ([[-1.0]], [["x"]], [1], r"gold 1"),
        ([[-1.0, -2.0]], [["x", ""]], [0], r"empty choice"),
    ],
)
def test_mc_scores_rejects_inconsistent_input(logliks, choices, gold, message):
    with pytest.raises(ValueError, match=message):
        mc_scores(logliks, choices, gold)


def test_write_task_files(tmp_path):
    path = write_task(ITEMS, tmp_path / "tasks", "bio_mc")
    data = (tmp_path / "tasks" / "bio_mc.jsonl").resolve()
    assert path == (tmp_path / "tasks" / "bio_mc.yaml").resolve()
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {
        "task": "bio_mc",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "gold",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    lines = data.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == ITEMS
    assert "ü" in lines[0]  # UTF-8, not \u escapes
    assert sorted(p.name for p in data.parent.iterdir()) == ["bio_mc.jsonl", "bio_mc.yaml"]
    write_task(ITEMS[:1], tmp_path / "tasks", "bio_mc")  # rewriting replaces both files
    assert len(data.read_text(encoding="utf-8").splitlines()) == 1


def test_lm_eval_reads_the_choices_and_prompt_back():
    """lm-eval renders doc_to_choice with Jinja and ast.literal_eval's it: quotes, apostrophes
    and non-ASCII text in every real held-out item must come back unchanged."""
    from lm_eval.utils import apply_template

    from filters.calibration import load_qa, mc_items

    items = mc_items(load_qa(HELDOUT)) + ITEMS
    for item in items:
        assert ast.literal_eval(apply_template("{{choices}}", item)) == item["choices"]
    text = apply_template("Question: {{question}}\nAnswer:", ITEMS[0])
    assert text == "Question: Which?\nAnswer:"


def _sample(doc_id: int, doc: dict, logliks: list[float], acc: float, acc_norm: float) -> dict:
    """A sample as lm-eval logs it: filtered_resps holds (loglikelihood, is_greedy) per choice."""
    resps = [(ll, False) for ll in logliks]
    return {"doc_id": doc_id, "doc": doc, "filtered_resps": resps, "acc": acc, "acc_norm": acc_norm}


def test_per_question_reads_samples_in_file_order_and_cross_checks_them():
    docs = [{**item, "choices": ["IgG.", "a much longer right answer"]} for item in ITEMS]
    samples = [
        _sample(1, docs[1], [-20.0, -21.0], 1.0, 0.0),  # logged out of order
        _sample(0, docs[0], [-20.0, -21.0], 0.0, 1.0),
    ]
    assert _per_question("t", samples, ["q1", "q2"]) == {
        "acc_per_q": [0, 1],
        "acc_norm_per_q": [1, 0],
    }
    samples[0]["acc_norm"] = 1.0  # lm-eval and mc_scores disagree on q2
    with pytest.raises(
        RuntimeError, match=r"lm-eval's acc_norm differs from mc_scores at \['q2'\]"
    ):
        _per_question("t", samples, ["q1", "q2"])
    with pytest.raises(RuntimeError, match=r"lm-eval scored ids"):
        _per_question("t", samples, ["q2", "q1"])
