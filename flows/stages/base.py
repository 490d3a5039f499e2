"""The stage interface: what a stage is handed, what it gives back, and what an origin or a judge
module declares.

    Tools    what the run hands a stage: the recipe, the cached LLM, retrieval, the encoders, the
             stage timer and the records' lineage. No stage calls back into the run (flows/run.py).
    Step     one stage folder's worth: its name, how many records came in, kept and dropped.
    Outcome  what a stage returns: the records that go on, its steps, its extra datasets
             (export/<name>.jsonl) and its manifest sections; the pipeline writes them.
    Origin   an origin module's declaration: its name (meta.origin, its share in `mix`), its
             recipe section and config class, its default share, and its stage function.
    Judge    a judge module's declaration: its recipe section and config class, the stage folders
             it writes, its stage function and, where it has one, its calibrated verdict.

flows/stages/registry.py lists the origins and the judges; the recipe, calibration, the mix and the
ablation's variants iterate those two tuples. Adding an origin or a judge is one module that
declares one of these, and one line in its tuple.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from generators.corpus import Passage
from generators.records import Record
from generators.seeds import Seed

# Model-written rewrites and answers repeat themselves on small models without a penalty (the
# respond stage and the judged stages' rewrites use this one).
REPETITION_PENALTY = 1.15

# A recipe field that names a file: `json_schema_extra=PATH_FIELD` makes load_recipe resolve it
# against the recipe file's folder.
PATH_FIELD: dict[str, Any] = {"recipe_path": True}

Datasets = dict[str, list[dict[str, Any]]]  # extra export datasets by name (dpo, self_feedback...)


class Strict(BaseModel):
    """A recipe section: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def derive_seed(base: int, *parts: Any) -> int:
    """A 31-bit sampling seed per (recipe seed, stage, batch): (0, "gen", 1) -> 1934...."""
    digest = hashlib.sha256(":".join(map(str, (base, *parts))).encode()).hexdigest()
    return int(digest[:8], 16) >> 1


def log() -> logging.Logger:
    """The flow run's logger inside a flow, else the package logger (stages run in both)."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("selfalign")


def origin_of(record: Record) -> str:
    """The origin a record came from ('self_instruct' when it does not say)."""
    return record.meta.get("origin", "self_instruct")


@dataclass(frozen=True)
class Tools:
    """What the run hands a stage (flows/run.py: Run.tools).

    `llm(stage, conversations, sampling, model=None, code=...)` answers any number of
    conversations in cached batches; `llm_batch(stage, batch, conversations, sampling)` one cached
    batch; `retrieve(batch, queries)` the top passages of each query; `encoder()` and
    `minhasher()` embed and hash (in process or on the cluster); `timed(stage)` adds a block's wall
    time to the stage's seconds in the funnel; `texts` every passage's text by id (the scorers
    read an answer's passages).
    """

    recipe: Any  # flows.recipe.Recipe
    llm: Callable[..., list[list[str]]]
    llm_batch: Callable[..., list[list[str]]]
    retrieve: Callable[[int, list[str]], list[list[tuple[str, float]]]]
    encoder: Callable[[], Any]
    minhasher: Callable[[], Any]
    timed: Callable[[str], AbstractContextManager[None]]
    lineage: Mapping[str, Any]
    model_id: str
    cache: Path
    run_dir: Path
    texts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One stage folder: `n_in` records came in, `kept` went on, `dropped` were dropped."""

    name: str
    n_in: int
    kept: list[Record]
    dropped: list[Record]


@dataclass
class Outcome:
    """What a stage gives back: the records that go on, the stage folders to write (in order),
    extra datasets for the export and sections for manifest.json."""

    records: list[Record]
    steps: list[Step] = field(default_factory=list)
    datasets: Datasets = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def one_step(name: str, n_in: int, kept: list[Record], dropped: list[Record]) -> Outcome:
    """The outcome of a stage that writes one folder: `kept` go on."""
    return Outcome(kept, [Step(name, n_in, kept, dropped)])


@dataclass(frozen=True)
class Sources:
    """What origins start from: the seed tasks, the passages generation draws from, and every
    passage's text by id (retrieval answers with ids)."""

    seeds: list[Seed]
    passages: list[Passage]
    texts: Mapping[str, str]


@dataclass(frozen=True)
class Origin:
    """An origin module's declaration (flows/stages/origins/).

    `name` is the records' meta.origin, the origin's share in `mix` and the ablation's
    origin-<name> / recipe-without-<name>; `section` its own recipe section (None: it has none);
    `share` its default share, `share_doc` what the share means; `uncut` origins are switched on by
    their share but never cut by the mix; `make(tools, sources)` writes the records.
    """

    name: str
    section: str | None
    config: type[Strict] | None
    share: float
    share_doc: str
    make: Callable[[Tools, Sources], Outcome]
    uncut: bool = False


Verdicts = Callable[[Tools, list[Any]], list[bool | None]]
LLM_VERDICT = "llm"  # the scorer name of a judge's own model verdict
AUTO = "auto"  # calibration picks the judge's scorer


@dataclass(frozen=True)
class Judge:
    """A judge module's declaration (flows/stages/judges/).

    `section` is its recipe section and `config` that section's class; `stages` the stage
    folders it writes (each a recipe-minus-<stage> variant of the ablation); `switched_on(cfg)`
    whether the recipe runs it; `apply(tools, records, seeds, skipped, scorer)` the stage, where
    `skipped` says why its calibrated verdict is not to be used (None: use it) and `scorer` which
    one calibration chose (None: the section's own choice). A judge with a verdict names it
    (`verdict`) and gives the model's `verdicts(tools, items)` on the calibration check items
    (True: judged correct) and its `scorers` (name -> verdicts computed without asking the model,
    filters/s3ft.py, filters/support.py); `scorer_of(cfg)` is the section's choice: "llm" (the
    model's verdict, also when None), a scorer's name, "auto" (calibration measures all and keeps
    the best) or anything else for a rule that needs no calibration.
    """

    section: str
    config: type[Strict]
    stages: tuple[str, ...]
    switched_on: Callable[[Any], bool]
    apply: Callable[..., Outcome]
    verdict: str | None = None
    verdicts: Verdicts | None = None
    scorers: Mapping[str, Verdicts] = field(default_factory=dict)
    scorer_of: Callable[[Any], str] | None = None

    def candidates(self, cfg: Any) -> list[str]:
        """What calibration measures for this judge under section `cfg`: scorers first, then
        the model's verdict ("llm"); [] when the section names a rule or the judge is off."""
        if not self.verdict or not self.switched_on(cfg):
            return []
        choice = self.scorer_of(cfg) if self.scorer_of else LLM_VERDICT
        if choice == AUTO:
            return [*self.scorers, *([LLM_VERDICT] if self.verdicts else [])]
        if choice in self.scorers or (choice == LLM_VERDICT and self.verdicts):
            return [choice]
        return []

    def verdicts_of(self, scorer: str) -> Verdicts:
        """The verdict function of `scorer` ("llm": the model's)."""
        if scorer == LLM_VERDICT and self.verdicts:
            return self.verdicts
        if scorer in self.scorers:
            return self.scorers[scorer]
        names = [*self.scorers, *([LLM_VERDICT] if self.verdicts else [])]
        raise ValueError(f"{self.section}: unknown scorer {scorer!r}: choose one of {names}")
