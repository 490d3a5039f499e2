"""Small file helpers: atomic writes, UTF-8 decoding and JSONL reading that name `file:line`.

Atomic means: write to a temp file in the same folder, fsync, then `os.replace`. A crash leaves the
old file or none, never half a file. Text that is not UTF-8 (UTF-16, binary data with NUL bytes)
and JSONL lines longer than MAX_LINE_BYTES are errors naming `file:line`. `refuse_control_chars`
is the loaders' check of the text they pass on to a model.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generators.errors import SelfAlignError
from trainers.data import control_char_message

# One JSONL line (a seed, a document, a QA pair) past 16 MiB is a wrong file, not data: a long book
# is 1-5 MB of text. Reading stops there instead of pulling a whole huge line into memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32's BOMs start with these too
# trainers/data.py's rule (its names and message are used below), searched in two parts for
# speed on large corpora: a class alone is ~3x faster, and a lone CR is looked for apart.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LONE_CR = re.compile(r"\r(?!\n)")


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

    Bad bytes are an error naming `path:line`; so are a UTF-16 BOM and NUL bytes (binary data or
    UTF-16 text), which would otherwise pass as odd UTF-8 or fail as "malformed JSON".
    """
    if first_line == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if first_line == 1 and raw.startswith(UTF16_BOMS):
        raise SelfAlignError(f"{path}:1: UTF-16 text (byte-order mark), expected UTF-8")
    if b"\x00" in raw:
        line = first_line + raw[: raw.index(b"\x00")].count(b"\n")
        raise SelfAlignError(f"{path}:{line}: NUL bytes (binary data or UTF-16?), expected UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[: e.start].count(b"\n")
        raise SelfAlignError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None


def control_char(text: str) -> tuple[int, str] | None:
    r"""Index and character of the first control character other than tab, LF and a CRLF's CR:
    `control_char("a\tb\x00")` -> (3, '\x00'); None when there is none."""
    found = CONTROL_CHARS.search(text)
    if "\r" in text and (cr := LONE_CR.search(text, 0, found.start() if found else len(text))):
        found = cr
    return None if found is None else (found.start(), found.group())


def refuse_control_chars(text: str, where: str, field: str | None = None) -> str:
    r"""`text`, or an error at its first control character (see `control_char`), a JSON escape
    such as "\u0000" included: `where` is `file:line` (or `file: row 3`), `field` the key holding
    `text`. With no `field`, `text` is a whole file's and `where` that file: the error names the
    character's line and column (`notes.txt:3: control character U+001B (ESC) at column 5 ...`)."""
    found = control_char(text)
    if found is None:
        return text
    index, char = found
    if field is None:
        line = text.count("\n", 0, index) + 1
        column = index - text.rfind("\n", 0, index)  # 1-based: rfind is -1 on the first line
        where, at = f"{where}:{line}", f"at column {column}"
    else:
        at = f"in {field!r} at character {index + 1}"
    raise SelfAlignError(f"{where}: {control_char_message(char, at)}")


def iter_jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, object) from a JSONL file; blank lines skipped, errors name the line."""
    with open(path, "rb") as f:
        # + 2: room for the line's CRLF, so a longer line is seen as one, not as two
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 2), b""), 1):
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise SelfAlignError(
                    f"{path}:{lineno}: line longer than {MAX_LINE_BYTES // 2**20} MiB "
                    "(one JSON object per line expected)"
                )
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
