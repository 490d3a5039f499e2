import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import generators.corpus as corpus_module
from generators.corpus import (
    CHUNK_WORDS,
    Passage,
    chunk_text,
    iter_documents,
    iter_passages,
    load_corpus,
    text_digest,
)
from generators.errors import SelfAlignError

BIOMED = Path(__file__).resolve().parents[2] / "data" / "biomed" / "corpus.jsonl"
WORDS = " ".join(f"w{i}" for i in range(10))  # "w0 w1 ... w9"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, size, overlap, chunks",
    [
        (WORDS, 4, 1, ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]),
        (WORDS + " w10", 4, 1, ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9", "w9 w10"]),
        (WORDS, 5, 0, ["w0 w1 w2 w3 w4", "w5 w6 w7 w8 w9"]),
        (WORDS, 10, 3, [WORDS]),
        ("  a\n\n b\tc \r\n", 3, 1, ["a b c"]),
        (" \n\t ", 3, 1, []),
    ],
)
def test_chunk_text_windows(text, size, overlap, chunks):
    assert chunk_text(text, size, overlap) == chunks


@pytest.mark.parametrize(
    "size, overlap, message",
    [(0, 0, "chunk_words must be at least 1"), (3, 3, "overlap_words must be"), (3, -1, "overlap")],
)
def test_bad_window_settings(tmp_path, size, overlap, message):
    with pytest.raises(SelfAlignError, match=message):
        chunk_text(WORDS, size, overlap)
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}])
    with pytest.raises(SelfAlignError, match=message):
        load_corpus(path, size, overlap)


def test_biomed_corpus_is_one_passage_per_document():
    corpus = load_corpus(BIOMED)
    rows = [json.loads(line) for line in BIOMED.read_text(encoding="utf-8").splitlines()]
    assert [p.id for p in corpus.passages] == [f"bio-{i:03d}" for i in range(1, 331)]
    assert corpus.passages == [Passage(r["id"], " ".join(r["text"].split()), r["id"]) for r in rows]
    assert corpus.dropped == []
    assert corpus.source == str(BIOMED)
    assert max(len(r["text"].split()) for r in rows) <= CHUNK_WORDS


def test_passage_ids_are_stable_and_chunked(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "long", "text": WORDS}, {"id": "short", "text": "x y"}]
    )
    first, again = load_corpus(path, 4, 1), load_corpus(path, 4, 1)
    assert first.passages == again.passages
    assert [(p.id, p.doc_id, p.text) for p in first.passages] == [
        ("long#0", "long", "w0 w1 w2 w3"),
        ("long#1", "long", "w3 w4 w5 w6"),
        ("long#2", "long", "w6 w7 w8 w9"),
        ("short", "short", "x y"),
    ]


DUPLICATES_AND_EMPTY = [
    {"id": "a", "text": WORDS},
    {"id": "b", "text": "w3  w4\nw5 w6"},  # same words as a's 2nd window
    {"id": "c", "text": "   "},
    {"id": "d", "text": "x y"},
    {"id": "e", "text": "x\ty"},
]


def test_duplicates_and_empty_texts_are_dropped_with_reasons(tmp_path):
    rows = DUPLICATES_AND_EMPTY
    corpus = load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), 4, 1, "skip")
    assert [p.id for p in corpus.passages] == ["a#0", "a#1", "a#2", "d"]
    assert corpus.dropped == [
        (Passage("b", "w3 w4 w5 w6", "b"), "duplicate_of_a#1"),
        (Passage("c", "   ", "c"), "empty_text"),
        (Passage("e", "x y", "e"), "duplicate_of_d"),
    ]


def test_parquet_streams_row_groups(tmp_path):
    path = tmp_path / "c.parquet"
    table = pa.table(
        {"id": ["p0", "p1", "p2"], "text": ["one", "two  words", "three"], "n": [1, 2, 3]}
    )
    pq.write_table(table, path, row_group_size=1)
    assert list(iter_documents(path)) == [("p0", "one"), ("p1", "two  words"), ("p2", "three")]
    assert [p.text for p in load_corpus(path).passages] == ["one", "two words", "three"]


