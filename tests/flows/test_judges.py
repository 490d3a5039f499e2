"""Control flow of the judged stages (flows/stages/judges/) with scripted replies per stage.

A fake run (fake_run.py) stands in for `Run`: its tools answer the LLM from a script keyed by
stage name, and it keeps what each stage wrote. Real-model behaviour is in test_judges_real.py.
"""

from __future__ import annotations

import json

import pytest

from flows.pipeline import judged_stages, run_chain
from flows.stages.judges import multicritique, rating, s3ft, self_refine
from flows.stages.judges.critique_rounds import critic_names
from flows.stages.judges.multicritique import CriticConfig
from generators.records import Record
from tests.flows.fake_run import FakeRun


def recs(*outputs: str) -> list[Record]:
    return [Record(instruction=f"Task {i}?", output=o) for i, o in enumerate(outputs)]


def user_text(conversation) -> str:
    return conversation[-1]["content"]


def test_rating_stage_keeps_at_threshold_and_names_the_reason():
    script = {"rating": lambda c: '{"score": 4}' if "good" in user_text(c) else '{"score": 1}'}
    run = FakeRun(script, rating={"enabled": True, "threshold": 3})
    kept = run.apply(rating.rating_stage, recs("good", "bad", "good too")).records
    assert [r.output for r in kept] == ["good", "good too"]
    name, n_in, _, dropped = run.stages[0]
    assert (name, n_in) == ("rating", 3)
    assert dropped[0].meta["drop_reason"] == "judge_score_1_lt_3"
    assert dropped[0].meta["dropped_by"] == "rating"
    assert len(run.asked["rating"]) == 3


def test_s3ft_own_paraphrase_and_gold_paths():
    own = {"Task 0?": "Forty two.", "Task 1?": "No idea.", "Task 2?": "Wrong."}

    def own_reply(c):
        return own[user_text(c).strip()]

    def judge(c):  # the own answer of task 0 and the paraphrase of task 1 are equivalent
        text = user_text(c)
        ok = "Forty two." in text or "In other words, yes." in text
        return json.dumps({"equivalent": ok, "rationale": "r"})

    script = {
        "s3ft-own": own_reply,
        "s3ft-judge-own": judge,
        "s3ft-paraphrase": lambda c: (
            "In other words, yes." if "gold one" in user_text(c) else "Something else."
        ),
        "s3ft-judge-paraphrase": judge,
    }
    run = FakeRun(script, s3ft={"enabled": True, "judge": "llm"})
    out = run.apply(s3ft.s3ft_stage, recs("42", "gold one", "gold two")).records
    assert [r.meta["target_source"] for r in out] == ["own", "paraphrase", "gold"]
    assert [r.output for r in out] == ["Forty two.", "In other words, yes.", "gold two"]
    assert len(run.asked["s3ft-paraphrase"]) == 2  # only the records whose own answer failed
    assert run.stages[0][3] == []  # S3FT drops nothing


def test_s3ft_exact_judge_makes_no_judge_calls():
    script = {"s3ft-own": "Paris", "s3ft-paraphrase": "paris!"}
    run = FakeRun(script, s3ft={"enabled": True, "judge": "exact"})
    out = run.apply(s3ft.s3ft_stage, recs("Paris.", "Rome")).records
    assert [r.meta["target_source"] for r in out] == ["own", "gold"]
    assert "s3ft-judge-own" not in run.asked


def test_gold_records_come_from_seed_instances_with_outputs(tmp_path):
    from generators.seeds import Seed

    seeds = [
        Seed("s1", "Define pH.", (("", "The negative log of [H+]."),)),
        Seed("s2", "Name a base.", (("", ""),)),
        Seed("s3", "No instances.", ()),
    ]
    run = FakeRun({}, s3ft={"enabled": True, "include_seeds": True})
    gold = s3ft.gold_records(run.tools(), seeds)
    assert [(g.instruction, g.meta["source"], g.meta["seed_id"]) for g in gold] == [
        ("Define pH.", "seed", "s1")
    ]


def test_self_refine_loop_accepts_refines_and_drops():
    def feedback(c):
        text = user_text(c)
        if "fine answer" in text or "fixed answer" in text:
            return '{"analysis": "ok", "verdict": "correct"}'
        if "garbled" in text:
            return "???"
        return '{"analysis": "wrong dose", "verdict": "incorrect"}'

    def refine(c):
        return "fixed answer" if "fixable" in user_text(c) else "still hopeless"

    script = {
        "self-feedback-0": feedback,
        "self-refine-0": refine,
        "self-feedback-1": feedback,
    }
    run = FakeRun(script, self_refine={"enabled": True, "max_steps": 1})
    records = recs("fine answer", "fixable", "hopeless", "garbled")
    outcome = run.apply(self_refine.self_refine_stage, records)
    kept, datasets = outcome.records, outcome.datasets
    assert [r.output for r in kept] == ["fine answer", "fixed answer"]
    assert [r.id for r in kept] == [records[0].id, records[1].id]
    assert kept[1].meta["self"]["accepted_at_step"] == 1
    dropped = {r.id: r.meta["drop_reason"] for r in run.stages[0][3]}
    assert dropped == {
        records[2].id: "self_feedback_incorrect_after_1_refinements",
        records[3].id: "judge_unparseable",
    }
    assert len(run.asked["self-refine-0"]) == 2
    rows = datasets["self_feedback"]
    assert list(datasets) == ["self_feedback"]
    assert any(r["refined"] == "fixed answer" for r in rows)


