"""Fact exposures and general replay rows (flows/train_rows.py), pure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flows.train_rows import (
    is_document,
    order_fields,
    qa_first,
    replay_rows,
    training_rows,
    with_exposures,
)
from generators.errors import SelfAlignError
from generators.records import Record

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "data" / "general" / "seed_tasks.jsonl"


def _row(text: str, origin: str, form: str | None = None) -> dict:
    chat = [{"role": "user", "content": text}, {"role": "assistant", "content": "a"}]
    meta = {"origin": origin, **({"fact_form": form} if form else {})}
    return {"messages": chat, "meta": meta}


def _texts(rows: list[dict]) -> list[str]:
    return [r["messages"][0]["content"] for r in rows]


def test_exposures_repeat_facts_rows_only_for_dicts_and_records() -> None:
    rows = [_row("q", "reading"), _row("f", "facts")]
    assert [r["messages"][0]["content"] for r in with_exposures(rows, 3)] == ["q", "f", "f", "f"]
    recs = [Record("q", meta={"origin": "reading"}), Record("f", meta={"origin": "facts"})]
    assert [r.instruction for r in with_exposures(recs, 2)] == ["q", "f", "f"]
    assert with_exposures(rows, 1) == rows


def test_replay_rows_are_chat_rows_from_self_instruct_tasks_seeded() -> None:
    rows = replay_rows(str(REPLAY), 5, seed=0)
    assert len(rows) == 5 and rows == replay_rows(str(REPLAY), 5, seed=0)
    assert rows != replay_rows(str(REPLAY), 5, seed=1)
    for row in rows:
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant" and assistant["content"]
        assert row["meta"]["origin"] == "replay"
    assert len(replay_rows(str(REPLAY), 400, seed=0)) == 400  # cycles through the 175 tasks


def test_a_bad_replay_file_is_one_error_naming_its_line(tmp_path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text(json.dumps({"instruction": "x", "instances": []}) + "\n")
    with pytest.raises(SelfAlignError, match=r"tasks\.jsonl:1: not a Self-Instruct task"):
        replay_rows(str(bad), 1, 0)
    with pytest.raises(SelfAlignError, match="train.replay_set: .*missing"):
        replay_rows(str(tmp_path / "missing"), 1, 0)


def test_training_rows_add_the_replay_share_and_keep_every_domain_row() -> None:
    rows = [_row(f"q{i}", "reading") for i in range(8)] + [_row("f", "facts")]
    out = training_rows(rows, exposures=2, replay=0.5, replay_set=str(REPLAY), seed=0)
    origins = [r["meta"]["origin"] for r in out]
    assert origins.count("facts") == 2 and origins.count("reading") == 8
    assert origins.count("replay") == 5  # half of the 10 domain rows, rounded
    assert out == training_rows(rows, 2, 0.5, str(REPLAY), 0)
    assert training_rows(rows, 1, 0.0, None, 0) == rows  # nothing asked: the rows as they are


def test_qa_first_puts_question_rows_before_document_rows_keeping_their_order() -> None:
    rows = [
        _row("s1", "facts", "statement"), _row("q1", "facts", "question"), _row("r1", "reading"),
        _row("n1", "facts", "notes"), _row("c1", "facts", "cloze"), _row("l1", "facts", "relation"),
        _row("p1", "facts", "passage"),
    ]  # fmt: skip
    assert _texts(qa_first(rows)) == ["q1", "r1", "c1", "s1", "n1", "l1", "p1"]
    assert [is_document(r) for r in rows] == [True, False, False, True, False, True, True]
    # a document form outside the facts origin is not a document
    assert not is_document(_row("x", "reading", "statement"))
    recs = [Record("s", meta={"origin": "facts", "fact_form": "statement"}), Record("q")]
    assert [r.instruction for r in qa_first(recs)] == ["q", "s"]


def test_order_qa_first_shuffles_each_part_and_asks_the_trainer_to_keep_it() -> None:
    rows = [_row(f"q{i}", "facts", "question") for i in range(6)]
    rows += [_row(f"s{i}", "facts", "statement") for i in range(6)]
    out = _texts(training_rows(rows, 1, 0.0, None, seed=0, order="qa_first"))
    assert sorted(out[:6]) == [f"q{i}" for i in range(6)] and out[:6] != sorted(out[:6])
    assert sorted(out[6:]) == [f"s{i}" for i in range(6)]
    assert out == _texts(training_rows(rows, 1, 0.0, None, seed=0, order="qa_first"))
    with_replay = training_rows(rows, 1, 0.5, str(REPLAY), seed=0, order="qa_first")
    assert {r["meta"]["origin"] for r in with_replay[:12]} == {"facts", "replay"}  # replay is QA
    assert all(is_document(r) for r in with_replay[12:]) and len(with_replay) == 18
    assert order_fields("qa_first") == {"train_sampling_strategy": "sequential"}
    assert order_fields("shuffled") == {}


def _grams(text: str, n: int = 13) -> set:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_the_replay_tasks_share_no_13_gram_with_the_general_held_out_set() -> None:
    def texts(path: Path):
        for line in path.read_text().splitlines():
            task = json.loads(line)
            yield " ".join([task["instruction"]] + [i["input"] + " " + i["output"]
                                                     for i in task["instances"]])  # fmt: skip

    held = set().union(*map(_grams, texts(ROOT / "data/general/user_oriented_instructions.jsonl")))
    assert not any(_grams(t) & held for t in texts(REPLAY))


def test_the_trainer_keeps_qa_first_rows_in_order(tmp_path) -> None:
    from trl import SFTConfig

    from trainers.sft import SFT_DEFAULTS, trainer_args

    args = trainer_args(SFTConfig, SFT_DEFAULTS, order_fields("qa_first"), "sft", tmp_path)
    assert args.train_sampling_strategy == "sequential"
    assert trainer_args(SFTConfig, SFT_DEFAULTS, {}, "sft", tmp_path).train_sampling_strategy == (
        "random"
    )