def test_documents_stream_before_a_later_bad_row(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": "a", "text": "x"}\n{"id": \n', encoding="utf-8")
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a", None], "text": ["x", "y"]}), parquet, row_group_size=1)
    for path in (jsonl, parquet):
        docs = iter_documents(path)
        assert next(docs) == ("a", "x")
        with pytest.raises(SelfAlignError):
            next(docs)


def test_txt_folder_recursive_sorted_bom_crlf(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    (tmp_path / "sub" / "a.txt").write_text("inner", encoding="utf-8")
    (tmp_path / "a.txt").write_text("outer", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a txt", encoding="utf-8")
    assert list(iter_documents(tmp_path)) == [
        ("a", "outer"),
        ("b", "line one\nline two\n"),
        ("sub/a", "inner"),
    ]


def test_saved_dataset_folder(tmp_path):
    import datasets

    rows = {"id": ["d0", "d1"], "text": ["alpha beta", "gamma"], "extra": [1, 2]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    corpus = load_corpus(tmp_path / "ds")
    assert corpus.passages == [Passage("d0", "alpha beta", "d0"), Passage("d1", "gamma", "d1")]


def test_saved_dataset_without_columns(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"id": ["d0"], "body": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(SelfAlignError, match=r"ds: saved dataset needs 'id' and 'text' columns"):
        load_corpus(tmp_path / "ds")


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"id": "a", "text": "x"}\n{"id": \n', r":2: malformed JSON"),
        (b'{"id": "a", "text": "x"}\n["a", "x"]\n', r":2: expected a JSON object, got list"),
        (b'{"text": "x"}\n', r":1: 'id' must be a non-empty string, got null"),
        (b'{"id": 7, "text": "x"}\n', r":1: 'id' must be a non-empty string, got number"),
        (b'{"id": "a"}\n', r":1: document 'a': 'text' must be a string, got null"),
        (b'{"id": "a", "text": ["x"]}\n', r":1: document 'a': 'text' must be a string, got list"),
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "\xfe"}\n', r":2: not valid UTF-8"),
        (b"\n", r": empty corpus"),
        (b'{"id": "a", "text": " "}\n', r":1: document 'a': 'text' is empty"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    with pytest.raises(SelfAlignError, match=re.escape(str(path)) + message) as info:
        load_corpus(path)
    assert "\n" not in str(info.value)


def test_duplicate_document_ids_name_both_lines(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}],
    )
    where = re.escape(str(path))
    with pytest.raises(
        SelfAlignError, match=rf"^{where}:3: duplicate document id 'a' \(first at {where}:1\)$"
    ):
        load_corpus(path)


def test_bad_parquet(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), path)
    with pytest.raises(
        SelfAlignError,
        match=r"c.parquet: Parquet file needs 'id' and 'text' columns \(found: id, body\)",
    ):
        load_corpus(path)
    pq.write_table(pa.table({"id": ["a", None], "text": ["x", "y"]}), path, row_group_size=1)
    with pytest.raises(SelfAlignError, match=r"c.parquet: row 1: 'id' must be a non-empty string"):
        load_corpus(path)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(SelfAlignError, match=r"c.parquet: not a readable Parquet file"):
        load_corpus(path)


def test_bad_txt_files_are_named(tmp_path):
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    bad = tmp_path / "z.txt"
    bad.write_bytes(b"line one\nbad \xff byte\n")
    with pytest.raises(SelfAlignError, match=re.escape(str(bad)) + r":2: not valid UTF-8"):
        load_corpus(tmp_path)
    bad.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(SelfAlignError, match=re.escape(str(bad)) + r": binary file \(NUL bytes\)"):
        load_corpus(tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.jsonl", r"missing.jsonl: no such file or folder"),
        (lambda d: d, r": no .txt files, and not a datasets.save_to_disk folder"),
        (lambda d: d / "c.csv", r"c.csv: unknown corpus format '.csv'"),
    ],
)
def test_bad_paths(tmp_path, make, message):
    (tmp_path / "c.csv").write_text("id,text\na,x\n", encoding="utf-8")
    with pytest.raises(SelfAlignError, match=message):
        iter_documents(make(tmp_path))  # raised before the first document is read


def test_saved_dataset_dict_asks_for_a_split(tmp_path):
    import datasets

    split = datasets.Dataset.from_dict({"id": ["d0"], "text": ["x"]})
    datasets.DatasetDict({"train": split}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(SelfAlignError, match=r"dd: a saved DatasetDict; point at one split"):
        iter_documents(tmp_path / "dd")
    assert list(iter_documents(tmp_path / "dd" / "train")) == [("d0", "x")]


def test_iter_passages_streams_what_load_corpus_keeps_and_drops(tmp_path):
    rows = DUPLICATES_AND_EMPTY
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    streamed = list(iter_passages(path, 4, 1, "skip"))
    assert [(p.id, reason) for p, reason in streamed] == [
        ("a#0", None),
        ("a#1", None),
        ("a#2", None),
        ("b", "duplicate_of_a#1"),
        ("c", "empty_text"),
        ("d", None),
        ("e", "duplicate_of_d"),
    ]
    corpus = load_corpus(path, 4, 1, "skip")
    assert [p for p, reason in streamed if reason is None] == corpus.passages
    assert [(p, reason) for p, reason in streamed if reason is not None] == corpus.dropped


def test_dedup_holds_a_digest_not_the_text(tmp_path, monkeypatch):
    assert 0 <= text_digest("x y") < 2**128 and text_digest("x y") != text_digest("x z")
    # every text gets the same digest: the second passage now counts as a copy of the first
    monkeypatch.setattr(corpus_module, "text_digest", lambda text: 0)
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    assert [(p.id, reason) for p, reason in iter_passages(path)] == [
        ("a", None),
        ("b", "duplicate_of_a"),
    ]


def test_iter_passages_checks_path_and_window_before_streaming(tmp_path):
    with pytest.raises(SelfAlignError, match="no such file or folder"):
        iter_passages(tmp_path / "missing.jsonl")
    with pytest.raises(SelfAlignError, match="overlap_words must be"):
        iter_passages(write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}]), 3, 3)


