"""trainers.evaluate: pure scoring without a model; losses, IFD, generation
and evaluate() on the real default model (slow)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainers.data import QA, load_qa
from trainers.evaluate import (
    answer_losses,
    encode_example,
    evaluate,
    generation_score,
    ifd_scores,
    length_batches,
    load_model,
    mean_answer_loss,
    token_f1,
)

DOMAIN_QA = Path(__file__).parents[2] / "data" / "biomed" / "heldout_qa.jsonl"
GENERAL_QA = Path(__file__).parents[2] / "data" / "general" / "user_oriented_instructions.jsonl"
END_OF_TURN = "<|im_end|>\n"  # what SmolLM2's chat template puts after an assistant turn
PROMPTS = ["What is the capital of France?", "What is 2 + 2?", "Name a primary color."]
ANSWERS = ["The capital of France is Paris.", "2 + 2 = 4.", "Red is a primary color."]


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("Paris is the capital", "Paris is the capital", 1.0),
        ("red blue", "green yellow", 0.0),
        ("red blue green", "red yellow", 0.4),  # P 1/3, R 1/2
        ("The Paris!", "paris", 1.0),  # articles and punctuation ignored
        ("An apple, a day.", "apple day", 1.0),
        ("", "", 1.0),
        ("", "paris", 0.0),
    ],
)
def test_token_f1(prediction: str, gold: str, expected: float) -> None:
    assert token_f1(prediction, gold) == pytest.approx(expected)


def test_mean_answer_loss_weights_by_tokens() -> None:
    assert mean_answer_loss([(4.0, 2), (2.0, 2)]) == pytest.approx(1.5)
    assert mean_answer_loss([(3.0, 1), (1.0, 3)]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no answer tokens"):
        mean_answer_loss([])


def test_length_batches_sorts_by_length() -> None:
    assert length_batches([5, 1, 3], 2) == [[1, 2], [0]]
    assert length_batches([], 4) == []


class CharTokenizer:
    """One token per character; its template does not prefix-match (forces the fallback)."""

    chat_template = "fake"
    eos_token = "</s>"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = f"U:{messages[0]['content']}\n"
        if add_generation_prompt:
            return text + "A:"
        return text + f"ASSISTANT:{messages[1]['content']}</s>"

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text]}


def test_encode_example_falls_back_and_truncates_prompt_from_left() -> None:
    ids, n_answer = encode_example(CharTokenizer(), "hello", "ok")
    assert "".join(map(chr, ids)) == "U:hello\nA:ok</s>"
    assert n_answer == len("ok</s>")
    ids, n_answer = encode_example(CharTokenizer(), "x" * 50, "ok", max_length=10)
    assert "".join(map(chr, ids)) == "xxx\nA:ok</s>"[-10:]
    assert n_answer == 6
    ids, n_answer = encode_example(CharTokenizer(), "hi", "a long answer", max_length=4)
    assert "".join(map(chr, ids)) == ":a long answer</s>"  # the answer is never cut
    assert n_answer == len("a long answer</s>")


@pytest.fixture(scope="module")
def loaded(default_model):
    return load_model(default_model.path)


@pytest.mark.slow
def test_correct_answer_scores_lower_than_garbled(loaded) -> None:
    model, tok = loaded
    prompt = PROMPTS[0]
    good, bad = answer_losses(
        model, tok, [prompt, prompt], [ANSWERS[0], "Banana seventeen of purple the."]
    )
    assert good[0] / good[1] < bad[0] / bad[1]


@pytest.mark.slow
def test_answer_token_counts_match_hand_count(loaded) -> None:
    model, tok = loaded
    pairs = answer_losses(model, tok, PROMPTS, ANSWERS)
    hand = [len(tok(a + END_OF_TURN, add_special_tokens=False)["input_ids"]) for a in ANSWERS]
    assert [n for _, n in pairs] == hand


@pytest.mark.slow
def test_batching_and_order_do_not_change_losses(loaded) -> None:
    model, tok = loaded
    one = answer_losses(model, tok, PROMPTS, ANSWERS, batch_size=1)
    batched = answer_losses(model, tok, PROMPTS, ANSWERS, batch_size=3)
    reversed_ = answer_losses(model, tok, PROMPTS[::-1], ANSWERS[::-1], batch_size=3)
    for (a, n), (b, m), (c, k) in zip(one, batched, reversed_[::-1], strict=True):
        assert n == m == k
        assert b == pytest.approx(a, abs=1e-3)
        assert c == pytest.approx(a, abs=1e-3)
    assert len({round(x, 3) for x, _ in one}) == 3  # the examples differ, so order is visible


@pytest.mark.slow
def test_ifd_scores_positive_finite(loaded) -> None:
    model, tok = loaded
    scores = ifd_scores(model, tok, PROMPTS, ANSWERS, batch_size=2)
    assert len(scores) == 3
    assert all(math.isfinite(s) and s > 0 for s in scores)


@pytest.mark.slow
def test_generation_score(loaded) -> None:
    model, tok = loaded
    qas = [QA(f"q{i}", p, a) for i, (p, a) in enumerate(zip(PROMPTS, ANSWERS, strict=True))]
    result = generation_score(model, tok, qas, max_new_tokens=24)
    assert result["n"] == 3
    assert 0.0 <= result["token_f1"] <= 1.0
    assert [e["id"] for e in result["examples"]] == ["q0", "q1", "q2"]
    assert all(e["prediction"].strip() for e in result["examples"])


@pytest.mark.slow
def test_evaluate_on_real_heldout_sets(default_model) -> None:
    domain, general = load_qa(DOMAIN_QA, limit=8), load_qa(GENERAL_QA, limit=8)
    test = load_qa(DOMAIN_QA)[8:12]
    report = evaluate(default_model.path, domain, general, generate=2, max_new_tokens=24, test=test)
    assert report["model"] == default_model.path
    assert (report["domain_n"], report["general_n"], report["test_n"]) == (8, 8, 4)
    per_q = report["per_question"]
    assert per_q["test"]["ids"] == [qa.id for qa in test]
    assert sum(per_q["dev"]["nll"]) / sum(per_q["dev"]["tokens"]) == pytest.approx(
        report["domain_loss"]
    )
    assert math.isfinite(report["test_loss"]) and report["test_loss"] > 0
    assert report["domain_tokens"] > 8
    for key in ("domain_loss", "general_loss", "domain_token_f1", "seconds"):
        assert math.isfinite(report[key]) and report[key] >= 0, key
    assert 0.0 <= report["domain_token_f1"] <= 1.0
    assert [e["id"] for e in report["examples"]] == [qa.id for qa in domain[:2]]
