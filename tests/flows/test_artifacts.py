"""Prefect artifacts of a run: the pure builders, then one publish read back from a server."""

from __future__ import annotations

import json
import uuid

import pytest

from flows.ops import artifacts as art
from flows.ops import funnel_plot as plot
from generators.records import Record

STAGES = [
    {"stage": "corpus", "in": 10, "kept": 10, "dropped": 0, "reasons": {}, "seconds": 0.1},
    {"stage": "generate", "in": 4, "kept": 12, "dropped": 1, "reasons": {"no_list": 1}},
    {
        "stage": "novelty",
        "in": 12,
        "kept": 6,
        "dropped": 6,
        "reasons": {"rouge_l": 5, "empty": 1},
        "seconds": 0.4,
    },
]
METRICS = {
    "round": 2,
    "before": {"domain_loss": 2.5, "general_loss": None, "domain_token_f1": 0.1},
    "after": {"domain_loss": 2.0, "general_loss": None, "domain_token_f1": 0.25},
    "sft": {"first_loss": 3.0, "last_loss": 1.5},
    "dpo": None,
    "decision": "domain loss 2.5000 -> 2.0000: promoted",
    "trained_model": {"path": "/models/round-2"},
}


def manifest(**extra) -> dict:
    return {"name": "Biomed demo", "round": 1, "stages": STAGES, **extra}


@pytest.mark.parametrize(
    "name, round, key",
    [
        ("biomed-demo", 1, "biomed-demo-funnel"),
        ("Biomed_Demo v2!", 1, "biomed-demo-v2-funnel"),
        ("biomed-loop", 2, "biomed-loop-round-2-funnel"),
        ("round-2", 2, "round-2-funnel"),
        ("__", 1, "run-funnel"),
    ],
)
def test_artifact_keys_use_prefects_alphabet(name, round, key):
    assert art.artifact_key(name, round, "funnel") == key


def test_funnel_has_a_row_per_stage_and_reason_most_frequent_first():
    rows = art.funnel_rows(STAGES)
    assert [(r["stage"], r["reason"], r["count"]) for r in rows] == [
        ("corpus", "", 0),
        ("generate", "no_list", 1),
        ("novelty", "rouge_l", 5),
        ("novelty", "empty", 1),
    ]
    assert rows[2] == {
        "stage": "novelty",
        "in": 12,
        "kept": 6,
        "dropped": 6,
        "reason": "rouge_l",
        "count": 5,
    }


def test_samples_are_clipped_to_one_line():
    long = Record("Explain\n\nthis  " + "x" * 500, output="fine")
    (row,) = art.kept_rows([long, Record("b")], n=1)
    assert row["instruction"].startswith("Explain this x") and "\n" not in row["instruction"]
    assert len(row["instruction"]) == art.TEXT_MAX and row["instruction"].endswith("…")
    assert row["output"] == "fine" and row["id"] == long.id
    assert (row["origin"], row["support"]) == ("self_instruct", "")
    (row,) = art.kept_rows([Record("c", meta={"origin": "reading", "support": 0.75})])
    assert (row["origin"], row["support"]) == ("reading", "0.75")


def test_rejected_samples_take_each_stage_in_turn_with_the_reason():
    dropped = [Record(f"h{i}").drop("heuristics", "too_short") for i in range(4)]
    dropped.append(Record("n").drop("novelty", "rouge_l_0.82_vs_ab12"))
    rows = art.rejected_rows(dropped, n=3)
    assert [(r["stage"], r["reason"]) for r in rows] == [
        ("heuristics", "too_short"),
        ("novelty", "rouge_l_0.82_vs_ab12"),
        ("heuristics", "too_short"),
    ]
    assert rows[1]["instruction"] == "n"


def test_bar_uses_eighth_blocks():
    assert plot.bar(3, 8, width=4) == "█▌"
    assert plot.bar(8, 8, width=4) == "████"
    assert plot.bar(0, 8) == "" and plot.bar(5, 0) == ""


