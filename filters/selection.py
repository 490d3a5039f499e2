"""Utility-diversity selection to a budget (Deita: Liu et al. 2024, "What Makes Good Data for
Alignment?"), offline, after the judges.

Records are visited by utility, highest first (ties: input order). A record is selected when its
largest cosine to the records already selected is <= tau, until `budget` are selected; the rest are
dropped with f"selection_cos_{cosine:.2f}_vs_{selected_id}" (too close to a selected record) or
"selection_over_budget" (the budget was full before its turn). Every record gets
meta["selection"] = {"utility": 4.0, "rank": 0, "max_cosine": 0.3125, "nearest": "ab12..."}, where
rank 0 is the highest utility and max_cosine / nearest are None for the first pick and for records
over budget (they are never compared). Kept and dropped records come back in input order.

Utilities come from the rating judge (`rating_utilities`) or from IFD, instruction-following
difficulty (`ifd_utilities`, scores computed by the flow with the model).

Not handled here: embedding the texts (callers pass vectors; zero vectors are similar to nothing),
Deita's complexity/quality scorers and their product score, approximate search (each candidate is
compared with every selected vector: O(n * budget * dim), fine to ~1e5 records x 1e4 budget; past
that, use a faiss index as dedup does) and online selection during training (trainers/uds.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from filters.dedup import unit_rows
from generators.records import Record

OVER_BUDGET = "selection_over_budget"
# Li et al. 2024 ("From Quantity to Quality", Cherry LLM): IFD > 1 means the answer is *more*
# likely without its instruction, i.e. the instruction does not fit the answer; they discard such
# pairs. Here they are ranked last (utility 0.0, the lowest an IFD can be) rather than dropped.
IFD_MAX = 1.0


def _number(value: Any) -> float | None:
    """A finite float from an int/float (not a bool): 4 -> 4.0, True -> None, nan -> None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def rating_utilities(records: list[Record]) -> list[float]:
    """The rating judge's score per record: meta["rating"]["score"], 0.0 if missing or unparsed.

    {"rating": {"score": 4, ...}} -> 4.0; {"rating": {"error": "judge_unparseable"}} -> 0.0.
    """
    utilities = []
    for record in records:
        rating = record.meta.get("rating")
        score = _number(rating.get("score")) if isinstance(rating, dict) else None
        utilities.append(0.0 if score is None else score)
    return utilities


def ifd_utilities(records: list[Record]) -> list[float]:
    """IFD per record from meta["ifd"]; missing, non-finite or > IFD_MAX -> 0.0 (ranked last).

    {"ifd": 0.83} -> 0.83; {"ifd": 1.4} -> 0.0; {"ifd": nan} -> 0.0.
    """
    utilities = []
    for record in records:
        ifd = _number(record.meta.get("ifd"))
        utilities.append(0.0 if ifd is None or ifd > IFD_MAX else ifd)
    return utilities


def _check_args(
    records: list[Record], utilities: list[float], vectors: np.ndarray, budget: int, tau: float
) -> None:
    if budget < 1:
        raise ValueError(f"select_diverse: budget must be >= 1, got {budget}")
    if not 0 < tau <= 1:
        raise ValueError(f"select_diverse: tau must be in (0, 1], got {tau}")
    if len(utilities) != len(records):
        raise ValueError(
            f"select_diverse: {len(utilities)} utilities for {len(records)} records; want one each"
        )
    if vectors.ndim != 2 or len(vectors) != len(records):
        raise ValueError(
            f"select_diverse: vectors of shape {vectors.shape} for {len(records)} records; "
            "want (n, dim)"
        )
    if not all(math.isfinite(u) for u in utilities):
        raise ValueError("select_diverse: utilities must be finite numbers")


def _nearest(vector: np.ndarray, selected: np.ndarray) -> tuple[np.float32 | None, int]:
    """(cosine, row) of the `selected` unit row closest to `vector`; (None, -1) if none yet."""
    if not len(selected):
        return None, -1
    cosines = selected @ vector
    row = int(np.argmax(cosines))  # ties: the earliest selected
    # rounding can put a duplicate's cosine a hair above 1; tau = 1 must still keep duplicates
    return min(cosines[row], np.float32(1.0)), row


def _greedy(
    utilities: list[float], unit: np.ndarray, budget: int, tau: float
) -> tuple[list[int], dict[int, tuple[int, np.float32 | None, int]]]:
    """(selected positions, {position: (rank, max cosine, nearest selected position)}).

    Cosines are float32, the vectors' precision; a cosine equal to tau is kept.
    """
    order = sorted(range(len(utilities)), key=lambda i: -utilities[i])  # stable: ties by input
    chosen = np.zeros((min(budget, len(order)), unit.shape[1]), dtype=np.float32)
    picked: list[int] = []
    seen: dict[int, tuple[int, np.float32 | None, int]] = {}
    for rank, i in enumerate(order):
        if len(picked) == budget:
            seen[i] = (rank, None, -1)
            continue
        cosine, row = _nearest(unit[i], chosen[: len(picked)])
        seen[i] = (rank, cosine, picked[row] if row >= 0 else -1)
        if cosine is None or cosine <= np.float32(tau):
            chosen[len(picked)] = unit[i]
            picked.append(i)
    return picked, seen


def select_diverse(
    records: list[Record],
    utilities: list[float],
    vectors: np.ndarray,
    budget: int,
    tau: float,
    stage: str = "select",
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): at most `budget` high-utility records, none with cosine > tau to another.

    `vectors` has one row per record (normalized here). Reasons and meta: see the module docstring.
    """
    vectors = np.asarray(vectors)
    _check_args(records, utilities, vectors, budget, tau)
    if not records:
        return [], []
    picked, seen = _greedy(utilities, unit_rows(vectors), budget, tau)
    selected = set(picked)
    kept: list[Record] = []
    dropped: list[Record] = []
    for i, record in enumerate(records):
        rank, cosine, nearest = seen[i]
        info = {
            "utility": float(utilities[i]),
            "rank": rank,
            "max_cosine": None if cosine is None else round(float(cosine), 4),
            "nearest": records[nearest].id if nearest >= 0 else None,
        }
        record = record.with_meta(selection=info)
        if i in selected:
            kept.append(record)
        elif cosine is None:
            dropped.append(record.drop(stage, OVER_BUDGET))
        else:
            reason = f"selection_cos_{float(cosine):.2f}_vs_{info['nearest']}"
            dropped.append(record.drop(stage, reason))
    return kept, dropped
