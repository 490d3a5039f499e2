from contextlib import nullcontext
from pathlib import Path

from filters.decontam import decontaminate
from flows.recipe import validated
from flows.stages.decontaminate import decontaminate_stage, heldout_index, heldout_sources
from generators.records import Record
from generators.seeds import load_seeds

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


class StandInRun:
    """The parts of flows.run.Run the stage uses."""

    def __init__(self, recipe):
        self.recipe, self.stages, self.decontamination = recipe, [], {}

    def timed(self, stage):
        return nullcontext()

    def stage(self, name, n_in, kept, dropped):
        self.stages.append((name, n_in, len(kept), [r.meta["drop_reason"] for r in dropped]))


def test_decontaminate_stage_drops_and_counts():
    run = StandInRun(recipe(train={"eval": {"domain": DOMAIN}}))
    records = [Record(instruction=QUESTION), Record(instruction="Explain ATP.")]
    kept = decontaminate_stage(run, records)
    assert [r.instruction for r in kept] == ["Explain ATP."]
    reason = run.stages[0][3][0]
    assert run.stages == [("decontaminate", 2, 1, [reason])] and reason.startswith("contaminated_")
    assert run.decontamination["by_heldout"] == {reason.removeprefix("contaminated_"): 1}
    assert run.decontamination["checked"] == 2 and run.decontamination["sources"] == [DOMAIN]


def test_decontaminate_stage_off_or_without_sources_passes_through():
    records = [Record(instruction=QUESTION)]
    for r in (
        recipe(),
        recipe(train={"eval": {"domain": DOMAIN}}, decontaminate={"enabled": False}),
    ):
        run = StandInRun(r)
        assert decontaminate_stage(run, records) == records and run.stages == []
