import json

import pytest

from flows.export import card_examples, data_card, export_row, write_export, write_format
from flows.rundir import read_records, write_records
from generators.records import Record

RECORDS = [
    Record(
        instruction="Explain ATP.", output="ATP stores energy.", passages=("p1",), meta={"score": 1}
    ),
    Record(
        instruction="Classify the organism.", input="E. coli", output="bacterium", meta={"round": 0}
    ),
]
MANIFEST = {
    "name": "t",
    "finished_at": "2026-11-21T00:00:00+00:00",
    "versions": {"selfalign": "0.1.0"},
    "model_id": "m@x",
    "backend": "vllm",
    "embedder_id": "e",
    "stages": [{"stage": "novelty", "in": 5, "kept": 2, "dropped": 3, "reasons": {"rouge_l": 3}}],
    "recipe_yaml": "name: t\n",
}


def test_export_row_is_a_chat_for_trl():
    row = export_row(RECORDS[1])
    assert row["messages"] == [
        {"role": "user", "content": "Classify the organism.\n\nE. coli"},
        {"role": "assistant", "content": "bacterium"},
    ]
    assert row["instruction"] == "Classify the organism." and row["meta"] == {"round": 0}


def test_write_export_writes_every_format(tmp_path):
    from datasets import load_from_disk

    out = write_export(tmp_path, RECORDS, data_card(MANIFEST, RECORDS))
    lines = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r.id for r in RECORDS]
    hf = load_from_disk(str(out / "hf"))
    assert hf.column_names[:1] == ["messages"] and hf[1]["messages"][0]["content"].endswith(
        "E. coli"
    )
    assert json.loads(hf[0]["meta"]) == {"score": 1}
    card = (out / "README.md").read_text()
    assert "| novelty | 5 | 2 | 3 | rouge_l: 3 |" in card and "Explain ATP." in card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_data_card_decontamination_section():
    assert "## Decontamination" not in data_card(MANIFEST, RECORDS)
    decontamination = {
        "n": 13,
        "sources": ["heldout_qa.jsonl"],
        "heldout_texts": 240,
        "checked": 7,
        "dropped": 3,
        "by_heldout": {"qa-002": 2, "qa-009": 1},
    }
    card = data_card({**MANIFEST, "decontamination": decontamination}, RECORDS)
    section = card.split("## Decontamination")[1].split("## Examples")[0]
    assert "7 records checked for 13-gram overlap" in section and "`heldout_qa.jsonl`" in section
    assert "; 3 dropped" in section and "qa-002 (2), qa-009 (1)" in section


def test_failed_export_leaves_the_old_one(tmp_path, monkeypatch):
    write_export(tmp_path, RECORDS[:1], "old card")
    import flows.export as export

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_parquet_table", broken)
    with pytest.raises(RuntimeError):
        write_export(tmp_path, RECORDS, "new card")
    assert (tmp_path / "export" / "README.md").read_text() == "old card"
    assert len((tmp_path / "export" / "train.jsonl").read_text().splitlines()) == 1


def test_alpaca_and_parquet_formats(tmp_path):
    import pandas as pd

    write_format(RECORDS, "alpaca", tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())[1] == {
        "instruction": "Classify the organism.",
        "input": "E. coli",
        "output": "bacterium",
    }
    write_format(RECORDS, "parquet", tmp_path / "t.parquet")
    assert list(pd.read_parquet(tmp_path / "t.parquet")["output"]) == [
        "ATP stores energy.",
        "bacterium",
    ]


def test_stage_files_round_trip(tmp_path):
    dropped = RECORDS[0].drop("novelty", "rouge_l_0.91_vs_s1")
    write_records(tmp_path / "r.parquet", [dropped])
    assert read_records(tmp_path / "r.parquet") == [dropped]
    write_records(tmp_path / "empty.parquet", [])
    assert read_records(tmp_path / "empty.parquet") == []


def test_data_card_origins_and_support_section():
    manifest = {
        "support": {"reading": {"n": 4, "mean": 1.0, "p25": 1.0, "median": 1.0, "p75": 1.0}},
        "origins": {"reading": 3},
    }
    from flows.export import _origins_section

    lines = _origins_section(manifest)
    assert lines[0] == "## Origins and support"
    assert "| reading | 3 | 4 | 1.0 | 1.0 | 1.0 | 1.0 |" in lines
    assert _origins_section({}) == []


def test_card_examples_are_per_origin_around_the_median_support():
    def rec(i, origin, support):
        meta = {"origin": origin} if support is None else {"origin": origin, "support": support}
        return Record(instruction=f"task {i}", output=f"answer {i}", meta=meta)

    records = [
        rec(0, "self_instruct", 0.12),  # the worst first, as in a real export
        rec(1, "self_instruct", 0.5),
        rec(2, "self_instruct", 0.9),
        rec(3, "self_instruct", 0.55),
        rec(4, "self_instruct", 1.0),
        rec(5, "reading", 1.0),
        rec(6, "reading", 1.0),
        rec(7, "reading", 1.0),
        rec(8, "facts", None),
        rec(9, "facts", None),
        rec(10, "facts", None),
    ]
    picked = [r.instruction for r in card_examples(records, 2)]
    # self_instruct median 0.55: 0.55 itself, then 0.5 (0.05 away); never the 0.12 one
    assert picked == ["task 1", "task 3", "task 5", "task 6", "task 8", "task 9"]
    assert card_examples([], 2) == []
    card = data_card(MANIFEST, records)
    examples = card.split("## Examples")[1].split("## Recipe")[0]
    assert "task 0" not in examples and "*self_instruct*, support 0.55" in examples


def test_data_card_calibration_names_the_scorer_each_judge_ran_with():
    m = {"precision": 1.0, "recall": 0.9, "unparseable": 0, "n": 20}
    calibration = {
        "check_set": "qa.jsonl",
        "pairs": 10,
        "min_agreement": 0.7,
        "judges": {
            "rating": {
                **m, "agreement": 0.85, "scorer": "passage_gain", "action": "used",
                "candidates": {
                    "passage_gain": {**m, "agreement": 0.85},
                    "llm": {**m, "agreement": 0.5, "unparseable": 3},
                },
            },
            "comparison": {**m, "agreement": 0.4, "action": "low: skip"},
        },
    }  # fmt: skip
    card = data_card({**MANIFEST, "calibration": calibration}, RECORDS)
    assert "| judge | scorer | agreement | precision | recall | unparseable | n | status |" in card
    assert "| rating | passage_gain | 0.85 | 1.0 | 0.9 | 0 | 20 | used |" in card
    assert "| rating | llm | 0.5 | 1.0 | 0.9 | 3 | 20 | not chosen |" in card
    assert "| comparison | llm | 0.4 | 1.0 | 0.9 | 0 | 20 | low: skip |" in card
