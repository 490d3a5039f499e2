"""Records: one instruction–response example and its lineage.

A record's id is a content hash of (instruction, input), so the same task gets the same id in every
run and a resumed run neither loses nor duplicates it. Everything the pipeline learns about a record
(demo seeds, retrieved passages, scores, verdicts, why it was dropped, model id, round) goes in
`meta`, which travels with the record into kept and rejected files alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

ID_HEX_CHARS = 16  # 64 bits of sha256: collisions are negligible below billions of records


def json_digest(value: Any) -> str:
    """sha256 hex of `value`'s JSON, keys sorted: the same data always gives the same key."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parts_digest(parts: Iterable[str]) -> str:
    """sha256 hex of length-prefixed parts, so ("ab", "c") and ("a", "bc") differ; streams."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def content_id(*parts: str) -> str:
    """Stable id from text parts: `content_id("a", "b")` -> '9c0f...' (16 hex chars)."""
    return parts_digest(parts)[:ID_HEX_CHARS]


def prompt_text(instruction: str, input_text: str = "") -> str:
    """The one prompt format of a training row, of S3FT's own answer and of IFD's scoring: the
    instruction, then the input after a blank line when there is one; no system prompt, no
    label. ('Dose?', 'Adult.') -> 'Dose?\n\nAdult.'."""
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


@dataclass(frozen=True)
class Record:
    """One example. `passages` are retrieved passage ids; `meta` is the lineage."""

    instruction: str
    input: str = ""
    output: str = ""
    passages: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.instruction, self.input))
        object.__setattr__(self, "passages", tuple(self.passages))

    @property
    def dropped(self) -> bool:
        return "dropped_by" in self.meta

    def with_meta(self, **updates: Any) -> Record:
        """A copy with `meta` updated (records are immutable so stages can't alias each other)."""
        return replace(self, meta={**self.meta, **updates})

    def drop(self, stage: str, reason: str) -> Record:
        """A copy marked as dropped by `stage` for `reason` (snake_case, e.g. 'too_short')."""
        return self.with_meta(dropped_by=stage, drop_reason=reason)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passages"] = list(self.passages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        known = {
            k: d[k] for k in ("id", "instruction", "input", "output", "passages", "meta") if k in d
        }
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)
