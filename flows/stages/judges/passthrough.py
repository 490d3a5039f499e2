"""What a judge's stage does when its calibrated verdict is not to be used."""

from __future__ import annotations

from dataclasses import replace

from flows.stages.base import Outcome, log, one_step
from generators.records import Record


def passed_through(stage: str, key: str, reason: str, records: list[Record]) -> Outcome:
    """A skipped judge's stage: every record kept, meta[key] = {"skipped": reason}."""
    kept = [replace(r, meta={**r.meta, key: {"skipped": reason}}) for r in records]
    log().warning("%s: not filtering, the judge is %s", stage, reason)
    return one_step(stage, len(records), kept, [])


def first(replies: list[list[str]]) -> list[str]:
    """The one completion of each conversation: [["a"], ["b"]] -> ["a", "b"]."""
    return [samples[0] for samples in replies]
