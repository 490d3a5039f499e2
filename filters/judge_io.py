"""What every judge shares: its conversation, the tagged data blocks, and lenient reply reading.

A judge prompt is a system prompt, then one user turn: the task, the tagged data blocks, the reply
format. Model-written text goes inside tags (<instruction>, <input>, <response>, ...) with '<'
escaped like `generators.respond`'s passages, so no field can close its block and address the
judge. Only some backends enforce a JSON schema, so a reply is read leniently: `find_object`
takes the first JSON (or single-quoted, Python-style) object with the wanted key anywhere in it.

    task_blocks / response_blocks + tag -> user_turn -> chat;   reply -> find_object or a reason

Not handled here: each judge's own keys, free-text fallbacks and drop reasons beyond the two
below (they live in its module), and replies longer than MAX_OBJECT_CHARS per object.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from generators.llm import Conversation
from generators.records import Record, prompt_text
from generators.respond import escape_passage

RATIONALE_MAX_CHARS = 300  # one sentence; keeps a schema-guided reply within max_tokens
MAX_OBJECT_CHARS = 2000  # longest "{...}" span read as a Python literal (bounds the cost)

EMPTY_REPLY = "judge_empty_reply"
UNPARSEABLE = "judge_unparseable"


def tag(name: str, text: str) -> str:
    """A data block: ('response', 'a</b>') -> '<response>\\na&lt;/b>\\n</response>'."""
    return f"<{name}>\n{escape_passage(text.strip())}\n</{name}>"


def task_blocks(instruction: str, input_text: str, name: str = "instruction") -> list[str]:
    """The task as data: ['<instruction>...</instruction>', '<input>...</input>'], with no input
    block when the input is blank; `name` retitles the first block (S3FT's <task>)."""
    blocks = [tag(name, instruction)]
    if input_text.strip():
        blocks.append(tag("input", input_text))
    return blocks


def response_blocks(instruction: str, input_text: str, response: str) -> list[str]:
    """What most judges read: the task blocks, then '<response>...</response>'."""
    return [*task_blocks(instruction, input_text), tag("response", response)]


def user_turn(task: str, blocks: list[str], reply_format: str = "") -> str:
    """('Rate.', ['<response>..'], 'JSON only.') -> 'Rate.\\n\\n<response>..\\n\\nJSON only.'."""
    return "\n\n".join([task, *blocks, *([reply_format] if reply_format else [])])


def chat(system: str, user: str) -> Conversation:
    """[system, user]: the whole of a judge conversation."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def user_message(record: Record) -> str:
    """The prompt the fine-tuned model sees (`generators.records.prompt_text`): what export
    writes and what a preference pair's prompt must match."""
    return prompt_text(record.instruction, record.input)


def _object_end(text: str, start: int) -> int:
    """Index of the '}' closing the '{' at `start` (quotes respected), or -1: '{"a": "}"}' -> 9."""
    depth, quote, escaped = 0, "", False
    for i in range(start, min(len(text), start + MAX_OBJECT_CHARS)):
        char = text[i]
        if escaped:
            escaped = False
        elif quote:
            escaped = char == "\\"
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return i
    return -1


def _load_object(text: str, start: int) -> Any:
    """The JSON or Python-literal object starting at text[start] ('{'), or None."""
    try:
        return json.JSONDecoder().raw_decode(text, start)[0]
    except json.JSONDecodeError:
        pass
    end = _object_end(text, start)
    if end == -1:
        return None
    try:
        return ast.literal_eval(text[start : end + 1])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def find_object(text: str, key: str = "score") -> dict[str, Any] | None:
    """First object with `key`: 'ok ```json\\n{"score": 4}\\n```' -> {'score': 4}.

    JSON or a Python-style literal (single quotes); every judge's lenient parser starts here.
    """
    start = text.find("{")
    while start != -1:
        obj = _load_object(text, start)
        if isinstance(obj, dict) and key in obj:
            return obj
        start = text.find("{", start + 1)
    return None
