import json

import pytest

from filters.self_refine import (
    FEEDBACK_SCHEMA,
    STAGE,
    apply_feedback,
    apply_refinements,
    feedback_prompt,
    feedback_sampling,
    meta_skill_rows,
    parse_feedback,
    parse_refinement,
    refine_prompt,
)
from generators.errors import SelfAlignError
from generators.llm import Sampling
from generators.records import Record

# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '{"analysis": "Glucagon raises glucose.", "verdict": "incorrect"}',
            {"analysis": "Glucagon raises glucose.", "correct": False},
        ),
        (
            '{"analysis": "Accurate.", "verdict": "correct"}',
            {"analysis": "Accurate.", "correct": True},
        ),
        ('{"verdict": "Correct"}', {"analysis": "", "correct": True}),  # analysis missing
        ('{"verdict": "INCORRECT."}', {"analysis": "", "correct": False}),
        ('{"verdict": true, "analysis": "ok"}', {"analysis": "ok", "correct": True}),
        ('{"verdict": false}', {"analysis": "", "correct": False}),
        ('{"verdict": "yes"}', {"analysis": "", "correct": True}),
        ('{"verdict": "No"}', {"analysis": "", "correct": False}),
        ('{"verdict": "right"}', {"analysis": "", "correct": True}),
        ('{"verdict": "wrong"}', {"analysis": "", "correct": False}),
        ('{"verdict": "not correct"}', {"analysis": "", "correct": False}),
        (
            "{'analysis': \"It's right.\", 'verdict': 'correct'}",
            {"analysis": "It's right.", "correct": True},
        ),
        (
            '```json\n{"analysis": "Misses the dose.", "verdict": "incorrect"}\n```',
            {"analysis": "Misses the dose.", "correct": False},
        ),
        (
            'Sure: {"analysis": "Has a } brace.", "verdict": "correct"} Done.',
            {"analysis": "Has a } brace.", "correct": True},
        ),
        ('{"analysis": 3, "verdict": "correct"}', {"analysis": "", "correct": True}),
        # free text
        ("Verdict: incorrect", {"analysis": "", "correct": False}),
        ("Verdict: correct", {"analysis": "", "correct": True}),
        (
            "Analysis: The dose is wrong.\nVerdict: Incorrect.",
            {"analysis": "The dose is wrong.", "correct": False},
        ),
        ("**Verdict:** Correct", {"analysis": "", "correct": True}),
        ("Verdict: the response is incorrect because it", {"analysis": "", "correct": False}),
        ("My verdict is based on facts. Verdict: wrong", {"analysis": "", "correct": False}),
        ("The answer is accurate and complete.\nCorrect.", {"analysis": "", "correct": True}),
        ("It confuses the two hormones.\nIncorrect.", {"analysis": "", "correct": False}),
        ("It confuses the two hormones.\n**Not correct**", {"analysis": "", "correct": False}),
        # truncated
        ('{"verdict": "correct", "analysis": "Fine', {"analysis": "", "correct": True}),
        ('{"verdict": "incorrect", "analysis": "The dose', {"analysis": "", "correct": False}),
        ('{"analysis": "The answer misses', "judge_unparseable"),
        # malformed or empty
        ('{"verdict": "maybe", "analysis": "Verdict: correct"}', "judge_unparseable"),
        ('{"verdict": 1}', "judge_unparseable"),
        ("Verdict: no errors, but it is long.", "judge_unparseable"),
        ("The response looks correct to me.", "judge_unparseable"),
        ("}{ not json {", "judge_unparseable"),
        ("", "judge_empty_reply"),
        (" \n ", "judge_empty_reply"),
    ],
)
def test_parse_feedback(reply, expected):
    assert parse_feedback(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "incorrect",
        "Incorrect.",
        "Verdict: incorrect",
        '{"verdict": "incorrect"}',
        "VERDICT=INCORRECT",
    ],
)
def test_incorrect_is_never_read_as_correct(reply):
    assert parse_feedback(reply) == {"analysis": "", "correct": False}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("  Insulin lowers blood glucose.\n", "Insulin lowers blood glucose."),
        ("Improved response: Insulin.", "Insulin."),
        (
            "Refined response:\nInsulin.\n\nIt is made in the pancreas.",
            "Insulin.\n\nIt is made in the pancreas.",
        ),
        ("**Improved response:** Insulin.", "Insulin."),
        ("<response>\nInsulin.\n</response>", "Insulin."),
        ("The improved response: keeps this label.", "The improved response: keeps this label."),
        ("", None),
        ("  \n", None),
        ("Improved response:   ", None),
    ],
)
def test_parse_refinement(reply, expected):
    assert parse_refinement(reply) == expected


