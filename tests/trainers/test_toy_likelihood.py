"""The likelihood scorers end to end on a toy model (trainers/evaluate.py + filters/support.py):
the copier of tests/trainers/toy_model.py predicts what it can copy from its prompt, so the
ordering the scorers rely on is known exactly."""

from __future__ import annotations

import pytest

from filters.support import MAX_DROP, gain_verdict, ifd_verdict, passage_gain
from tests.trainers.toy_model import AsciiTokenizer, Copier
from trainers.evaluate import answer_token_losses, ifd_scores


@pytest.fixture
def toy():
    return Copier(), AsciiTokenizer()


def test_ifd_is_lower_where_the_question_holds_the_answer(toy) -> None:
    model, tok = toy
    answer = "the genome has 16569 base pairs"
    prompts = [f"Note that {answer}. How long is it?", "How long is the genome in total?"]
    held, unrelated = ifd_scores(model, tok, prompts, [answer, answer], batch_size=2)
    assert held < 0.5 < unrelated
    assert ifd_verdict(held) is True


def test_passage_gain_backs_the_stated_answer_and_catches_a_contradicted_token(toy) -> None:
    model, tok = toy
    question = "How long is the mitochondrial genome?"
    passage = "Passages:\nThe mitochondrial genome has 16569 base units.\n\n"
    answers = [
        "The mitochondrial genome has 16569 base units.",  # as the passage states it
        "The mitochondrial genome has 16569 base pairs.",  # 'p' where the passage says 'u'
        "Bananas are yellow fruit.",  # nothing the passage says
    ]
    alone = answer_token_losses(model, tok, [question] * 3, answers)
    given = answer_token_losses(model, tok, [passage + question] * 3, answers)
    stated, contradicted, unrelated = (
        passage_gain(g, a) for g, a in zip(given, alone, strict=True)
    )
    assert stated["gain"] > contradicted["gain"] > unrelated["gain"]
    assert stated["worst"] == pytest.approx(0.0, abs=1e-3)
    assert contradicted["worst"] > MAX_DROP  # the copier was sure of 'u'
    assert gain_verdict(stated) is True
    assert gain_verdict(contradicted) is False
    assert gain_verdict(unrelated) is False


def test_token_losses_are_the_answer_loss_without_the_end_of_turn(toy) -> None:
    from trainers.evaluate import answer_losses, end_of_turn_tokens

    model, tok = toy
    assert end_of_turn_tokens(tok) == len("</s>")
    prompts, answers = ["abcd abcd", "xyz"], ["abcd", "hello"]
    per_token = answer_token_losses(model, tok, prompts, answers, batch_size=1)
    assert [len(t) for t in per_token] == [4, 5]
    answer_only = [a + "</s>" for a in answers]  # the same tokens, scored in full
    summed = answer_losses(model, tok, prompts, answers, batch_size=2)
    for tokens, (total, n), answer in zip(per_token, summed, answer_only, strict=True):
        assert n == len(answer)
        assert sum(tokens) <= total + 1e-6
