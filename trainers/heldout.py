"""The held-out domain set's dev/test split, and bootstrap intervals over its questions.

    split       each question goes to `test` or `dev` by a seeded hash of its id alone, so the
                split never depends on file order and adding a question moves no other one;
                dev is for anything tuned (judge calibration, the promote rule), test is only
                reported
    intervals   percentile bootstrap over questions (Efron & Tibshirani): resample questions with
                replacement, recompute the statistic, take the 2.5th and 97.5th percentiles;
                changes between two models are *paired* (the same resampled questions for both)

Not handled: stratified splits (by topic or answer length); BCa or studentized intervals; the
sizes of the two halves are only about `test_fraction` of the set (a hash, not a shuffle).
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

T = TypeVar("T")

TEST_FRACTION = 0.5  # half the held-out questions are never looked at while tuning
RESAMPLES = 2000  # bootstrap resamples: the interval ends move by < 0.1 points from run to run
LEVEL = 0.95


def is_test(qa_id: str, seed: int = 0, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether a question id falls in the test split: a uniform hash of (seed, id) < fraction."""
    digest = hashlib.sha256(f"{seed}\x00{qa_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def split(
    items: list[T], seed: int = 0, test_fraction: float = TEST_FRACTION, key=lambda x: x.id
) -> tuple[list[T], list[T]]:
    """(dev, test), each in input order: [qa-001, qa-002, ...] -> ([qa-002, ...], [qa-001, ...])."""
    dev, test = [], []
    for item in items:
        (test if is_test(key(item), seed, test_fraction) else dev).append(item)
    return dev, test


def _resample(n: int, resamples: int, seed: int):
    """Index matrix (resamples, n) of questions drawn with replacement."""
    import numpy as np

    if n == 0:
        raise ValueError("bootstrap: no questions")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(samples, point: float, level: float = LEVEL) -> dict[str, float]:
    import numpy as np

    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return {"value": float(point), "lo": float(lo), "hi": float(hi)}


def mean_ci(
    values: list[float],
    weights: list[float] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Weighted mean sum(v)/sum(w) (per-question sums and token counts) with its interval.

    mean_ci([1, 0, 1, 1]) -> {"value": 0.75, "lo": ..., "hi": ...}
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    idx = _resample(len(v), resamples, seed)
    return _interval(v[idx].sum(1) / w[idx].sum(1), v.sum() / w.sum())


def relative_change_ci(
    before: list[float],
    after: list[float],
    weights: list[float] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Paired relative change of a weighted mean, (after - before) / before, with its interval.

    For answer losses: per-question summed NLL before and after, weights = answer tokens (the
    same for both models, so they cancel: the change is sum(after) / sum(before) - 1).
    """
    import numpy as np

    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"relative_change_ci: {len(b)} questions before but {len(a)} after")
    w = np.ones_like(b) if weights is None else np.asarray(weights, dtype=float)
    idx = _resample(len(b), resamples, seed)
    samples = (a[idx].sum(1) / w[idx].sum(1)) / (b[idx].sum(1) / w[idx].sum(1)) - 1
    return _interval(samples, a.sum() / b.sum() - 1)


def difference_ci(
    before: list[float], after: list[float], resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Paired difference of means, mean(after) - mean(before): accuracies in points of 1.0."""
    import numpy as np

    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"difference_ci: {len(b)} questions before but {len(a)} after")
    idx = _resample(len(b), resamples, seed)
    return _interval((a - b)[idx].mean(1), float((a - b).mean()))


def gap_ci(
    before_a: list[float], after_a: list[float], before_b: list[float], after_b: list[float],
    resamples: int = RESAMPLES, seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """How much more set A's mean rose than set B's: (mean(after_a) - mean(before_a)) -
    (mean(after_b) - mean(before_b)), each set resampled on its own (paired within a set): the
    knowledge gain of covered (A) over uncovered (B) questions."""
    import numpy as np

    da = np.asarray(after_a, dtype=float) - np.asarray(before_a, dtype=float)
    db = np.asarray(after_b, dtype=float) - np.asarray(before_b, dtype=float)
    ia, ib = _resample(len(da), resamples, seed), _resample(len(db), resamples, seed + 1)
    return _interval(da[ia].mean(1) - db[ib].mean(1), float(da.mean() - db.mean()))


def split_summary(dev_ids: list[str], test_ids: list[str], seed: int, test_fraction: float) -> dict:
    """What metrics.json records of a split: seed, fraction, sizes and the ids of each half."""
    return {
        "seed": seed,
        "test_fraction": test_fraction,
        "dev_n": len(dev_ids),
        "test_n": len(test_ids),
        "dev_ids": list(dev_ids),
        "test_ids": list(test_ids),
    }


def load_split(
    path: str, seed: int = 0, test_fraction: float = TEST_FRACTION, size: int | None = None
) -> tuple[list[Any], list[Any]]:
    """(dev, test) QAs of a held-out QA file, each cut to its first `size` questions."""
    from trainers.data import load_qa

    dev, test = split(load_qa(path), seed, test_fraction)
    return dev[:size], test[:size]