def test_multicritique_builds_critiques_and_preference_pairs():
    unit = {"flaw": "The dose is wrong.", "severity": "critical", "suggestion": "Say 5 mg."}

    def compare(c):  # the revision is always better, wherever it sits
        text = user_text(c)
        a_part = text.split("<response_b>")[0]
        return '{"better": "A"}' if "Give 5 mg." in a_part else '{"better": "B"}'

    script = {
        "critique-accuracy": json.dumps({"units": [unit]}),
        "critique-completeness": json.dumps({"units": []}),
        "critique-clarity": "not json at all",
        "meta-critique": '{"valid": true, "reason": "real"}',
        "revise": "Give 5 mg.",
        "compare": compare,
    }
    run = FakeRun(script, multicritique={"enabled": True})
    records = recs("Give 50 mg.", "Give 10 mg.")
    outcome = run.apply(multicritique.multicritique_stage, records)
    out, datasets = outcome.records, outcome.datasets
    assert [r.id for r in out] == [r.id for r in records]
    mc = out[0].meta["multicritique"]
    assert list(mc) == [
        "critics",
        "meta_verdicts",
        "valid_units",
        "aggregated",
        "comparisons",
        "pairs",
    ]
    assert mc["meta_verdicts"] == {"accuracy": [True], "completeness": [], "clarity": []}
    assert mc["critics"]["completeness"] == []
    assert mc["critics"]["clarity"] == {"error": "judge_unparseable"}
    assert [u["critics"] for u in mc["aggregated"]] == [["accuracy"]]
    assert list(datasets) == ["critique_sft", "dpo"]
    assert len(datasets["dpo"]) == 2
    for pair in datasets["dpo"]:
        assert pair["chosen"][0]["content"] == "Give 5 mg." and pair["revision_preferred"]
    assert len(datasets["critique_sft"]) == 2
    assert len(run.asked["revise"]) == 2  # one per record: only accuracy had valid units


def test_critic_names_are_unique():
    critics = [
        CriticConfig(persona="accuracy"),
        CriticConfig(persona="accuracy", model="m"),
        CriticConfig(persona="accuracy", seed=5),
    ]
    assert critic_names(critics) == ["accuracy", "accuracy@m", "accuracy-3"]


def test_unknown_persona_is_a_recipe_error():
    with pytest.raises(ValueError, match="unknown critic persona 'tone'"):
        FakeRun({}, multicritique={"enabled": True, "critics": [{"persona": "tone"}]})


def test_skipped_judges_do_not_filter():
    run = FakeRun(
        {"s3ft-own": "Paris", "s3ft-paraphrase": "Rome"},
        rating={"enabled": True},
        s3ft={"enabled": True, "judge": "llm"},
        self_refine={"enabled": True},
    )
    why = "uncalibrated: agreement 0.5 < 0.6"
    records = recs("Paris.", "Lyon")
    kept = run.apply(rating.rating_stage, records, skipped=why).records
    assert [r.meta["rating"] for r in kept] == [{"skipped": why}] * 2
    # exact match instead of the LLM judge: no judge calls
    out = run.apply(s3ft.s3ft_stage, kept, skipped=why).records
    assert [r.meta["target_source"] for r in out] == ["own", "gold"]
    assert not any(stage.startswith("s3ft-judge") for stage in run.asked)
    outcome = run.apply(self_refine.self_refine_stage, out, skipped=why)
    kept, datasets = outcome.records, outcome.datasets
    assert [r.meta["self"] for r in kept] == [{"skipped": why}] * 2 and datasets == {}
    assert [(name, len(dropped)) for name, _, _, dropped in run.stages] == [
        ("rating", 0),
        ("s3ft", 0),
        ("self_refine", 0),
    ]


def test_skipped_comparison_judge_makes_no_pairs():
    unit = {"flaw": "Wrong.", "severity": "major", "suggestion": "Fix."}
    script = {
        "critique-accuracy": json.dumps({"units": [unit]}),
        "meta-critique": '{"valid": true, "reason": "r"}',
    }
    run = FakeRun(script, multicritique={"enabled": True, "critics": [{"persona": "accuracy"}]})
    outcome = run.apply(
        multicritique.multicritique_stage, recs("Give 50 mg."), skipped="uncalibrated"
    )
    out, datasets = outcome.records, outcome.datasets
    assert datasets["dpo"] == [] and "revise" not in run.asked
    assert out[0].meta["multicritique"]["comparison_skipped"] == "uncalibrated"
    assert len(datasets["critique_sft"]) == 1


def test_judge_records_gives_each_stage_its_skip_reason_and_returns_the_datasets():
    unit = {"flaw": "Wrong.", "severity": "major", "suggestion": "Fix."}
    script = {
        "critique-accuracy": json.dumps({"units": [unit]}),
        "meta-critique": '{"valid": true, "reason": "r"}',
    }
    run = FakeRun(
        script,
        rating={"enabled": True},
        self_refine={"enabled": True},
        multicritique={"enabled": True, "critics": [{"persona": "accuracy"}]},
    )
    why = "uncalibrated: agreement 0.5 < 0.6"
    skipped = dict.fromkeys(("rating", "self_feedback", "comparison"), why)
    stages = judged_stages(run.recipe, [], skipped)
    out, datasets = run_chain(run, run.tools(), stages, recs("Give 50 mg."))
    assert [name for name, *_ in run.stages] == ["rating", "self_refine", "multicritique"]
    assert out[0].meta["rating"] == out[0].meta["self"] == {"skipped": why}
    assert out[0].meta["multicritique"]["comparison_skipped"] == why
    assert list(datasets) == ["critique_sft", "dpo"] and datasets["dpo"] == []
    assert len(datasets["critique_sft"]) == 1
    assert set(run.asked) == {"critique-accuracy", "meta-critique"}
