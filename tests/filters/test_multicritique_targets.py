import pytest

from filters.multicritique_targets import (
    MERGE_JACCARD,
    critique_sft_row,
    merge_units,
    preference_pair,
    summary,
)
from flows.export import user_message
from generators.errors import SelfAlignError
from generators.records import Record

HORMONE = "<instruction>\nName the hormone that lowers blood glucose.\n</instruction>\n\n"
UNIT = {"flaw": "Names the wrong hormone.", "severity": "critical", "suggestion": "Say insulin."}


# --- merging --------------------------------------------------------------------------------------


def _unit(flaw, severity, critic, suggestion=""):
    return {"flaw": flaw, "severity": severity, "suggestion": suggestion, "critic": critic}


def test_merge_units_groups_paraphrases_with_highest_severity_and_all_critics():
    units = [
        _unit("The answer names the wrong hormone.", "major", "accuracy"),
        _unit("Minor typo in the word glucose.", "minor", "clarity", "Fix the typo."),
        _unit("Names the wrong hormone: glucagon.", "critical", "completeness", "Say insulin."),
        _unit("It names the wrong hormone!", "minor", "accuracy", "Use insulin."),
        _unit("Does not explain the mechanism.", "major", "completeness", "Explain how."),
    ]
    assert merge_units(units) == [
        {
            "flaw": "The answer names the wrong hormone.",
            "severity": "critical",
            "suggestion": "Say insulin.",
            "critics": ["accuracy", "completeness"],
        },
        {
            "flaw": "Does not explain the mechanism.",
            "severity": "major",
            "suggestion": "Explain how.",
            "critics": ["completeness"],
        },
        {
            "flaw": "Minor typo in the word glucose.",
            "severity": "minor",
            "suggestion": "Fix the typo.",
            "critics": ["clarity"],
        },
    ]
    assert merge_units(units) == merge_units(units)  # deterministic


def test_merge_threshold_normalises_case_and_punctuation():
    assert MERGE_JACCARD == 0.5
    half = [_unit("Wrong dose given.", "minor", "b"), _unit("wrong DOSE stated!", "minor", "a")]
    assert merge_units(half) == [
        {"flaw": "Wrong dose given.", "severity": "minor", "suggestion": "", "critics": ["a", "b"]}
    ]  # {wrong, dose} of 4 words = 0.5
    apart = [_unit("Wrong dose.", "minor", "a"), _unit("Wrong unit here.", "minor", "a")]
    assert [u["flaw"] for u in merge_units(apart)] == ["Wrong dose.", "Wrong unit here."]


def test_merge_orders_by_severity_then_first_appearance():
    units = [
        _unit("Alpha flaw.", "minor", "a"),
        _unit("Beta flaw here.", "major", "a"),
        _unit("Gamma problem.", "bogus", "b"),  # unknown severity counts as major
        _unit("Delta issue.", "critical", "b"),
    ]
    flaws = [(u["flaw"], u["severity"]) for u in merge_units(units)]
    assert flaws == [
        ("Delta issue.", "critical"),
        ("Beta flaw here.", "major"),
        ("Gamma problem.", "major"),
        ("Alpha flaw.", "minor"),
    ]
    assert merge_units([]) == []


# --- critique-SFT target --------------------------------------------------------------------------


def test_critique_sft_row_is_persona_neutral_and_keeps_the_id():
    record = Record(
        instruction="Name the hormone that lowers blood glucose.", input="x<y", output="Glucagon."
    )
    row = critique_sft_row(record, [UNIT])
    assert row == {
        "id": record.id,
        "messages": [
            {
                "role": "user",
                "content": "List up to 3 concrete flaws in the response to the instruction, each "
                "with a severity (minor, major or critical) and a suggestion that fixes it. "
                "Look for any flaw: wrong claims, missing parts, unclear or unsupported "
                "writing.\n\n"
                + HORMONE
                + "<input>\nx&lt;y\n</input>\n\n<response>\nGlucagon.\n</response>\n\nReply with "
                'one numbered line per flaw, "1. [severity] flaw — Suggestion: fix", or "No '
                'significant flaws: the response is correct and complete." when there is none.',
            },
            {
                "role": "assistant",
                "content": "1. [critical] Names the wrong hormone. — Suggestion: Say insulin.",
            },
        ],
    }
    assert record.id == Record(instruction=record.instruction, input="x<y").id


# --- preference pairs -----------------------------------------------------------------------------

RECORD = Record(instruction="Name the hormone that lowers blood glucose.", input="A patient asks.")
ORIGINAL, REVISION = "Glucagon.", "Insulin."


def _pair(chosen, rejected, preferred):
    return {
        "id": RECORD.id,
        "critic": "accuracy",
        "prompt": [{"role": "user", "content": f"{RECORD.instruction}\n\nA patient asks."}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "revision_preferred": preferred,
    }


@pytest.mark.parametrize(
    ("verdict", "revision_is_a", "preferred"),
    [("A", True, True), ("B", False, True), ("B", True, False), ("A", False, False)],
)
def test_preference_pair_follows_the_verdict_and_position(verdict, revision_is_a, preferred):
    pair = preference_pair(RECORD, ORIGINAL, REVISION, verdict, revision_is_a, "accuracy")
    expected = _pair(REVISION, ORIGINAL, True) if preferred else _pair(ORIGINAL, REVISION, False)
    assert pair == expected
    assert pair["prompt"][0]["content"] == user_message(RECORD)  # the prompt export writes


def test_preference_pair_prompt_without_input():
    record = Record(instruction="Define ATP.", input="  ")
    pair = preference_pair(record, "x", "y", "A", True, "clarity")
    assert pair["prompt"] == [{"role": "user", "content": "Define ATP."}]


@pytest.mark.parametrize(
    ("original", "revision", "verdict"),
    [
        (ORIGINAL, REVISION, "tie"),
        (ORIGINAL, REVISION, "judge_unparseable"),
        (ORIGINAL, " Glucagon.\n", "A"),  # identical once stripped
    ],
)
def test_no_preference_pair_for_ties_reasons_or_identical_texts(original, revision, verdict):
    assert preference_pair(RECORD, original, revision, verdict, True, "accuracy") is None


# --- summary --------------------------------------------------------------------------------------


def test_summary_tags_valid_units_with_their_critic_and_merges_them():
    other = {"flaw": "Too terse.", "severity": "minor", "suggestion": ""}
    meta = summary(
        {"accuracy": [UNIT, other], "clarity": "judge_unparseable", "completeness": [UNIT]},
        [True, "judge_unparseable", True],
    )
    assert meta == {
        "critics": {
            "accuracy": [UNIT, other],
            "clarity": {"error": "judge_unparseable"},
            "completeness": [UNIT],
        },
        "meta_verdicts": {
            "accuracy": [True, "judge_unparseable"],
            "clarity": [],
            "completeness": [True],
        },
        "valid_units": [{**UNIT, "critic": "accuracy"}, {**UNIT, "critic": "completeness"}],
        "aggregated": [{**UNIT, "critics": ["accuracy", "completeness"]}],
    }
    # the order the flow writes meta["multicritique"] in (exports keep it)
    assert list(meta) == ["critics", "meta_verdicts", "valid_units", "aggregated"]


def test_summary_needs_one_verdict_per_unit():
    with pytest.raises(SelfAlignError):
        summary({"accuracy": [UNIT]}, [])
