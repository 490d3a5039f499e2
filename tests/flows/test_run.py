"""Run.llm's failed requests (flows/run.py): they come back with the cached LLM task's result.

A scripted backend fails every conversation whose text says "fail", the way the OpenAI-compatible
backend reports a request that failed for good (`last_failures`); no model is loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows import run as run_module
from flows.recipe import Recipe
from flows.rundir import FAILED_FILE
from generators.backends.fake import FakeLLM
from generators.llm import Sampling

# the tasks run outside a flow here, so Prefect has no flow run to send their logs to
pytestmark = pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs")
SAMPLING = Sampling(max_tokens=8)
FAILURE = {"index": 1, "error": "HTTP 500: injected", "attempts": 2}


class FailingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__(lambda c: "" if self.failing and "fail" in c[-1]["content"] else "ok")
        self.failing = True
        self.last_failures: list[dict] = []

    def chat(self, conversations, sampling):
        replies = super().chat(conversations, sampling)
        self.last_failures = [
            {**FAILURE, "index": i} for i, (reply,) in enumerate(replies) if not reply
        ]
        return replies


def recipe(tmp_path: Path, name: str = "t") -> Recipe:
    server = {"base_urls": ["http://127.0.0.1:9/v1"]}  # never asked: the backend is scripted
    return Recipe.model_validate(
        {
            "name": name,
            "seeds": "s.jsonl",
            "corpus": {"path": "c.jsonl"},
            "runs_dir": str(tmp_path / "runs"),
            "model": {"backend": "openai", "name": "m", "openai": server},
        }
    )


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def listed(run_dir: Path) -> list[dict]:
    lines = (run_dir / FAILED_FILE).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "key"} for line in lines]


@pytest.fixture
def llm(monkeypatch) -> FailingLLM:
    import flows.tasks

    fake = FailingLLM()
    monkeypatch.setattr(flows.tasks, "get_llm", lambda backend, model, options="": fake)
    return fake


def test_failures_come_with_the_batch_and_are_asked_again_on_rerun(prefect_harness, llm, tmp_path):
    run = run_module.Run.start(recipe(tmp_path))
    assert run.llm("generate", 0, [user("fine"), user("fail")], SAMPLING) == [["ok"], [""]]
    expected = [{"stage": "generate", "batch": 0, **FAILURE}]
    assert [{k: v for k, v in f.items() if k != "key"} for f in run.failed_requests] == expected
    assert listed(run.dir) == expected

    # a copy of the run's cache elsewhere: the cached result still names its failure
    other = run_module.Run.start(recipe(tmp_path, "copy"))
    shutil.copytree(run.dir / "cache", other.cache)
    calls = len(llm.calls)
    assert other.llm("generate", 0, [user("fine"), user("fail")], SAMPLING) == [["ok"], [""]]
    assert len(llm.calls) == calls and listed(other.dir) == expected

    llm.failing = False  # the server is well again: the rerun asks that batch again
    rerun = run_module.Run.start(recipe(tmp_path))
    assert rerun.llm("generate", 0, [user("fine"), user("fail")], SAMPLING) == [["ok"], ["ok"]]
    assert len(llm.calls) == calls + 1
    assert rerun.failed_requests == [] and listed(rerun.dir) == []


def test_a_result_cached_before_failures_came_with_it_is_read_as_replies(monkeypatch, tmp_path):
    class CachedTask:  # stands in for the Prefect task answering from an older cache
        def with_options(self, **_options):
            return self

        def __call__(self, **_params):
            return [["cached"]]

    monkeypatch.setattr(run_module, "llm_batch", CachedTask())
    run = run_module.Run.start(recipe(tmp_path))
    assert run.llm("generate", 0, [user("fine")], SAMPLING) == [["cached"]]
    assert run.failed_requests == [] and not (run.dir / FAILED_FILE).exists()
