"""Fact exposures and general replay rows (flows/train_rows.py), pure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flows.train_rows import replay_rows, training_rows, with_exposures
from generators.errors import SelfAlignError
from generators.records import Record

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "data" / "general" / "seed_tasks.jsonl"


def _row(text: str, origin: str) -> dict:
    chat = [{"role": "user", "content": text}, {"role": "assistant", "content": "a"}]
    return {"messages": chat, "meta": {"origin": origin}}


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
