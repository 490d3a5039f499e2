import pytest

from filters.multicritique_parse import (
    parse_comparison,
    parse_critique,
    parse_meta_verdict,
    parse_revision,
)

UNIT = {"flaw": "Names the wrong hormone.", "severity": "critical", "suggestion": "Say insulin."}


# --- parsing critiques ----------------------------------------------------------------------------

A = {"flaw": "A.", "severity": "major", "suggestion": "B."}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '{"units": [{"flaw": "Names the wrong hormone.", "severity": "critical", '
            '"suggestion": "Say insulin."}]}',
            [UNIT],
        ),
        (
            '```json\n{"units": [{"flaw": " A. ", "severity": "major", "suggestion": "B."}, '
            '{"flaw": "No units.", "severity": "minor", "suggestion": "Add mmol/L."}]}\n```',
            [A, {"flaw": "No units.", "severity": "minor", "suggestion": "Add mmol/L."}],
        ),
        (  # Python literal
            "{'units': [{'flaw': \"It's vague.\", 'severity': 'Minor', "
            "'suggestion': 'Be exact.'}]}",
            [{"flaw": "It's vague.", "severity": "minor", "suggestion": "Be exact."}],
        ),
        ('{"units": []}', []),  # no flaw: a valid empty critique
        ('Sure! {"units": []} Nothing to fix.', []),
        (  # items without a (non-empty) flaw are skipped
            '{"units": [{"severity": "minor", "suggestion": "x"}, {"flaw": "  ", "severity": '
            '"minor"}, {"flaw": "A.", "severity": "major", "suggestion": "B."}, "C."]}',
            [A],
        ),
        ('{"units": [{"flaw": " "}, {"suggestion": "x"}]}', "judge_unparseable"),  # none usable
        (  # severity: case-insensitive; unknown or missing -> major; suggestion not text -> ''
            '{"units": [{"flaw": "W.", "severity": "CRITICAL"}, {"flaw": "X.", "severity": "severe"'
            ', "suggestion": 3}, {"flaw": "Y.", "severity": 2, "suggestion": "Z."}]}',
            [
                {"flaw": "W.", "severity": "critical", "suggestion": ""},
                {"flaw": "X.", "severity": "major", "suggestion": ""},
                {"flaw": "Y.", "severity": "major", "suggestion": "Z."},
            ],
        ),
        (  # at most 3 units
            '{"units": [' + ", ".join(f'{{"flaw": "F{i}."}}' for i in range(5)) + "]}",
            [{"flaw": f"F{i}.", "severity": "major", "suggestion": ""} for i in range(3)],
        ),
        (
            '{"units": [{"flaw": "Has a } brace.", "severity": "minor", "suggestion": ""}]}',
            [{"flaw": "Has a } brace.", "severity": "minor", "suggestion": ""}],
        ),
        ('[{"flaw": "A.", "severity": "major", "suggestion": "B."}]', [A]),  # a bare list
        ('{"flaw": "A.", "severity": "major", "suggestion": "B."}', [A]),  # one unit alone
        (  # cut off inside the second unit: the first one stands
            '{"units": [{"flaw": "A.", "severity": "major", "suggestion": "B."}, '
            '{"flaw": "C", "sev',
            [A],
        ),
        ('{"units": [{"flaw": "Names the wrong horm', "judge_unparseable"),  # cut off in unit 1
        ('{"units": [{"flaw": "Returns [] for', "judge_unparseable"),  # not an empty critique
        ("[]", "judge_unparseable"),  # a bare empty list could be anything
        (
            "- Flaw: Names the wrong hormone. Severity: Critical. Suggestion: Say insulin.\n"
            "- Flaw: A. Severity: major",
            [UNIT, {"flaw": "A.", "severity": "major", "suggestion": ""}],
        ),
        ("1. **Flaw:** A. **Severity:** major **Suggestion:** B.", [A]),
        (
            "Flaw: A.\nSeverity: major\nSuggestion: B.\n\nFlaw: C.\n- Suggestion: D.",
            [A, {"flaw": "C.", "severity": "major", "suggestion": "D."}],
        ),
        ("Flaw: A. | Severity: major | Suggestion: B.", [A]),
        ("No flaw: the response is correct.", "judge_unparseable"),  # prose, not a label
        ('{"units": "none"}', "judge_unparseable"),
        ("The response looks fine to me.", "judge_unparseable"),
        ("}{ not json [", "judge_unparseable"),
        ("", "judge_empty_reply"),
        (" \n ", "judge_empty_reply"),
    ],
)
def test_parse_critique(reply, expected):
    assert parse_critique(reply) == expected


# --- meta-critique --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"valid": true, "reason": "Glucagon raises glucose."}', True),
        ('{"valid": false, "reason": "The response is right."}', False),
        ('```json\n{"valid": "no", "reason": "x"}\n```', False),
        ("{'valid': 'Invalid'}", False),
        ('{"valid": "yes"}', True),
        ('{"valid": "VALID"}', True),
        ('{"valid": 1}', "judge_unparseable"),
        ('{"valid": "maybe"}', "judge_unparseable"),
        ('{"valid": false, "reason": "cut o', False),  # cut off after the verdict
        ('{"valid": true, "rea', True),
        ("Valid: no", False),
        ("Invalid.", False),
        ("invalid", False),  # never read as valid
        ("The critique is invalid: the response is right.", False),
        ("The critique is not valid.", False),
        ("This is not a valid critique.", False),
        ("Valid", True),
        ("The critique is valid: the dose is wrong.", True),
        ("Yes.", True),
        ("No", False),
        ("Hmm, hard to say.", "judge_unparseable"),
        ("", "judge_empty_reply"),
    ],
)
def test_parse_meta_verdict(reply, expected):
    assert parse_meta_verdict(reply) == expected


# --- revision -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("  Insulin lowers blood glucose.\n", "Insulin lowers blood glucose."),
        ("Revised response: Insulin.", "Insulin."),
        ("**Revised Response:**\n\nInsulin.", "Insulin."),
        ("## Revised response:\nInsulin.", "Insulin."),
        ("The revised response: is kept as written.", "The revised response: is kept as written."),
        ("Revised response:", None),
        (" \n", None),
    ],
)
def test_parse_revision(reply, expected):
    assert parse_revision(reply) == expected


# --- comparison -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"better": "A"}', "A"),
        ('```json\n{"better": "B"}\n```', "B"),
        ('{"better": "Response B"}', "B"),
        ('{"better": "tie"}', "tie"),
        ("{'better': 'Tie'}", "tie"),
        ('{"better": "C"}', "judge_unparseable"),
        ('{"better": "B', "B"),  # cut off
        ("Better: A", "A"),
        ("Response A is better.", "A"),
        ("Response B is clearly better than response A.", "B"),
        ("**Response B** wins.", "B"),
        ("response_a", "A"),
        ("B", "B"),
        ("**A**", "A"),
        ("b.", "B"),
        ("Tie", "tie"),
        ("Both are equal.", "tie"),
        ("Neither is better.", "tie"),
        ("A better answer would cite a source.", "judge_unparseable"),  # 'A' the article
        ("The answer a student gives.", "judge_unparseable"),
        ("Hard to say.", "judge_unparseable"),
        ("", "judge_empty_reply"),
    ],
)
def test_parse_comparison(reply, expected):
    assert parse_comparison(reply) == expected
