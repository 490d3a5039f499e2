"""Self-Instruct's heuristic instruction filters, plus truncated items and exact duplicates.

Self-Instruct (Wang et al., 2023, §2.2, and its `bootstrap_instructions.py`) drops generated
instructions that are too short or too long, mention things a text-only model can't handle
(images, files, audio, ...), start with "Write a program", start with punctuation, or start with a
non-English character. Here too: items the model was cut off in (`meta["truncated"]`, set when
parsing) and exact duplicates within one batch (case- and whitespace-insensitive).

Not handled here: near-duplicates and overlap with seeds or earlier rounds (the novelty and dedup
filters), and language detection beyond "the first character is ASCII".
"""

from __future__ import annotations

import re
import string

from filters.base import split
from generators.records import Record

# Self-Instruct's length bounds in words. Its code drops <= 3 words; we drop < 3 and keep exactly 3,
# since short imperatives like "Define homeostasis briefly." are fine tasks.
MIN_WORDS = 3
MAX_WORDS = 150
# Tasks a text-only model can't do: Self-Instruct's keyword list (image .. go to), as extended by
# Stanford Alpaca (video .. diagram). Matched as whole words, case-insensitively ("profile" does not
# match "file").
BLOCKED_WORDS = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)
# Self-Instruct: "Write a program" tasks are usually unanswerable without running code.
BLOCKED_PREFIX = "write a program"

_BLOCKED_PATTERNS = tuple(
    (word, re.compile(r"\b" + r"\s+".join(map(re.escape, word.split())) + r"\b", re.IGNORECASE))
    for word in BLOCKED_WORDS
)


def blocked_word(instruction: str) -> str | None:
    """The first blocked word in `instruction`: 'Draw a cell' -> 'draw'; 'A profile' -> None."""
    for word, pattern in _BLOCKED_PATTERNS:
        if pattern.search(instruction):
            return word
    return None


def instruction_reason(instruction: str, truncated: bool = False) -> str | None:
    """None to keep `instruction`, else why to drop it: 'Define it' -> 'too_short'.

    Truncation is checked first: a cut-off item is better explained by the cut than by its length.
    """
    text = instruction.strip()
    words = len(text.split())
    if truncated:
        return "truncated"
    if words < MIN_WORDS:
        return "too_short"
    if words > MAX_WORDS:
        return "too_long"
    word = blocked_word(text)
    if word is not None:
        return "blocked_word_" + word.replace(" ", "_")
    if text.lower().startswith(BLOCKED_PREFIX):
        return "starts_with_write_a_program"
    if text[0] in string.punctuation:
        return "starts_with_punctuation"
    if not text[0].isascii():
        return "starts_non_ascii"
    return None


def normalize(text: str) -> str:
    """Key for exact-duplicate checks: '  Define  ATP. ' -> 'define atp.'."""
    return " ".join(text.split()).casefold()


def heuristic_filter(
    records: list[Record], stage: str = "heuristics"
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): `instruction_reason` per record, then exact duplicates within `records`.

    A duplicate (same normalized instruction and input as an earlier *kept* record) is dropped as
    f"duplicate_of_{first_id}", so a dropped first copy never takes a good second copy with it.
    """
    first_ids: dict[tuple[str, str], str] = {}

    def verdict(record: Record) -> str | None:
        reason = instruction_reason(record.instruction, record.meta.get("truncated", False))
        if reason is not None:
            return reason
        key = (normalize(record.instruction), normalize(record.input))
        if key in first_ids:
            return f"duplicate_of_{first_ids[key]}"
        first_ids[key] = record.id
        return None

    return split(records, stage, verdict)
