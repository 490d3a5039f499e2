"""Three origins through the real flow on a scripted LLM: Self-Instruct answered from its source
passage, backtranslated spans and mined reading tasks; grounding scores and filters them, the mix
cuts them to equal shares, and the funnel, manifest and card say which origin each record has."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from flows.rundir import read_records, stage_dir
from generators.text import content_words
from tests.reliability.fakes import Script, stage_of, tiny_recipe
from tests.reliability.test_bad_model_output import GOOD


def backtranslation_reply(conversation) -> str:
    """A question naming the span's longest word; every fifth asks about 'the passage'."""
    user = conversation[-1]["content"]
    span = user.split('<passage id="text">\n', 1)[1].split("\n</passage>", 1)[0]
    word = max(sorted(content_words(span)), key=len)
    backtranslation_reply.count += 1
    if backtranslation_reply.count % 5 == 0:
        return "What does the passage say?"
    return f"Question: What is known about {word} in this context?"


backtranslation_reply.count = 0


def test_three_origins_are_scored_mixed_and_counted(prefect_harness, fake_models, tmp_path):
    from flows.pipeline import self_specialize

    script = Script({}, GOOD)
    fake_models(lambda c: backtranslation_reply(c) if stage_of(c) == "backtranslate" else script(c))
    recipe = {
        **tiny_recipe(tmp_path, "origins", 4),
        "grounding": {"source_passage": True, "min_score": 0.9, "min_support": 0.3},
        "backtranslate": {"max_spans": 20},
        "reading": {"kinds": ["keyword", "cause"]},
        "mix": {"self_instruct": 1, "backtranslation": 1, "reading": 1},
    }
    run_dir = Path(self_specialize(recipe=recipe))
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    names = [s["stage"] for s in manifest["stages"]]
    assert names == [
        "corpus", "generate", "heuristics", "novelty", "classify", "instances", "respond",
        "backtranslate", "reading", "grounding", "mix",
    ]  # fmt: skip
    counts = {s["stage"]: s for s in manifest["stages"]}
    assert counts["backtranslate"]["in"] == 20
    reasons = counts["backtranslate"]["reasons"]
    assert reasons.pop("backtranslation_refers_to_text") == 4
    assert set(reasons) <= {"backtranslation_question_repeated"}  # two spans, one longest word
    assert counts["reading"]["kept"] > 100  # every passage gives a keyword task

    # respond answered from the passage each task was written from
    folder = stage_dir(run_dir, names.index("respond"), "respond")
    for r in read_records(folder / "kept.parquet"):
        assert r.passages[0] == r.meta["source_passage"] == r.meta["generation_passages"][0]

    # grounding: the scripted answers share few words with their passages; corpus text shares all
    grounding = counts["grounding"]
    assert grounding["reasons"] == {"unsupported": grounding["dropped"]} and grounding["dropped"]
    assert grounding["origins"]["reading"] == {"kept": counts["reading"]["kept"]}
    assert manifest["support"]["reading"]["mean"] == 1.0
    assert manifest["support"]["backtranslation"]["mean"] == 1.0
    assert manifest["support"]["self_instruct"]["mean"] < 0.5

    # the mix keeps equal shares of the origins that are left
    exported = [json.loads(line) for line in (run_dir / "export" / "train.jsonl").open()]
    by_origin = Counter(row["meta"]["origin"] for row in exported)
    assert manifest["origins"] == dict(by_origin)
    left = {o: n for o, n in grounding["origins"].items() if n.get("kept")}
    smallest = min(n["kept"] for n in left.values())
    assert set(by_origin) == set(left) and set(by_origin.values()) == {smallest}
    assert counts["mix"]["reasons"] == {
        f"mix_share_{o}": n["kept"] - smallest for o, n in left.items() if n["kept"] > smallest
    }
    card = (run_dir / "export" / "README.md").read_text(encoding="utf-8")
    assert "## Origins and support" in card and "| reading |" in card


def test_facts_rows_go_through_the_flow_whole_closed_book_and_counted(
    prefect_harness, fake_models, tmp_path
):
    from flows.pipeline import self_specialize

    fake_models(Script({}, GOOD))  # no LLM stage runs: no origin of the recipe asks the model
    recipe = {
        **tiny_recipe(tmp_path, "facts", 4),
        "reading": {"kinds": ["blank"]},
        "facts": {"forms": ["question", "statement", "notes"], "phrasings": 1},
        "mix": {"self_instruct": 0, "reading": 1, "facts": 1},
    }
    run_dir = Path(self_specialize(recipe=recipe))
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    counts = {s["stage"]: s for s in manifest["stages"]}
    # one origin the mix could cut (reading), facts never cut: no mix stage
    assert list(counts) == ["corpus", "reading", "facts", "grounding"]
    made = counts["facts"]["kept"]
    assert made > 3 * 330  # at least three rows a passage on the demo corpus
    assert counts["grounding"]["origins"]["facts"] == {"kept": made}
    assert manifest["origins"] == {"reading": 330, "facts": made}
    corpus = {
        json.loads(line)["id"]: json.loads(line)["text"]
        for line in (Path(recipe["corpus"]["path"])).read_text().splitlines()
    }
    exported = [json.loads(line) for line in (run_dir / "export" / "train.jsonl").open()]
    facts = [row for row in exported if row["meta"]["origin"] == "facts"]
    assert len(facts) == made
    assert Counter(row["meta"]["fact_form"] for row in facts).keys() == {
        "question", "statement", "notes"
    }  # fmt: skip
    for row in facts:
        pid = row["meta"]["source_passage"]
        assert row["meta"]["fact_id"].startswith(pid)
        assert corpus[pid] not in row["messages"][0]["content"]  # closed book
    assert manifest["support"]["facts"]["mean"] > 0.9  # the answers are the corpus's own words
