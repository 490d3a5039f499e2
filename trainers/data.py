"""What the trainers read: exported datasets and held-out QA sets, checked row by row.

    export/train.jsonl   rows with `messages` (user, assistant)      -> load_messages
    export/dpo.jsonl     rows with `prompt`, `chosen`, `rejected`    -> load_preferences
    held-out QA JSONL    `question` + `answer` (data/biomed/heldout_qa.jsonl), or Self-Instruct
                         tasks with `instruction` + `instances[0]` (user_oriented_instructions)
                                                                     -> load_qa

trainers/ import nothing from flows/, generators/ or filters/: a fine-tune job needs only these
files. Bad input raises `DataError`, one line naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """A dataset the trainers cannot use; the message names the file and line."""


@dataclass(frozen=True)
class QA:
    """A held-out question (the whole user turn) and its gold answer."""

    id: str
    prompt: str
    answer: str


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; blank lines are skipped."""
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
            rows.append(row)
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
    elif "instruction" in row:
        instances = row.get("instances") or [{}]
        first = instances[0] if isinstance(instances[0], dict) else {}
        extra = first.get("input") or ""
        question = f"{row['instruction']}\n\n{extra}" if str(extra).strip() else row["instruction"]
        answer = first.get("output")
    else:
        raise DataError(f"{path}:{n}: expected 'question'/'answer' or 'instruction'/'instances'")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{path}:{n}: empty question")
    if not isinstance(answer, str) or not answer.strip():
        raise DataError(f"{path}:{n}: empty answer")
    return QA(ident, question.strip(), answer.strip())


def load_qa(path: str | Path, limit: int | None = None) -> list[QA]:
    """Held-out (question, answer) pairs, the first `limit` of the file (all when None)."""
    path = Path(path)
    rows = read_rows(path)
    qas = [_qa_from_row(path, n, row) for n, row in enumerate(rows, 1)]
    if not qas:
        raise DataError(f"{path}: no QA rows")
    return qas if limit is None else qas[:limit]
