"""The one list of origins and the one list of judges, in the order the pipeline runs them.

The recipe (a section and a `mix` share per origin, a section per judge), calibration (the judges
with a verdict), the mix, and the ablation's variants (origin-<name>, recipe-without-<name>,
recipe-minus-<stage>) iterate these tuples. A new origin or judge is one module under origins/ or
judges/ that declares an `Origin` or a `Judge` (flows/stages/base.py), and one line here.
"""

from __future__ import annotations

from flows.stages.base import Judge, Origin
from flows.stages.judges import dedup, multicritique, rating, s3ft, self_refine
from flows.stages.origins import backtranslation, facts, reading, seeds, self_instruct

ORIGINS: tuple[Origin, ...] = (
    self_instruct.ORIGIN,
    backtranslation.ORIGIN,
    reading.ORIGIN,
    facts.ORIGIN,
    seeds.ORIGIN,
)

JUDGES: tuple[Judge, ...] = (
    dedup.JUDGE,
    rating.JUDGE,
    s3ft.JUDGE,
    self_refine.JUDGE,
    multicritique.JUDGE,
)
