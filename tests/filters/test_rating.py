import pytest

from filters.rating import (
    RATING_MIN,
    RATING_SCHEMA,
    apply_ratings,
    build_rating_prompt,
    parse_rating,
    rate,
    rating_sampling,
)
from generators.backends.fake import FakeLLM
from generators.errors import SelfAlignError
from generators.llm import Sampling
from generators.records import Record

# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 4, "rationale": "Correct and concise."}', (4, "Correct and concise.")),
        ('```json\n{"score": 5, "rationale": "Complete."}\n```', (5, "Complete.")),
        (
            'Here you go: {"score": 2, "rationale": "Wrong dose."} Hope it helps!',
            (2, "Wrong dose."),
        ),
        ("{'score': 3, 'rationale': \"It's partly right.\"}", (3, "It's partly right.")),
        ('{"rationale": "Has a } brace.", "score": 1}', (1, "Has a } brace.")),
        ('{"verdict": {"score": 4}}', (4, "")),  # nested: first object with a score
        ('{"score": "4", "rationale": 7}', (4, "")),  # numeric string; non-string rationale
        ("Score: 4", (4, "")),
        ("**Score:** 5\nRationale: Accurate and clear.", (5, "Accurate and clear.")),
        ("4/5", (4, "")),
        ("Rating: 2 out of 5", (2, "")),
        ('{"score": 4, "rationa', (4, "")),  # cut off after the score
        ('{"score": 3.5, "rationale": "Half right."}', (3, "Half right.")),  # floored
        ("Score: 4.0", (4, "")),
        ('{"score": 7, "rationale": "Great."}', "judge_score_out_of_range"),
        ("Score: 0", "judge_score_out_of_range"),
        ('{"score": 5.5}', "judge_score_out_of_range"),
        ('{"score": "high", "rationale": "Would give 4/5."}', "judge_unparseable"),
        ('{"score": true}', "judge_unparseable"),
        ("", "judge_empty_reply"),
        (" \n ", "judge_empty_reply"),
        ('{"score": ', "judge_unparseable"),
        ("Great answer! I'd give it a 4.", "judge_unparseable"),
        ("}{ not json {", "judge_unparseable"),
    ],
)
def test_parse_rating(reply, expected):
    assert parse_rating(reply) == expected


# --- sampling -------------------------------------------------------------------------------------


def test_rating_sampling_is_greedy_with_optional_schema():
    assert rating_sampling() == Sampling(max_tokens=96, temperature=0.0, json_schema=RATING_SCHEMA)
    assert rating_sampling(64, use_schema=False) == Sampling(max_tokens=64, temperature=0.0)
    assert RATING_SCHEMA["required"] == ["score", "rationale"]
    assert RATING_SCHEMA["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}


# --- applying ratings -----------------------------------------------------------------------------

RECORDS = [Record(instruction=f"Task {i}.", output=f"Answer {i}.") for i in range(4)]
REPLIES = [
    ['{"score": 5, "rationale": "Complete."}'],
    ['{"score": 4, "rationale": "Minor gaps."}'],
    ['{"score": 2, "rationale": "Mostly wrong."}'],
    ["No idea."],
]


def test_apply_ratings_keeps_at_threshold_and_drops_with_reasons():
    kept, dropped = apply_ratings(RECORDS, REPLIES)
    assert RATING_MIN == 4
    assert [(r.instruction, r.meta) for r in kept] == [
        ("Task 0.", {"rating": {"score": 5, "rationale": "Complete."}}),
        ("Task 1.", {"rating": {"score": 4, "rationale": "Minor gaps."}}),
    ]
    assert [(r.instruction, r.meta) for r in dropped] == [
        (
            "Task 2.",
            {
                "rating": {"score": 2, "rationale": "Mostly wrong."},
                "dropped_by": "rating",
                "drop_reason": "judge_score_2_lt_4",
            },
        ),
        (
            "Task 3.",
            {
                "rating": {"error": "judge_unparseable", "reply": "No idea."},
                "dropped_by": "rating",
                "drop_reason": "judge_unparseable",
            },
        ),
    ]


def test_apply_ratings_custom_threshold_and_stage():
    kept, dropped = apply_ratings(RECORDS[:2], REPLIES[:2], threshold=5, stage="judge")
    assert [r.instruction for r in kept] == ["Task 0."]
    assert [(r.meta["dropped_by"], r.meta["drop_reason"]) for r in dropped] == [
        ("judge", "judge_score_4_lt_5")
    ]


@pytest.mark.parametrize(
    ("replies", "threshold"),
    [([["5"]], 0), ([["5"]], 6), ([["5", "4"]], 4), ([[]], 4)],
)
def test_apply_ratings_rejects_bad_threshold_or_reply_count(replies, threshold):
    with pytest.raises(SelfAlignError):
        apply_ratings(RECORDS[:1], replies, threshold=threshold)


def test_apply_ratings_needs_one_reply_list_per_record():
    with pytest.raises(ValueError):
        apply_ratings(RECORDS, REPLIES[:2])


# --- rate (control flow with a fake backend) ------------------------------------------------------


def _judge(conversation):
    """Scores by the task number in the prompt: 'Task 3.' -> 3 (0 -> 1)."""
    number = int(conversation[1]["content"].split("<instruction>\nTask ")[1][0])
    return f'{{"score": {max(number, 1)}, "rationale": "r{number}"}}'


def test_rate_batches_prompts_and_applies_threshold():
    records = [Record(instruction=f"Task {i}.", input="", output=f"Answer {i}.") for i in range(5)]
    llm = FakeLLM(_judge)
    kept, dropped = rate(records, llm, threshold=3, batch_size=2)
    assert [len(conversations) for conversations, _ in llm.calls] == [2, 2, 1]
    sent = [conv for conversations, _ in llm.calls for conv in conversations]
    assert sent == [build_rating_prompt(r.instruction, "", r.output) for r in records]
    assert all(sampling == rating_sampling(use_schema=False) for _, sampling in llm.calls)
    assert [r.instruction for r in kept] == ["Task 3.", "Task 4."]
    assert [r.meta["drop_reason"] for r in dropped] == ["judge_score_1_lt_3"] * 2 + [
        "judge_score_2_lt_3"
    ]


def test_rate_asks_for_the_schema_only_when_the_backend_supports_it():
    llm = FakeLLM('{"score": 4, "rationale": "ok"}')
    llm.supports_json_schema = True
    kept, dropped = rate(RECORDS[:1], llm)
    assert llm.calls[0][1].json_schema == RATING_SCHEMA
    assert (len(kept), dropped) == (1, [])


def test_rate_with_no_records_calls_nothing_and_checks_arguments_first():
    llm = FakeLLM("unused")
    assert rate([], llm) == ([], [])
    for kwargs in ({"threshold": 9}, {"batch_size": 0}):
        with pytest.raises(SelfAlignError):
            rate(RECORDS, llm, **kwargs)
    assert llm.calls == []
