"""Every judged stage and the judge calibration on the real default model, over a few demo records.

The records are demo seed tasks with their human answers, plus one deliberately wrong answer and
one near-duplicate, so each stage has something to keep, drop, or rewrite. The 135M model is a
weak judge: the assertions check the contracts (counts, reasons, lineage, exported files), not
that its verdicts are right.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.rating import EMPTY_REPLY, UNPARSEABLE
from flows.rundir import read_records
from flows.tasks import LLM_CALLS
from generators.records import Record
from generators.seeds import load_seeds
from tests.flows.test_flow import small_corpus

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[2] / "data" / "biomed"
JUDGE_REASONS = {EMPTY_REPLY, UNPARSEABLE}
JUDGED_STAGES = [
    "minhash_dedup",
    "embedding_dedup",
    "rating",
    "s3ft",
    "self_refine",
    "multicritique",
]
CALIBRATED = {"rating", "s3ft_equivalence", "self_feedback", "comparison"}


def demo_records() -> list[Record]:
    seeds = [s for s in load_seeds(DATA / "seeds.jsonl") if s.instances][:4]
    records = [
        Record(instruction=s.instruction, input=s.instances[0][0], output=s.instances[0][1])
        for s in seeds
    ]
    wrong = Record(
        instruction="What is the normal pH range of human arterial blood?",
        output="Arterial blood is strongly acidic, with a normal pH of about 4.0 to 4.5.",
    )
    twin = Record(
        instruction=records[0].instruction + " Please.",
        input=records[0].input,
        output=records[0].output,
    )
    return [*records, wrong, twin]


def judged_recipe(tmp_path: Path) -> dict:
    return {
        "name": "judged",
        "seed": 1,
        "seeds": str(DATA / "seeds.jsonl"),
        "corpus": {"path": str(small_corpus(tmp_path))},
        "model": {"backend": "vllm"},
        "batch_records": 4,
        "dedup": {"minhash": True, "embedding": True},
        # the 135M judge scores nearly all 1; short verdicts (an unparseable one is a reason too)
        "rating": {"enabled": True, "threshold": 1, "max_tokens": 48},
        "s3ft": {"enabled": True, "judge": "llm", "max_tokens": 64, "judge_max_tokens": 48},
        "self_refine": {
            "enabled": True,
            "max_steps": 1,
            "max_tokens": 64,
            "feedback_max_tokens": 64,
        },
        "multicritique": {"enabled": True, "max_tokens": 96},
        "calibration": {"check_set": str(DATA / "heldout_qa.jsonl"), "size": 3},
        "runs_dir": str(tmp_path / "runs"),
    }


@pytest.fixture(scope="module")
def judged_run(vllm_llm, prefect_harness, tmp_path_factory):
    """All judged stages once on the demo records; returns (run, {stage: (in, out)}), the extra
    datasets under "datasets"."""
    from flows.recipe import Recipe
    from flows.run import Run
    from flows.stages.calibrate import calibrate, skipped_judges
    from flows.stages.judges import dedup, multicritique, rating, s3ft, self_refine

    def apply(stage, records, skipped=None):
        outcome = stage(run.tools(), records, [], skipped)
        return run.record(outcome), outcome.datasets

    tmp = tmp_path_factory.mktemp("judged")
    run = Run.start(Recipe.model_validate(judged_recipe(tmp)))
    before = LLM_CALLS["conversations"]
    # none skipped: the recipe's calibration.on_low is 'warn'; the manifest gets the result
    run.sections["calibration"] = calibration = calibrate(run.tools())
    skipped = skipped_judges(calibration)
    records = demo_records()
    seen = {}
    deduped, _ = apply(dedup.dedup_stages, records)
    seen["dedup"] = (records, deduped)
    rated, _ = apply(rating.rating_stage, deduped, skipped.get("rating"))
    seen["rating"] = (deduped, rated)
    targets, _ = apply(s3ft.s3ft_stage, rated, skipped.get("s3ft_equivalence"))
    seen["s3ft"] = (rated, targets)
    refined, feedback = apply(self_refine.self_refine_stage, targets, skipped.get("self_feedback"))
    seen["self_refine"] = (targets, refined)
    # the weak 135M judge may reject every answer: critique the S3FT targets then
    critique_in = refined or targets
    critiqued, critiques = apply(
        multicritique.multicritique_stage, critique_in, skipped.get("comparison")
    )
    seen["multicritique"] = (critique_in, critiqued)
    seen["datasets"] = {**feedback, **critiques}
    run.finish(critiqued, 0.0, seen["datasets"])
    seen["calls"] = LLM_CALLS["conversations"] - before
    return run, seen


def test_dedup_drops_the_near_duplicate_naming_the_original(judged_run):
    run, seen = judged_run
    records, kept = seen["dedup"]
    twin = records[-1]
    assert twin.id not in {r.id for r in kept} and len(kept) == len(records) - 1
    dropped = {r.id: r for r in run.rejected}
    assert dropped[twin.id].meta["drop_reason"].endswith(f"duplicate_of_{records[0].id}")
    assert dropped[twin.id].meta["dedup"]["duplicate_of"] == records[0].id


def test_rating_scores_every_record_or_drops_with_a_reason(judged_run):
    run, seen = judged_run
    records, kept = seen["rating"]
    rated = {r.id for r in kept} | {r.id for r in run.rejected if r.meta["dropped_by"] == "rating"}
    assert rated == {r.id for r in records}
    assert kept, "the rating stage kept nothing: the later stages judged nothing"
    for r in kept:
        assert 1 <= r.meta["rating"]["score"] <= 5
    for r in run.rejected:
        if r.meta["dropped_by"] == "rating":
            reason = r.meta["drop_reason"]
            assert reason in JUDGE_REASONS or reason.startswith("judge_score_"), reason


def test_rating_threshold_drops_the_records_scored_under_it(judged_run):
    """The fixture's threshold (1) keeps every parsed score; the same replies (from the cache: no
    new LLM call) under a threshold above the lowest score must drop exactly those below it."""
    from filters.rating import apply_ratings, build_rating_prompt, rating_sampling
    from flows.stages.judges.rating import RATING

    run, seen = judged_run
    records, kept = seen["rating"]
    scores = {r.id: r.meta["rating"]["score"] for r in kept}
    threshold = min(min(scores.values()) + 1, 5)
    prompts = [build_rating_prompt(r.instruction, r.input, r.output) for r in records]
    before = LLM_CALLS["conversations"]
    sampling = rating_sampling(run.recipe.rating.max_tokens)
    replies = run.llm_all("rating", prompts, sampling, code=RATING)
    assert LLM_CALLS["conversations"] == before
    kept_now, dropped_now = apply_ratings(records, replies, threshold)
    assert {r.id for r in kept_now} == {i for i, s in scores.items() if s >= threshold}
    under = {r.id: r.meta["drop_reason"] for r in dropped_now if r.id in scores}
    assert under and under == {
        i: f"judge_score_{s}_lt_{threshold}" for i, s in scores.items() if s < threshold
    }


def test_s3ft_gives_every_record_a_target_source(judged_run):
    _, seen = judged_run
    records, out = seen["s3ft"]
    assert [r.id for r in out] == [r.id for r in records]
    golds = {r.id: r.output for r in records}
    for r in out:
        s3 = r.meta["s3ft"]
        assert r.meta["target_source"] == s3["target_source"] in ("own", "paraphrase", "gold")
        assert s3["gold"] == golds[r.id]
        expected = {"own": s3["own"], "paraphrase": s3["paraphrase"], "gold": s3["gold"]}
        assert r.output == expected[s3["target_source"]]
        assert s3["own"] is None or isinstance(s3["own"], str)


def test_self_refine_keeps_only_what_its_feedback_accepts(judged_run):
    run, seen = judged_run
    records, kept = seen["self_refine"]
    dropped = [r for r in run.rejected if r.meta["dropped_by"] == "self_refine"]
    assert len(kept) + len(dropped) == len(records)
    for r in kept:
        steps = r.meta["self"]["steps"]
        assert steps[-1]["correct"] is True
        assert r.meta["self"]["accepted_at_step"] == len(steps) - 1
    for r in dropped:
        reason = r.meta["drop_reason"]
        allowed = JUDGE_REASONS | {"refinement_empty", "refinement_lowers_support"}
        assert reason in allowed or reason.startswith("self_feedback_incorrect_after_"), reason
    # one feedback row per parsed judged step, kept and dropped records alike
    steps = [
        step
        for r in kept + dropped
        for step in r.meta.get("self", {}).get("steps", [])
        if "error" not in step
    ]
    rows = seen["datasets"]["self_feedback"]
    assert records and len(rows) == len(steps)
    assert {row["id"] for row in rows} <= {r.id for r in records}
    for row in rows:
        assert row["verdict"] in ("correct", "incorrect") and row["messages"][1]["content"]


def test_multicritique_records_critiques_and_pairs(judged_run):
    _, seen = judged_run
    records, out = seen["multicritique"]
    assert [r.id for r in out] == [r.id for r in records]
    for r in out:
        mc = r.meta["multicritique"]
        assert set(mc["critics"]) == {"accuracy", "completeness", "clarity"}
        for unit in mc["valid_units"]:
            assert unit["flaw"] and unit["severity"] in ("minor", "major", "critical")
    for pair in seen["datasets"]["dpo"]:
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
        assert pair["prompt"][0]["role"] == "user"
    for row in seen["datasets"]["critique_sft"]:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]


def test_calibration_measures_each_judge_used(judged_run):
    run, _ = judged_run
    result = json.loads((run.dir / "calibration.json").read_text())
    assert set(result["judges"]) == CALIBRATED
    for metrics in result["judges"].values():
        counts = [metrics[k] for k in ("tp", "fp", "tn", "fn", "unparseable")]
        assert metrics["n"] == 6 == sum(counts) and min(counts) >= 0
        assert metrics["agreement"] == round((metrics["tp"] + metrics["tn"]) / 6, 4)


def test_export_tells_why_every_rejected_record_was_dropped(judged_run):
    run, seen = judged_run
    assert seen["calls"] > 0
    export = run.dir / "export"
    rejected = [json.loads(line) for line in (export / "rejected.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejected} == {r.id for r in run.rejected}
    for row in rejected:
        assert row["stage"] == row["meta"]["dropped_by"] and row["reason"]
    card = (export / "README.md").read_text()
    assert "## Judge calibration" in card and "| rating |" in card
    for name in ("self_feedback", "critique_sft", "dpo"):
        lines = (export / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == len(seen["datasets"][name])
    assert "## S3FT training targets" in card
    assert [s["stage"] for s in run.stages] == JUDGED_STAGES
    for number, stage in enumerate(run.stages):
        folder = run.dir / "stages" / f"{number:02d}-{stage['stage']}"
        assert len(read_records(folder / "kept.parquet")) == stage["kept"]
        assert stage["seconds"] >= 0


def test_judged_recipe_end_to_end_then_rerun_makes_no_llm_calls(
    vllm_llm, prefect_harness, tmp_path
):
    from flows.pipeline import self_specialize

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        '{"instruction": "What does insulin do?", "output": "It lowers blood glucose."}\n'
        '{"instruction": "Name the largest artery.", "output": "The aorta."}\n'
    )
    recipe = judged_recipe(tmp_path)
    recipe.update(
        name="judged-flow",
        generate={"prompts": 2, "batch_prompts": 2, "new_per_prompt": 3, "max_tokens": 120},
        instances={"max_tokens": 64},
        respond={"max_tokens": 64},
        batch_records=8,
        calibration={**recipe["calibration"], "size": 2},
        s3ft={**recipe["s3ft"], "gold_set": str(gold)},
    )
    before = LLM_CALLS["conversations"]
    run_dir = Path(self_specialize(recipe=recipe))
    assert LLM_CALLS["conversations"] > before
    manifest = json.loads((run_dir / "manifest.json").read_text())
    names = [s["stage"] for s in manifest["stages"]]
    assert names[-9:] == ["respond", "grounding", *JUDGED_STAGES, "decontaminate"]
    assert set(manifest["calibration"]["judges"]) == set(CALIBRATED)
    s3ft_counts = manifest["stages"][names.index("s3ft")]
    assert s3ft_counts["kept"] == s3ft_counts["in"] >= 2  # the gold set at least
    export = run_dir / "export"
    train = (export / "train.jsonl").read_bytes()
    kept = [json.loads(line) for line in train.decode().splitlines()]
    assert len(kept) == manifest["records"]
    assert all(row["meta"]["target_source"] in ("own", "paraphrase", "gold") for row in kept)
    rejected = (export / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == sum(s["dropped"] for s in manifest["stages"])

    before = LLM_CALLS["conversations"]
    self_specialize(recipe=recipe)
    assert LLM_CALLS["conversations"] == before
    assert (export / "train.jsonl").read_bytes() == train
