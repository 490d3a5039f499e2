from pathlib import Path

from filters.decontam import decontaminate
from flows.recipe import validated
from flows.stages.decontaminate import decontaminate_stage, heldout_index, heldout_sources
from generators.records import Record
from generators.seeds import load_seeds
from tests.flows.fake_run import FakeRun

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = str(ROOT / "data/biomed/heldout_qa.jsonl")
GENERAL = str(ROOT / "data/general/user_oriented_instructions.jsonl")
QUESTION = (
    "In heart muscle, what is the name for the process in which a small calcium influx through "
    "L-type channels triggers a much larger calcium release from the sarcoplasmic reticulum?"
)


def recipe(**sections):
    data = {"name": "t", "seeds": "s.jsonl", "corpus": {"path": "c.jsonl"}, **sections}
    return validated(data, "t")


def test_heldout_sources_are_the_existing_files_each_once():
    r = recipe(
        train={"eval": {"domain": DOMAIN, "general": GENERAL}},
        calibration={"check_set": DOMAIN},
    )
    assert heldout_sources(r) == [DOMAIN, GENERAL]
    assert heldout_sources(recipe(calibration={"check_set": str(ROOT / "missing.jsonl")})) == []


def test_heldout_index_finds_a_copied_question_and_no_seed():
    index = heldout_index([DOMAIN, GENERAL], 13)
    assert index.texts > 100 and len(index) > 1000
    assert index.match(f"Answer this. {QUESTION.lower()}") is not None
    seeds = load_seeds(str(ROOT / "data/biomed/seeds.jsonl"))[:20]
    records = [Record(s.instruction, *(s.instances[0] if s.instances else ())) for s in seeds]
    kept, dropped = decontaminate(records, index)
    assert len(kept) == 20 and dropped == []


def stand_in(recipe) -> FakeRun:
    """A fake run (no LLM) with `recipe`."""
    run = FakeRun()
    run.recipe = recipe
    return run


def test_decontaminate_stage_drops_and_counts():
    run = stand_in(recipe(train={"eval": {"domain": DOMAIN}}))
    records = [Record(instruction=QUESTION), Record(instruction="Explain ATP.")]
    outcome = decontaminate_stage(run.tools(), records)
    assert [r.instruction for r in outcome.records] == ["Explain ATP."]
    [step] = outcome.steps
    [reason] = [r.meta["drop_reason"] for r in step.dropped]
    assert (step.name, step.n_in, len(step.kept)) == ("decontaminate", 2, 1)
    assert reason.startswith("contaminated_")
    section = outcome.manifest["decontamination"]
    assert section["by_heldout"] == {reason.removeprefix("contaminated_"): 1}
    assert section["checked"] == 2 and section["sources"] == [DOMAIN]


def test_decontaminate_stage_off_or_without_sources_passes_through():
    records = [Record(instruction=QUESTION)]
    for r in (
        recipe(),
        recipe(train={"eval": {"domain": DOMAIN}}, decontaminate={"enabled": False}),
    ):
        outcome = decontaminate_stage(stand_in(r).tools(), records)
        assert outcome.records == records and outcome.steps == [] and outcome.manifest == {}