def test_feedback_sampling_is_greedy_with_optional_schema():
    assert feedback_sampling() == Sampling(
        max_tokens=160, temperature=0.0, json_schema=FEEDBACK_SCHEMA
    )
    assert feedback_sampling(64, use_schema=False) == Sampling(max_tokens=64, temperature=0.0)
    assert FEEDBACK_SCHEMA["required"] == ["analysis", "verdict"]
    assert FEEDBACK_SCHEMA["properties"]["verdict"] == {
        "type": "string",
        "enum": ["correct", "incorrect"],
    }
    assert FEEDBACK_SCHEMA["properties"]["analysis"]["maxLength"] == 400


# --- the loop -------------------------------------------------------------------------------------

OK = '{"analysis": "Accurate.", "verdict": "correct"}'


def bad(why: str) -> str:
    return json.dumps({"analysis": why, "verdict": "incorrect"})


# (instruction, step) -> the model's feedback on that step's response
FEEDBACK = {
    ("Task A.", 0): OK,
    ("Task B.", 0): bad("Misses the unit."),
    ("Task B.", 1): OK,
    ("Task C.", 0): bad("Wrong."),
    ("Task C.", 1): bad("Still wrong."),
    ("Task C.", 2): bad("Wrong again."),
    ("Task D.", 0): "I cannot judge this.",
    ("Task E.", 0): bad("Too short."),
}
# (instruction, step) -> the model's refinement after that step's feedback
REFINEMENTS = {
    ("Task B.", 0): "Improved response: 5 kg.",
    ("Task C.", 0): "C v1.",
    ("Task C.", 1): "C v2.",
    ("Task E.", 0): "  ",
}


def run_loop(records, max_steps):
    """The flow's loop with scripted replies: (accepted, dropped, conversations sent)."""
    accepted, dropped, sent = [], [], []
    pending = records
    for step in range(max_steps + 1):
        if not pending:
            break
        convs = [feedback_prompt(r.instruction, r.input, r.output) for r in pending]
        sent.extend(convs)
        ok, to_refine, lost = apply_feedback(
            pending, [[FEEDBACK[(r.instruction, step)]] for r in pending], step, max_steps
        )
        accepted += ok
        dropped += lost
        convs = [
            refine_prompt(r.instruction, r.input, r.output, r.meta["self"]["steps"][-1]["analysis"])
            for r in to_refine
        ]
        sent.extend(convs)
        pending, lost = apply_refinements(
            to_refine, [[REFINEMENTS[(r.instruction, step)]] for r in to_refine], step
        )
        dropped += lost
    return accepted, dropped, sent


RECORDS = [Record(instruction=f"Task {x}.", output=f"{x} v0.") for x in "ABCDE"]


