"""Control characters other than tab and newline in seeds, corpus and QA files: one error naming
the file and line (a Parquet corpus: the row), raw or as a JSON escape such as "\\u0000"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.calibration import load_qa as load_check_set
from generators.corpus import iter_documents, load_corpus
from generators.errors import SelfAlignError
from generators.io import control_char, refuse_control_chars
from generators.seeds import load_seeds
from trainers.data import control_char_name

ALLOWED = "only tab and newline are allowed"
SEED = '{"id": "s1", "instruction": "Explain ATP.", "output": "ATP stores energy."}\n'
DOC = '{"id": "d1", "text": "ATP is made in mitochondria."}\n'


def _error(path: Path | str, rest: str) -> str:
    """A `match` pattern for an error that starts with `path` followed by `rest` (literal)."""
    return "^" + re.escape(f"{path}{rest}")


@pytest.mark.parametrize(
    "text",
    ["", "plain", "tab\there", "two\nlines", "crlf\r\nline", "\r\n", "ünï “cödé” — \u2028 \u200b"],
)
def test_tab_newline_and_crlf_are_text(text):
    assert control_char(text) is None
    assert refuse_control_chars(text, "f.jsonl:1", "text") is text


@pytest.mark.parametrize(
    "text, found",
    [
        ("a\x00b", (1, "\x00")),
        ("\x1b[31mred", (0, "\x1b")),
        ("del\x7f", (3, "\x7f")),
        ("c1 \x85", (3, "\x85")),
        ("\x9b", (0, "\x9b")),
        ("vt\x0bff\x0c", (2, "\x0b")),
        ("lone\rcr", (4, "\r")),
        ("ends in cr\r", (10, "\r")),
        ("crlf\r\nthen\x07", (10, "\x07")),
        ("esc\x1b then cr\r", (3, "\x1b")),
        ("cr\r then esc\x1b", (2, "\r")),
        ("\r\r\n", (0, "\r")),
    ],
)
def test_first_control_character_and_its_index(text, found):
    assert control_char(text) == found


def test_names_and_messages():
    assert control_char_name("\x00") == "U+0000 (NUL)"
    assert control_char_name("\x1b") == "U+001B (ESC)"
    assert control_char_name("\x7f") == "U+007F (DEL)"
    assert control_char_name("\x85") == "U+0085"
    with pytest.raises(SelfAlignError) as e:
        refuse_control_chars("Explain\x00 ATP.", "seeds.jsonl:2", "instruction")
    assert str(e.value) == (
        f"seeds.jsonl:2: control character U+0000 (NUL) in 'instruction' at character 8 ({ALLOWED})"
    )
    with pytest.raises(SelfAlignError) as e:  # a whole file's text: its line and column
        refuse_control_chars("one\ntwo\nab\x1bc\n", "notes.txt")
    assert str(e.value) == f"notes.txt:3: control character U+001B (ESC) at column 3 ({ALLOWED})"
    with pytest.raises(SelfAlignError, match=r"^notes.txt:1: .* U\+0007 \(BEL\) at column 1 "):
        refuse_control_chars("\x07", "notes.txt")


def test_a_long_clean_text_is_checked_quickly():
    import time

    text = "ATP synthase makes ATP.\r\n\t" * 400_000  # ~10 MB, CRLF and tabs
    start = time.perf_counter()
    assert control_char(text) is None
    assert control_char(text + "\x00") == (len(text), "\x00")
    assert time.perf_counter() - start < 2  # ~0.1 s; a per-character Python loop takes seconds


# --- seeds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, rest",
    [
        (
            '{"instruction": "Explain\\u0000 ATP."}',
            ":2: control character U+0000 (NUL) in 'instruction' at character 8",
        ),
        (
            '{"instruction": "Explain ATP.", "output": "\\u001b[31mred"}',
            ":2: control character U+001B (ESC) in 'instances[0].output' at character 1",
        ),
        (
            '{"instruction": "x", "instances": [{"input": "a\\u007f", "output": "b"}]}',
            ":2: control character U+007F (DEL) in 'instances[0].input' at character 2",
        ),
        ('{"id": "s\\u0000", "instruction": "x"}', ":2: control character U+0000 (NUL) in 'id'"),
        (
            '{"instruction": "old mac\\rline"}',
            ":2: control character U+000D (CR) in 'instruction' at character 8",
        ),
    ],
)
def test_seeds_jsonl_names_file_line_and_field(tmp_path, line, rest):
    path = tmp_path / "seeds.jsonl"
    path.write_text(SEED + line + "\n" + SEED.replace("s1", "s3"), encoding="utf-8")
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_seeds(path)


def test_seeds_raw_control_bytes_are_errors_too(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_bytes(SEED.encode() + b'{"instruction": "a\x1bb"}\n')  # raw in a string: not JSON
    with pytest.raises(SelfAlignError, match=_error(path, ":2: malformed JSON")):
        load_seeds(path)
    path.write_bytes(SEED.encode() + b'{"instruction": "a\x00b"}\n')
    with pytest.raises(SelfAlignError, match=_error(path, ":2: NUL bytes")):
        load_seeds(path)


def test_seeds_json_list_names_the_item(tmp_path):
    path = tmp_path / "seeds.json"
    items = [{"instruction": "Explain ATP."}, {"instruction": "Why?", "input": "bell\a"}]
    path.write_text(json.dumps(items), encoding="utf-8")
    rest = ": item 1: control character U+0007 (BEL) in 'instances[0].input' at character 5"
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_seeds(path)


def test_seeds_with_crlf_tabs_and_escaped_newlines_load(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_bytes(
        b'{"instruction": "Explain\\tATP.", "output": "one\\r\\ntwo\\nthree"}\r\n'
        + SEED.replace("s1", "s2").encode().replace(b"\n", b"\r\n")
    )
    seeds = load_seeds(path)
    assert seeds[0].instruction == "Explain\tATP."
    assert seeds[0].instances == (("", "one\r\ntwo\nthree"),)


# --- corpus --------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_bad_record", ["error", "skip"])
def test_corpus_jsonl_names_file_line_and_document(tmp_path, on_bad_record):
    path = tmp_path / "corpus.jsonl"
    path.write_text(DOC + '{"id": "d2", "text": "ATP\\u0000 synthase"}\n', encoding="utf-8")
    rest = ":2: document 'd2': control character U+0000 (NUL) in 'text' at character 4"
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_corpus(path, on_bad_record=on_bad_record)
    docs = iter_documents(path)
    assert next(docs) == ("d1", "ATP is made in mitochondria.")  # streams until the bad one
    with pytest.raises(SelfAlignError, match=_error(path, ":2: ")):
        next(docs)


def test_corpus_id_with_a_control_character(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "d\\u001f", "text": "x"}\n', encoding="utf-8")
    rest = ":1: control character U+001F (US) in 'id' at character 2"
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_corpus(path)


def test_corpus_txt_names_file_line_and_column(tmp_path):
    (tmp_path / "a.txt").write_text("fine\r\ntext\rold mac line\n", encoding="utf-8")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"line one\r\nline two\r\nline \x1b[0m three\r\n")
    rest = ":3: control character U+001B (ESC) at column 6"
    with pytest.raises(SelfAlignError, match=_error(bad, rest)):
        load_corpus(tmp_path)
    bad.write_text("form\x0cfeed", encoding="utf-8")  # pdftotext's page break: refused too
    with pytest.raises(SelfAlignError, match=_error(bad, ":1: control character U+000C (FF)")):
        load_corpus(tmp_path)
    bad.unlink()
    assert [p.text for p in load_corpus(tmp_path).passages] == ["fine text old mac line"]


def test_corpus_parquet_names_the_row(tmp_path):
    path = tmp_path / "c.parquet"
    table = pa.table({"id": ["p0", "p1", "p2"], "text": ["one", "two", "th\x00ree"]})
    pq.write_table(table, path, row_group_size=1)
    rest = ": row 2: document 'p2': control character U+0000 (NUL) in 'text' at character 3"
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_corpus(path)


# --- held-out QA read by the calibration check set -----------------------------------------------


def test_calibration_check_set_names_file_line_and_field(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "q1", "question": "What makes ATP?", "answer": "ATP synthase"}\n\n'
        '{"id": "q2", "question": "Why?", "answer": "  because\\u0008"}\n',
        encoding="utf-8",
    )
    rest = ":3: control character U+0008 (BS) in 'answer' at character 10"
    with pytest.raises(SelfAlignError, match=_error(path, rest)):
        load_check_set(path)


# --- the command line ----------------------------------------------------------------------------


QA = '{"id": "q1", "question": "What makes ATP?", "answer": "ATP synthase"}\n'


@pytest.mark.parametrize(
    "files, recipe, needle",
    [
        (
            {"seeds.jsonl": SEED + '{"instruction": "Explain\\u0000 ATP."}\n'},
            "",
            "{d}/seeds.jsonl:2: control character U+0000 (NUL) in 'instruction' at character 8",
        ),
        (
            {"docs/a.txt": "ATP is made\nin \x1b mitochondria.\n"},
            "corpus:\n  path: docs\n",
            "{d}/docs/a.txt:2: control character U+001B (ESC) at column 4",
        ),
        (
            {"qa.jsonl": QA + QA.replace("q1", "q2").replace("synthase", "synthase\\u007f")},
            "calibration:\n  check_set: qa.jsonl\n",
            "{d}/qa.jsonl:2: control character U+007F (DEL) in 'answer' at character 13",
        ),
    ],
    ids=["seeds-escaped-nul", "corpus-txt-esc", "check-set-del"],
)
def test_selfalign_run_refuses_control_characters(tmp_path, files, recipe, needle):
    """Through the real command: one `error:` line, exit 2, nothing written, no model loaded."""
    from tests.reliability.test_bad_inputs import Case, _build, _run, _snapshot
    from tests.reliability.test_bad_inputs import assert_clean_failure as clean_failure

    d = tmp_path.resolve() / "case"
    d.mkdir()
    case = Case((needle,), files={k: v.encode() for k, v in files.items()}, recipe=recipe)
    _build(d, case)
    before = _snapshot(d)
    proc = _run(d, case.args, tmp_path / "prefect-home")
    clean_failure(proc, [needle.replace("{d}", str(d))])
    assert _snapshot(d) == before
