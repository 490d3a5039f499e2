"""The tiny recipe's run, made once per session on the real engine.

Several tests need a finished run or the model's replies for the tiny recipe (the scale test, the
served deployment, the two-round loop). Generating them takes minutes on 2 CPU cores, so they are
generated once here and the other tests start from a copy of this run's task cache: the LLM
batches are keyed by their content, not by the run folder, so a run of the same recipe under any
name or folder finds them there.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyRun:
    dir: Path  # the run folder
    tmp: Path  # the folder tiny_recipe(tmp) was written for (its runs_dir is tmp / "runs")
    calls: int  # LLM conversations its run made (all of them fresh)

    def reuse_replies(self, run_dir: Path) -> None:
        """Give a run folder about to be started this run's cached task results."""
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.dir / "cache", run_dir / "cache", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def tiny_run(default_model, prefect_harness, release_engines_at_end, tmp_path_factory) -> TinyRun:
    from flows.pipeline import self_specialize
    from flows.tasks import LLM_CALLS
    from tests.flows.test_flow import tiny_recipe

    tmp = tmp_path_factory.mktemp("tiny-run")
    before = LLM_CALLS["conversations"]
    run_dir = Path(self_specialize(recipe=tiny_recipe(tmp)))
    return TinyRun(run_dir, tmp, LLM_CALLS["conversations"] - before)
