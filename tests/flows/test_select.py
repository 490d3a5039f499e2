"""Control flow of the selection stage (flows/stages/select.py) with a fake run, embedder and IFD
task.

No model is loaded: the embedder maps each instruction to a fixed vector and the IFD task is a
stand-in that records what it was asked. The real path is covered end to end elsewhere.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from flows.counts import reason_kind, stage_counts
from flows.export import user_message
from flows.stages import likelihood, select
from flows.tasks import content_key
from generators.records import Record
from tests.flows.fake_run import FakeRun

# instruction -> embedding; "near" is almost "top" (cos ~0.99995), "far" is orthogonal to both
VECTORS = {"top": [1.0, 0.0], "near": [1.0, 0.01], "far": [0.0, 1.0], "mid": [1.0, 1.0]}


class FakeEmbedder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return np.array([VECTORS[t.split("\n")[0]] for t in texts])


@pytest.fixture
def embedder(monkeypatch) -> FakeEmbedder:
    fake = FakeEmbedder()
    monkeypatch.setattr(select, "get_embedder", lambda name: fake)
    return fake


def rated(*pairs: tuple[str, int | None]) -> list[Record]:
    """Records named by instruction, each with a rating score (None: no rating)."""
    return [
        Record(instruction=name, output=f"{name} answer", meta={"rating": {"score": score}})
        if score is not None
        else Record(instruction=name, output=f"{name} answer")
        for name, score in pairs
    ]


def rating_run(**select_cfg) -> FakeRun:
    cfg = {"enabled": True, "utility": "rating", "budget": 2, "tau": 0.9, **select_cfg}
    return FakeRun(rating={"enabled": True}, select=cfg)


def test_disabled_passes_records_through_and_writes_no_stage(monkeypatch):
    monkeypatch.setattr(select, "get_embedder", lambda name: pytest.fail("embedder loaded"))
    run = FakeRun()
    records = rated(("top", 5), ("near", 4))
    assert select.select_stage(run.tools(), records).records is records
    assert run.stages == []


def test_rating_utility_keeps_the_top_rated_diverse_records(embedder):
    run = rating_run()
    records = rated(("mid", None), ("near", 4), ("top", 5), ("far", 3))
    kept = run.apply(select.select_stage, records).records
    # top (5) first; near (4) is a near-copy of it; far (3) fills the budget; mid is left over
    assert [r.instruction for r in kept] == ["top", "far"]
    name, n_in, stage_kept, dropped = run.stages[0]
    assert (name, n_in, stage_kept) == ("select", 4, kept)
    top_id = records[2].id
    assert [(r.instruction, r.meta["drop_reason"]) for r in dropped] == [
        ("mid", "selection_over_budget"),
        ("near", f"selection_cos_1.00_vs_{top_id}"),
    ]
    assert kept[0].meta["selection"] == {
        "utility": 5.0,
        "rank": 0,
        "max_cosine": None,
        "nearest": None,
    }
    assert embedder.texts[0] == "mid\n\nmid answer"  # instruction, input, output
    assert run.seconds["select"] == 1


def test_the_funnel_names_both_reasons_by_kind(embedder):
    run = rating_run()
    run.apply(select.select_stage, rated(("mid", None), ("near", 4), ("top", 5), ("far", 3)))
    name, n_in, kept, dropped = run.stages[0]
    counts = stage_counts(name, n_in, kept, dropped)
    assert counts["reasons"] == {"selection_over_budget": 1, "selection_cos": 1}
    assert reason_kind("selection_cos_0.93_vs_ab12cd34ef56ab12") == "selection_cos"


def test_no_records_writes_an_empty_stage_without_embedding(monkeypatch):
    monkeypatch.setattr(select, "get_embedder", lambda name: pytest.fail("embedder loaded"))
    run = rating_run()
    assert run.apply(select.select_stage, []).records == []
    assert run.stages == [("select", 0, [], [])]


def test_skipped_rating_judge_is_warned_about(embedder, caplog):
    run = rating_run(budget=5)
    records = [Record(instruction=n, meta={"rating": {"skipped": "x"}}) for n in ("top", "far")]
    with caplog.at_level(logging.WARNING, logger="selfalign"):
        kept = run.apply(
            select.select_stage, records, rating_skipped="uncalibrated (agreement 0.40)"
        ).records
    assert [r.meta["selection"]["utility"] for r in kept] == [0.0, 0.0]
    assert "uncalibrated (agreement 0.40)" in caplog.text


class FakeIfdTask:
    """Stands in for the Prefect task: `with_options(...)` then a call with keyword arguments."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.options: dict = {}
        self.calls: list[dict] = []

    def with_options(self, **options):
        self.options = options
        return self

    def __call__(self, **kwargs) -> list[float]:
        self.calls.append(kwargs)
        return self.scores


def test_ifd_utility_scores_the_exported_prompt_and_ranks_ifd_over_one_last(monkeypatch, embedder):
    ifd = FakeIfdTask([0.5, 1.3, 0.9])
    monkeypatch.setattr(likelihood, "ifd_batch", ifd)
    monkeypatch.setattr(likelihood, "code_version", lambda modules: f"v-{modules[0]}")
    monkeypatch.setattr(
        likelihood, "resolve_model", lambda name: SimpleNamespace(path=f"/m/{name}")
    )
    run = FakeRun(select={"enabled": True, "utility": "ifd", "budget": 2, "tau": 0.9})
    records = [
        Record(instruction="top", input="ctx", output="a1"),
        Record(instruction="far", output="a2"),
        Record(instruction="mid", output="a3"),
    ]
    kept = run.apply(select.select_stage, records).records

    prompts = [user_message(r) for r in records]
    assert prompts[0] == "top\n\nctx"
    assert ifd.calls == [
        {
            "key": content_key(
                "ifd", "fake-model@1", prompts, ["a1", "a2", "a3"], "v-trainers.evaluate"
            ),
            "model_path": "/m/default",
            "prompts": prompts,
            "answers": ["a1", "a2", "a3"],
        }
    ]
    assert ifd.options["result_storage"] == run.cache
    # mid (0.9) then top (0.5, cos 0.71 to mid); far's 1.3 > IFD_MAX ranks it last: over budget
    assert [r.instruction for r in kept] == ["top", "mid"]
    dropped = run.stages[0][3]
    assert [(r.instruction, r.meta["drop_reason"], r.meta["ifd"]) for r in dropped] == [
        ("far", "selection_over_budget", 1.3)
    ]
    assert [r.meta["ifd"] for r in kept] == [0.5, 0.9]


def test_the_budget_is_a_share_of_the_records_when_a_fraction_is_set():
    from types import SimpleNamespace as NS

    assert select.budget_of(NS(budget=1000, fraction=None), 7) == 1000
    assert select.budget_of(NS(budget=1000, fraction=0.5), 7) == 4  # rounded up
    assert select.budget_of(NS(budget=3, fraction=0.5), 100) == 3  # the smaller of the two
    assert select.budget_of(NS(budget=10, fraction=0.01), 5) == 1
