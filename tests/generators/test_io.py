import pytest

from generators.errors import SelfAlignError
from generators.io import atomic_path, read_jsonl, write_jsonl_atomic


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "train.jsonl"
    write_jsonl_atomic(target, [{"a": 1}])
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"a": 1}\n{"a": \n', r"x.jsonl:2: malformed JSON"),
        (b'{"a": 1}\n[1, 2]\n', r"x.jsonl:2: expected a JSON object"),
        (b'{"a": "\xff"}\n', r"x.jsonl:1: not valid UTF-8"),
        (b"\n\n", r"x.jsonl: empty file"),
        ('{"a": 1}\n'.encode("utf-16"), r"x.jsonl:1: UTF-16 text \(byte-order mark\)"),
        ('{"a": 1}\n'.encode("utf-16-le"), r"x.jsonl:1: NUL bytes"),
        (b'{"a": 1}\n{"a": "\x00"}\n', r"x.jsonl:2: NUL bytes"),
    ],
)
def test_read_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(SelfAlignError, match=message):
        read_jsonl(path)


def test_read_jsonl_accepts_bom_and_crlf(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


def test_missing_file(tmp_path):
    with pytest.raises(SelfAlignError, match="no such file"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_a_line_past_the_limit_is_an_error_naming_it(tmp_path, monkeypatch):
    import generators.io

    monkeypatch.setattr(generators.io, "MAX_LINE_BYTES", 16)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"a": "0123456789"}\n{"a": 2}\n')
    with pytest.raises(SelfAlignError, match=r"x.jsonl:2: line longer than"):
        read_jsonl(path)
    path.write_bytes(b'{"a": "0123456"}\r\n{"a": 2}\n')  # 16 bytes + CRLF: at the limit
    assert read_jsonl(path) == [{"a": "0123456"}, {"a": 2}]