def test_two_step_loop_accepts_refines_and_drops():
    accepted, dropped, sent = run_loop(RECORDS, max_steps=2)
    ids = {r.instruction: r.id for r in RECORDS}
    assert all(r.id == ids[r.instruction] for r in accepted + dropped)

    assert [(r.instruction, r.output, r.meta) for r in accepted] == [
        (
            "Task A.",
            "A v0.",  # kept unchanged
            {
                "self": {
                    "steps": [
                        {
                            "step": 0,
                            "response": "A v0.",
                            "feedback": OK,
                            "analysis": "Accurate.",
                            "correct": True,
                        }
                    ],
                    "accepted_at_step": 0,
                    "refined": False,
                }
            },
        ),
        (
            "Task B.",
            "5 kg.",
            {
                "self": {
                    "steps": [
                        {
                            "step": 0,
                            "response": "B v0.",
                            "feedback": bad("Misses the unit."),
                            "analysis": "Misses the unit.",
                            "correct": False,
                            "refined": "5 kg.",
                        },
                        {
                            "step": 1,
                            "response": "5 kg.",
                            "feedback": OK,
                            "analysis": "Accurate.",
                            "correct": True,
                        },
                    ],
                    "accepted_at_step": 1,
                    "refined": True,
                }
            },
        ),
    ]

    assert [
        (r.instruction, r.output, r.meta["dropped_by"], r.meta["drop_reason"]) for r in dropped
    ] == [
        ("Task D.", "D v0.", STAGE, "judge_unparseable"),
        ("Task E.", "E v0.", STAGE, "refinement_empty"),
        ("Task C.", "C v2.", STAGE, "self_feedback_incorrect_after_2_refinements"),
    ]
    d, e, c = dropped
    assert d.meta["self"] == {
        "steps": [
            {
                "step": 0,
                "response": "D v0.",
                "feedback": "I cannot judge this.",
                "error": "judge_unparseable",
            }
        ]
    }
    assert e.meta["self"]["steps"] == [
        {
            "step": 0,
            "response": "E v0.",
            "feedback": bad("Too short."),
            "analysis": "Too short.",
            "correct": False,
        }
    ]
    assert [
        (s["step"], s["response"], s["correct"], s.get("refined")) for s in c.meta["self"]["steps"]
    ] == [
        (0, "C v0.", False, "C v1."),
        (1, "C v1.", False, "C v2."),
        (2, "C v2.", False, None),
    ]
    assert "accepted_at_step" not in c.meta["self"]

    # the step-1 feedback judges the refined text, and each refinement sees its feedback
    assert feedback_prompt("Task B.", "", "5 kg.") in sent
    assert refine_prompt("Task C.", "", "C v1.", "Still wrong.") in sent
    assert len(sent) == 5 + 3 + 2 + 1 + 1  # step 0: 5 + 3; step 1: B, C + C; step 2: C


def test_meta_skill_rows_cover_kept_and_dropped_transitions():
    accepted, dropped, _ = run_loop(RECORDS, max_steps=2)
    rows = meta_skill_rows(accepted + dropped)
    assert [(r["instruction"], r["step"], r["verdict"], r["refined"]) for r in rows] == [
        ("Task A.", 0, "correct", None),
        ("Task B.", 0, "incorrect", "5 kg."),
        ("Task B.", 1, "correct", None),
        ("Task E.", 0, "incorrect", None),  # its refinement was empty; Task D. had no feedback
        ("Task C.", 0, "incorrect", "C v1."),
        ("Task C.", 1, "incorrect", "C v2."),
        ("Task C.", 2, "incorrect", None),
    ]
    b0 = rows[1]
    assert b0 == {
        "id": RECORDS[1].id,
        "step": 0,
        "instruction": "Task B.",
        "input": "",
        "response": "B v0.",
        "feedback": "Misses the unit.",
        "verdict": "incorrect",
        "refined": "5 kg.",
        "messages": [
            {"role": "user", "content": feedback_prompt("Task B.", "", "B v0.")[1]["content"]},
            {
                "role": "assistant",
                "content": '{"analysis": "Misses the unit.", "verdict": "incorrect"}',
            },
        ],
        "refine_messages": [
            {
                "role": "user",
                "content": refine_prompt("Task B.", "", "B v0.", "Misses the unit.")[1]["content"],
            },
            {"role": "assistant", "content": "5 kg."},
        ],
    }
    assert rows[2]["messages"][1]["content"] == '{"analysis": "Accurate.", "verdict": "correct"}'
    assert "refine_messages" not in rows[2]
    assert (
        rows[2]["messages"][0]["content"] == feedback_prompt("Task B.", "", "5 kg.")[1]["content"]
    )
    assert meta_skill_rows([Record(instruction="No SELF meta.")]) == []


