"""A stand-in for `flows.run.Run` in unit tests of the stages: `Run.tools` and `Run.record` over an
LLM that answers from a script keyed by stage name; it writes nothing (it keeps each stage's
records in `stages`)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from flows.recipe import Recipe
from flows.run import Run
from flows.stages.base import Outcome
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
        self.texts: dict[str, str] = {}  # passage id -> text, as Run.tools hands them out

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

    def retrieve(self, batch, queries):
        return [[] for _ in queries]

    def encoder(self):
        return None

    def minhasher(self):
        return None

    def stage(self, name, n_in, kept, dropped):
        self.stages.append((name, n_in, kept, dropped))

    # the run's own: what a stage is handed, and how its outcome is kept
    tools = Run.tools
    record = Run.record

    def apply(self, stage, *args, **kwargs) -> Outcome:
        """Run a stage function on this run's tools and keep what it wrote."""
        outcome = stage(self.tools(self.texts), *args, **kwargs)
        self.record(outcome)
        return outcome
