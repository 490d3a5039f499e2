"""The filter contract: every record is kept or dropped with a snake_case reason.

A verdict function returns None to keep a record, or the reason to drop it
(`lambda r: "too_short" if len(r.instruction) < 10 else None`). Dropped records keep their lineage
and gain `meta.dropped_by` / `meta.drop_reason`, so nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from generators.records import Record

Verdict = Callable[[Record], str | None]


def split(
    records: Iterable[Record], stage: str, verdict: Verdict
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped) after applying `verdict` to each record in order."""
    kept: list[Record] = []
    dropped: list[Record] = []
    for record in records:
        reason = verdict(record)
        if reason is None:
            kept.append(record)
        else:
            dropped.append(record.drop(stage, reason))
    return kept, dropped
