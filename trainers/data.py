"""What the trainers read: exported datasets and held-out QA sets, checked row by row.

    export/train.jsonl   rows with `messages` (user, assistant)      -> load_messages
    export/dpo.jsonl     rows with `prompt`, `chosen`, `rejected`    -> load_preferences
    held-out QA JSONL    `question` + `answer` (data/biomed/heldout_qa.jsonl), or Self-Instruct
                         tasks with `instruction` + `instances[0]` (user_oriented_instructions)
                                                                     -> load_qa

trainers/ import nothing from flows/, generators/ or filters/: a fine-tune job needs only these
files. Bad input raises `DataError`, one line naming the file and line; for held-out QA that
includes a control character other than tab and newline (a JSON escape such as "\\u0000" too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Unicode's control characters but tab, LF and the CR of a CRLF. The one rule and message:
# generators/io.py takes its names and message from here (trainers/ import nothing).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
C0_NAMES = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()


class DataError(ValueError):
    """A dataset the trainers cannot use; the message names the file and line."""


@dataclass(frozen=True)
class QA:
    """A held-out question (the whole user turn) and its gold answer."""

    id: str
    prompt: str
    answer: str


def control_char_name(char: str) -> str:
    r"""`control_char_name("\x1b")` -> 'U+001B (ESC)'; C1 characters have only their code."""
    code = ord(char)
    name = C0_NAMES[code] if code < 32 else "DEL" if code == 0x7F else ""
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def control_char_message(char: str, at: str) -> str:
    """'control character U+0000 (NUL) <at> (only tab and newline are allowed)'."""
    return f"control character {control_char_name(char)} {at} (only tab and newline are allowed)"


def control_char_problem(text: str, field: str) -> str | None:
    r"""The message for a control character in `text` other than tab, LF and a CRLF's CR, or
    None: ("a\x00", "answer") -> "control character U+0000 (NUL) in 'answer' at character 2 ..."."""
    found = CONTROL_CHARS.search(text)
    if found is None:
        return None
    return control_char_message(found.group(), f"in {field!r} at character {found.start() + 1}")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; blank lines are skipped."""
    return [row for _, row in numbered_rows(path)]


def numbered_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: expected a JSON object")
            rows.append((n, row))
    return rows


def _check_turns(path: Path, n: int, key: str, turns: Any) -> None:
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{path}:{n}: '{key}' must be a non-empty list of messages")
    for turn in turns:
        if not (
            isinstance(turn, dict)
            and isinstance(turn.get("role"), str)
            and isinstance(turn.get("content"), str)
        ):
            raise DataError(f"{path}:{n}: '{key}' holds a message without role/content strings")


def load_messages(path: str | Path) -> list[list[dict[str, str]]]:
    """The `messages` of every row of an exported train.jsonl."""
    path, out = Path(path), []
    for n, row in enumerate(read_rows(path), 1):
        _check_turns(path, n, "messages", row.get("messages"))
        out.append([{"role": t["role"], "content": t["content"]} for t in row["messages"]])
    if not out:
        raise DataError(f"{path}: no training rows")
    return out


def load_preferences(path: str | Path) -> list[dict[str, list[dict[str, str]]]]:
    """TRL conversational preference rows (prompt, chosen, rejected) of an exported dpo.jsonl."""
    path, out = Path(path), []
    for n, row in enumerate(read_rows(path), 1):
        for key in ("prompt", "chosen", "rejected"):
            _check_turns(path, n, key, row.get(key))
        out.append({k: row[k] for k in ("prompt", "chosen", "rejected")})
    return out


def _qa_from_row(path: Path, n: int, row: dict[str, Any]) -> QA:
    ident = str(row.get("id", f"line-{n}"))
    if "question" in row:
        question, answer = row.get("question"), row.get("answer")
        fields = {"id": ident, "question": question, "answer": answer}
    elif "instruction" in row:
        instances = row.get("instances") or [{}]
        first = instances[0] if isinstance(instances[0], dict) else {}
        extra = first.get("input") or ""
        question = f"{row['instruction']}\n\n{extra}" if str(extra).strip() else row["instruction"]
        answer = first.get("output")
        fields = {
            "id": ident,
            "instruction": row["instruction"],
            "instances[0].input": extra,
            "instances[0].output": answer,
        }
    else:
        raise DataError(f"{path}:{n}: expected 'question'/'answer' or 'instruction'/'instances'")
    for field, value in fields.items():
        if isinstance(value, str) and (problem := control_char_problem(value, field)):
            raise DataError(f"{path}:{n}: {problem}")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{path}:{n}: empty question")
    if not isinstance(answer, str) or not answer.strip():
        raise DataError(f"{path}:{n}: empty answer")
    return QA(ident, question.strip(), answer.strip())


def load_qa(path: str | Path, limit: int | None = None) -> list[QA]:
    """Held-out (question, answer) pairs, the first `limit` of the file (all when None)."""
    path = Path(path)
    qas = [_qa_from_row(path, n, row) for n, row in numbered_rows(path)]
    if not qas:
        raise DataError(f"{path}: no QA rows")
    return qas if limit is None else qas[:limit]