def test_funnel_chart_is_a_code_block_of_record_stages_with_the_corpus_above():
    chart = plot.funnel_chart(STAGES)
    assert "Corpus: 10 passages kept of 10." in chart.split("```")[0]
    lines = chart.split("```text\n")[1].split("\n```")[0].splitlines()
    assert len(lines) == 2  # generate and novelty: the corpus counts passages
    assert lines[0].startswith("generate  " + "█" * plot.BAR_WIDTH) and lines[0].endswith("12/4")
    assert lines[1].startswith("novelty   " + "█" * (plot.BAR_WIDTH // 2) + " ")
    assert lines[1].endswith("6/12")


def test_plot_embeds_a_png_when_pillow_is_there():
    pytest.importorskip("PIL")
    text = plot.plot_markdown(STAGES)
    assert text.startswith(plot.funnel_chart(STAGES))
    assert "](data:image/png;base64,iVBORw0KGgo" in text  # the PNG signature, base64


def test_calibration_and_training_tables():
    calibration = {
        "judges": {
            "rating": {"agreement": 0.4, "precision": 0.5, "recall": None, "unparseable": 2,
                       "n": 10, "action": "low: warn", "by_kind": {}},
        }
    }  # fmt: skip
    assert art.calibration_rows(calibration) == [
        {"judge": "rating", "scorer": "llm", "agreement": 0.4, "precision": 0.5, "recall": None,
         "unparseable": 2, "n": 10, "status": "low: warn"}
    ]  # fmt: skip
    calibration["judges"]["rating"]["scorer"] = "passage_gain"
    assert art.calibration_rows(calibration)[0]["scorer"] == "passage_gain"
    rows = {r["metric"]: r for r in art.training_rows(METRICS)}
    assert rows["domain_loss"] == {"metric": "domain_loss", "before": 2.5, "after": 2.0,
                                   "change": -0.5}  # fmt: skip
    assert rows["general_loss"]["change"] is None and rows["sft_train_loss"]["after"] == 1.5
    assert "dpo_train_loss" not in rows
    kind, key, _, description = art.training_artifact("biomed-loop", METRICS)
    assert (kind, key) == ("table", "biomed-loop-round-2-training")
    assert "promoted" in description and "/models/round-2" in description


def test_run_artifacts_list_what_the_run_has(tmp_path):
    failed = [{"stage": "respond", "batch": 0, "error": "timeout " * 100}]
    (tmp_path / art.FAILED_FILE).write_text("".join(json.dumps(f) + "\n" for f in failed))
    specs = art.run_artifacts(manifest(), [Record("a")], [], "# card", tmp_path)
    keys = [key for _, key, _, _ in specs]
    assert keys == [
        "biomed-demo-funnel",
        "biomed-demo-funnel-plot",
        "biomed-demo-kept-samples",
        "biomed-demo-rejected-samples",
        "biomed-demo-data-card",
    ]
    assert specs[4][2] == "# card" and str(tmp_path) in specs[0][3]
    calibration = {"judges": {"rating": {"agreement": 0.9}}}
    specs = art.run_artifacts(
        manifest(calibration=calibration, failed_requests=1), [], [], "", tmp_path
    )
    kinds = {key: (kind, data) for kind, key, data, _ in specs}
    assert kinds["biomed-demo-calibration"][0] == "table"
    (row,) = kinds["biomed-demo-failed-requests"][1]
    assert row["stage"] == "respond" and row["batch"] == 0 and len(row["error"]) == art.TEXT_MAX


def test_failed_requests_without_their_file_give_the_count(tmp_path):
    specs = art.run_artifacts(manifest(failed_requests=3), [], [], "", tmp_path)
    assert specs[-1][2] == [
        {"failed_requests": 3, "details": f"no {art.FAILED_FILE} in {tmp_path}"}
    ]


def test_publish_outside_a_flow_run_does_nothing():
    assert art.flow_run_id() is None
    assert art.publish([("table", "x-funnel", [{"a": 1}], "")]) == []


def test_published_artifacts_read_back_through_the_api(prefect_harness, tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    name = f"publish-test-{uuid.uuid4().hex[:8]}"
    rejected = [Record("dup").drop("novelty", "rouge_l_0.9_vs_x")]

    @flow(name="publish-artifacts")
    def publish_flow() -> tuple[list[str], str | None]:
        run = art.publish_run(
            manifest(name=name), [Record("kept one")], rejected, "# Card", tmp_path
        )
        training = art.publish_training(name, METRICS)
        bad = art.publish([("table", "Not A Valid Key", [{"a": 1}], "")])  # refused: a warning
        return run + training + bad, art.flow_run_id()

    published, flow_run_id = publish_flow()
    assert published == [
        f"{name}-funnel",
        f"{name}-funnel-plot",
        f"{name}-kept-samples",
        f"{name}-rejected-samples",
        f"{name}-data-card",
        f"{name}-round-2-training",
    ]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=published))
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == set(published)
    assert all(str(a.flow_run_id) == flow_run_id for a in found)
    funnel = by_key[f"{name}-funnel"]
    assert funnel.type == "table"
    rows = json.loads(funnel.data)
    assert {"stage": "novelty", "in": 12, "kept": 6, "dropped": 6, "reason": "rouge_l",
            "count": 5} in rows  # fmt: skip
    assert json.loads(by_key[f"{name}-rejected-samples"].data)[0]["reason"] == "rouge_l_0.9_vs_x"
    assert by_key[f"{name}-data-card"].data == "# Card"
    assert "```text" in by_key[f"{name}-funnel-plot"].data