def test_parquet_reading_does_not_buffer_the_file(tmp_path):
    path = tmp_path / "c.parquet"
    texts = [os.urandom(300).hex() for _ in range(10_000)]  # 6 MB that do not compress
    ids = [f"d{i}" for i in range(len(texts))]
    pq.write_table(pa.table({"id": ids, "text": texts}), path, row_group_size=250)
    held = 0
    for _ in iter_documents(path):
        held = max(held, pa.total_allocated_bytes())
    assert held < 3_000_000  # a row group or two; pyarrow's pre_buffer held all 7 MB


def test_a_document_without_text_is_an_error_naming_its_line_unless_skipped(tmp_path):
    rows = [{"id": "a", "text": "w1 w2"}, {"id": "b", "text": " \n "}, {"id": "c"}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(SelfAlignError, match=r"c\.jsonl:2: document 'b': 'text' is empty"):
        load_corpus(path)
    path = write_jsonl(tmp_path / "d.jsonl", [rows[0], rows[2]])
    with pytest.raises(SelfAlignError, match=r"d\.jsonl:2: document 'c': 'text' must be a string"):
        load_corpus(path)
    corpus = load_corpus(write_jsonl(tmp_path / "e.jsonl", rows), on_bad_record="skip")
    assert [p.id for p in corpus.passages] == ["a"]
    assert [(p.id, reason) for p, reason in corpus.dropped] == [
        ("b", "empty_text"),
        ("c", "empty_text"),
    ]