def test_meta_skill_rows_keep_input_and_non_ascii():
    record = Record(instruction="Übersetze.", input="Hallo", output="Hi")
    [accepted], _, _ = apply_feedback(
        [record], [['{"analysis": "Richtig – gut.", "verdict": "correct"}']], 0, 1
    )
    [row] = meta_skill_rows([accepted])
    assert row["input"] == "Hallo"
    assert row["messages"][1]["content"] == '{"analysis": "Richtig – gut.", "verdict": "correct"}'
    assert "<input>\nHallo\n</input>" in row["messages"][0]["content"]


def test_apply_feedback_does_not_mutate_input_meta():
    steps = [{"step": 0, "response": "x", "feedback": "f", "analysis": "a", "correct": False}]
    record = Record(instruction="Q?", output="y", meta={"self": {"steps": steps}, "round": 2})
    accepted, _, _ = apply_feedback([record], [[OK]], 1, 2)
    assert record.meta == {"self": {"steps": steps}, "round": 2}
    assert len(steps) == 1
    assert accepted[0].meta["round"] == 2
    assert [s["step"] for s in accepted[0].meta["self"]["steps"]] == [0, 1]
    to_refine = _incorrect_at(0)
    refined, _ = apply_refinements(to_refine, [["Better."]], 0)
    assert "refined" not in to_refine[0].meta["self"]["steps"][-1]
    assert (to_refine[0].output, refined[0].output) == ("A.", "Better.")
    assert refined[0].id == to_refine[0].id
    assert refined[0].meta["self"]["steps"][-1]["refined"] == "Better."


def _incorrect_at(step):
    return apply_feedback([Record(instruction="Q?", output="A.")], [[bad("No.")]], step, 1)[1]


def test_max_steps_zero_drops_incorrect_at_once():
    accepted, to_refine, dropped = apply_feedback(
        [Record(instruction="Q?", output="A.")], [[bad("No.")]], 0, 0
    )
    assert (accepted, to_refine) == ([], [])
    assert dropped[0].meta["drop_reason"] == "self_feedback_incorrect_after_0_refinements"


def test_empty_feedback_is_dropped_with_the_parser_reason():
    _, _, dropped = apply_feedback([Record(instruction="Q?", output="A.")], [[" "]], 0, 1)
    assert dropped[0].meta["drop_reason"] == "judge_empty_reply"
    assert dropped[0].meta["self"]["steps"][0]["error"] == "judge_empty_reply"


# --- argument checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("replies", [[[OK, OK]], [[]], [], [[OK], [OK]]])
def test_wrong_reply_counts_raise(replies):
    with pytest.raises(SelfAlignError):
        apply_feedback(RECORDS[:1], replies, 0, 1)
    with pytest.raises(SelfAlignError):
        apply_refinements(_incorrect_at(0), replies, 0)


@pytest.mark.parametrize(("step", "max_steps"), [(-1, 2), (3, 2)])
def test_apply_feedback_rejects_bad_steps(step, max_steps):
    with pytest.raises(SelfAlignError):
        apply_feedback(RECORDS[:1], [[OK]], step, max_steps)


def test_apply_refinements_needs_feedback_for_that_step():
    with pytest.raises(SelfAlignError):
        apply_refinements(RECORDS[:1], [["Better."]], 0)
    with pytest.raises(SelfAlignError):
        apply_refinements(_incorrect_at(0), [["Better."]], 1)


def test_empty_batches():
    assert apply_feedback([], [], 0, 2) == ([], [], [])
    assert apply_refinements([], [], 0) == ([], [])
