"""Held-out QA and the knowledge set refuse control characters other than tab and newline, with
the file and line, by the same rule as generators/io.py (trainers/ keep their own copy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainers import knowledge_set as ks
from trainers.data import DataError, control_char_problem, load_qa
from trainers.heldout import load_split

ALLOWED = "only tab and newline are allowed"
QA = {"id": "q1", "question": "What makes ATP?", "answer": "ATP synthase"}
ITEM = {
    "id": "kn-x-001",
    "passage_id": "x-001",
    "kind": "number",
    "question": "How many sodium ions does the pump export per ATP?",
    "choices": ["two", "three", "seven", "four"],
    "gold": 1,
}


def _jsonl(path: Path, rows: list[dict], blank_line: bool = False) -> Path:
    lines = [json.dumps(row) + "\n" for row in rows]
    path.write_text(("\n" if blank_line else "").join(lines), encoding="utf-8")
    return path


def _error(path: Path, rest: str) -> str:
    return "^" + re.escape(f"{path}{rest}")


def test_the_trainers_rule_is_generators_rule():
    from generators.errors import SelfAlignError
    from generators.io import refuse_control_chars

    texts = [chr(c) for c in range(0x300)] + ["a\r\nb", "a\rb", "\r", "x\r\n\x00", "\t\n", "ok"]
    for text in texts:
        problem = control_char_problem(text, "answer")
        try:
            refuse_control_chars(text, "qa.jsonl:1", "answer")
        except SelfAlignError as e:
            assert str(e) == f"qa.jsonl:1: {problem}", repr(text)
        else:
            assert problem is None, repr(text)


def test_message():
    assert control_char_problem("ATP\x00", "answer") == (
        f"control character U+0000 (NUL) in 'answer' at character 4 ({ALLOWED})"
    )
    assert control_char_problem("tab\tnew\nline\r\n", "answer") is None


@pytest.mark.parametrize(
    "row, rest",
    [
        (
            {**QA, "answer": "ATP\u0000 synthase"},
            ":3: control character U+0000 (NUL) in 'answer' at character 4",
        ),
        (
            {**QA, "question": "\u001b[1mWhat?"},
            ":3: control character U+001B (ESC) in 'question' at character 1",
        ),
        ({**QA, "id": "q\u007f"}, ":3: control character U+007F (DEL) in 'id' at character 2"),
        (
            {"instruction": "Sort:", "instances": [{"input": "b\u0085a", "output": "a b"}]},
            ":3: control character U+0085 in 'instances[0].input' at character 2",
        ),
        (
            {"instruction": "Say\rhi", "instances": [{"input": "", "output": "hi"}]},
            ":3: control character U+000D (CR) in 'instruction' at character 4",
        ),
    ],
)
def test_heldout_qa_names_file_line_and_field(tmp_path, row, rest):
    # line 3: a blank line between the rows, which must not shift the line number
    path = _jsonl(tmp_path / "qa.jsonl", [QA, row], blank_line=True)
    with pytest.raises(DataError, match=_error(path, rest)):
        load_qa(path)
    with pytest.raises(DataError, match=_error(path, rest)):
        load_split(str(path))


def test_heldout_qa_with_crlf_and_tabs_loads(tmp_path):
    path = tmp_path / "qa.jsonl"
    row = {**QA, "answer": "ATP\tsynthase,\r\nthe enzyme"}
    path.write_bytes((json.dumps(QA) + "\r\n" + json.dumps({**row, "id": "q2"}) + "\r\n").encode())
    qas = load_qa(path)
    assert [qa.answer for qa in qas] == ["ATP synthase", "ATP\tsynthase,\r\nthe enzyme"]


def test_knowledge_set_names_file_line_and_field(tmp_path):
    bad = {**ITEM, "id": "kn-x-002", "choices": ["two", "three", "se\u0000ven", "four"]}
    path = _jsonl(tmp_path / "kn.jsonl", [ITEM, bad])
    rest = ":2: control character U+0000 (NUL) in 'choices[2]' at character 3"
    with pytest.raises(ks.KnowledgeSetError, match=_error(path, rest)):
        ks.read_jsonl(path)
    assert issubclass(ks.KnowledgeSetError, DataError)  # the CLI's one-line `error:` for it


def test_knowledge_set_line_numbers_survive_raw_line_separators(tmp_path):
    # U+2028 may stand raw in a JSON string; splitlines() would cut the line there
    path = _jsonl(tmp_path / "kn.jsonl", [{**ITEM, "question": "How\u2028many?"}, ITEM])
    path.write_text(path.read_text().replace("\\u2028", "\u2028"), encoding="utf-8")
    assert [no for no, _ in ks.read_jsonl(path)] == [1, 2]


def test_knowledge_set_check_command_exits_2_with_one_error(tmp_path, capsys):
    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"id": "x-001", "text": "three sodium ions"}])
    path = _jsonl(tmp_path / "kn.jsonl", [{**ITEM, "question": "How\u0007 many?"}])
    assert ks.main(["check", str(path), "--corpus", str(corpus)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {path}:1: control character U+0007 (BEL) in 'question' at character 4 ({ALLOWED})"
    ]
