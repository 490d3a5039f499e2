"""A stand-in for `flows.run.Run` in unit tests of the stages: it hands stages `Tools` whose LLM
answers from a script keyed by stage name, and writes nothing (it keeps each stage's counts)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from flows.recipe import Recipe
from flows.stages.base import Outcome, Tools
from generators.records import Record

BASE = {"name": "t", "seeds": "s.jsonl", "corpus": {"path": "c.jsonl"}}


class FakeRun:
    def __init__(self, script: dict | None = None, **recipe) -> None:
        self.recipe = Recipe.model_validate({**BASE, "batch_records": 2, **recipe})
        self.script = script or {}
        self.asked: dict[str, list] = {}
        self.stages: list[tuple[str, int, list[Record], list[Record]]] = []
        self.sections: dict = {}
        self.seconds = Counter()
        self.lineage = {"model_id": "fake", "backend": "fake", "round": 0}
        self.model_id = "fake-model@1"
        self.cache = Path("/nonexistent/cache")
        self.dir = Path("/nonexistent/run")

    def llm_all(self, stage, conversations, sampling, model=None, code=()):
        if not conversations:  # like Run.llm: no call at all
            return []
        self.asked.setdefault(stage, []).extend(conversations)
        reply = self.script[stage]
        return [[reply(c) if callable(reply) else reply] for c in conversations]

    def llm(self, stage, batch, conversations, sampling, model=None, code=()):
        return self.llm_all(stage, conversations, sampling, model, code)

    @contextmanager
    def timed(self, stage):
        self.seconds[stage] += 1
        yield

    def tools(self) -> Tools:
        return Tools(
            recipe=self.recipe,
            llm=self.llm_all,
            llm_batch=self.llm,
            retrieve=lambda batch, queries: [[] for _ in queries],
            encoder=lambda: None,
            minhasher=lambda: None,
            timed=self.timed,
            lineage=self.lineage,
            model_id=self.model_id,
            cache=self.cache,
            run_dir=self.dir,
        )

    def record(self, outcome: Outcome) -> list[Record]:
        for step in outcome.steps:
            self.stages.append((step.name, step.n_in, step.kept, step.dropped))
        self.sections.update(outcome.manifest)
        return outcome.records

    def apply(self, stage, *args, **kwargs) -> Outcome:
        """Run a stage function on this run's tools and keep what it wrote."""
        outcome = stage(self.tools(), *args, **kwargs)
        self.record(outcome)
        return outcome
