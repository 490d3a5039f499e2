"""Small file helpers: atomic writes, UTF-8 decoding and JSONL reading that name `file:line`.

Atomic means: write to a temp file in the same folder, fsync, then `os.replace`. A crash leaves the
old file or none, never half a file.
"""

from __future__ import annotations

import codecs
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generators.errors import SelfAlignError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines atomically; returns the number of rows."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def json_type(value: Any) -> str:
    """JSON name of a parsed value's type: `json_type({})` -> 'object'."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def decode_utf8(raw: bytes, path: str | Path, first_line: int = 1) -> str:
    """Decode UTF-8 text that starts at `first_line` of `path` (a BOM on line 1 is dropped).

    Bad bytes are an error naming `path:line`.
    """
    if first_line == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[: e.start].count(b"\n")
        raise SelfAlignError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None


def iter_jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, object) from a JSONL file; blank lines skipped, errors name the line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = decode_utf8(raw, path, first_line=lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                hint = (
                    "; a .jsonl file holds one object per line" if line.lstrip()[:1] == "[" else ""
                )
                raise SelfAlignError(f"{path}:{lineno}: malformed JSON ({e.msg}){hint}") from None
            if not isinstance(obj, dict):
                raise SelfAlignError(
                    f"{path}:{lineno}: expected a JSON object, got {json_type(obj)}"
                )
            yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file of objects; any bad line is an error naming `file:line`."""
    path = Path(path)
    if not path.is_file():
        raise SelfAlignError(f"{path}: no such file")
    rows = [obj for _, obj in iter_jsonl_objects(path)]
    if not rows:
        raise SelfAlignError(f"{path}: empty file")
    return rows
