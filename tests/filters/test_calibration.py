import re
from collections import Counter
from pathlib import Path

import pytest

from filters.calibration import (
    KINDS,
    NEGATIONS,
    CheckItem,
    by_kind,
    corrupt,
    load_qa,
    mc_items,
    metrics,
    negate,
    numeric,
    sample,
    summary_line,
)
from generators.errors import SelfAlignError

HELDOUT = Path(__file__).resolve().parents[2] / "data" / "biomed" / "heldout_qa.jsonl"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def qa(*answers: str) -> list[dict]:
    return [
        {"id": f"q{i}", "question": f"Question {i}?", "answer": a} for i, a in enumerate(answers)
    ]


def norm(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


# --- load_qa --------------------------------------------------------------------------------------


def test_load_qa_reads_fields_defaults_ids_and_ignores_other_keys(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": " Q1? ", "answer": "A1.", "passage_id": "p1"}\n'
        "\n"
        '{"question": "Q2?", "answer": "A2."}\n',
        encoding="utf-8",
    )
    assert load_qa(path) == [
        {"id": "a", "question": "Q1?", "answer": "A1."},
        {"id": "qa_3", "question": "Q2?", "answer": "A2."},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"question": "Q?", "answer": "A."}\n{"question": "Q?",\n', r":2: malformed JSON"),
        (b'{"id": "a", "question": "Q?"}\n', r":1: missing 'answer'"),
        (b'{"question": 3, "answer": "A."}\n', r":1: 'question' must be a string, got number"),
        (b'{"question": "Q?", "answer": null}\n', r":1: 'answer' must be a string, got null"),
        (b'{"question": "Q?", "answer": "  "}\n', r":1: 'answer' must be a non-empty string"),
        (b'{"id": 7, "question": "Q?", "answer": "A."}\n', r":1: 'id' must be a string"),
        (b'["Q?", "A."]\n', r":1: expected a JSON object, got list"),
        (
            b'{"id": "a", "question": "Q?", "answer": "A."}\n\n'
            b'{"id": "a", "question": "R?", "answer": "B."}\n',
            r":3: duplicate id 'a' \(first on line 1\)",
        ),
        (b"\n \n", r": empty file$"),
    ],
)
def test_bad_qa_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "qa.jsonl"
    path.write_bytes(content)
    with pytest.raises(SelfAlignError, match=re.escape(str(path)) + message):
        load_qa(path)


def test_missing_qa_file(tmp_path):
    with pytest.raises(SelfAlignError, match=r"nope.jsonl: no such file"):
        load_qa(tmp_path / "nope.jsonl")


# --- numeric and negated corruptions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "37 genes (13 proteins, 22 tRNAs and 2 rRNAs).",
            "75 genes (27 proteins, 45 tRNAs and 5 rRNAs).",
        ),
        ("Intramuscular (0.01 mg/kg, up to 0.5 mg).", "Intramuscular (0.03 mg/kg, up to 1.5 mg)."),
        (
            "About 8,400 mL, half (4,200 mL) in 8 hours.",
            "About 16,801 mL, half (8,401 mL) in 17 hours.",
        ),
        ("A T-score of -2.5 or lower.", "A T-score of -7.5 or lower."),
        ("2.0 to 3.0.", "6.0 to 9.0."),
        ("0 or 0.0", "1 or 1.0"),  # scaling zero would not change it
        ("About 25%.", "About 51%."),
        ("About 93% (13/14).", "About 46% (6/7)."),  # over 100%: every number goes down
        ("By about 40 to 50 percent.", "By about 20 to 25 percent."),
        ("t(14;18), which overexpresses BCL2.", "t(29;37), which overexpresses BCL2."),
        (
            "Aquaporin-2 via V2 receptors and 3 others.",
            "Aquaporin-2 via V2 receptors and 7 others.",
        ),
    ],
)
def test_numeric(answer, expected):
    assert numeric(answer) == expected


@pytest.mark.parametrize(
    "answer",
    ["TLR4.", "HLA-B*57:01.", "5'-NGG-3'.", "CYP2C19 or DPP-4.", "O157:H7.", "Roughly threefold."],
)
def test_digits_inside_names_are_not_numbers(answer):
    assert numeric(answer) is None


def test_numeric_changes_every_number():
    answer = "Give 1 to 2 doses of 0.5 mg, 10 times, 99% of 1,000 cases, 3.25 each."
    corrupted = numeric(answer)
    before, after = NUMBER.findall(answer), NUMBER.findall(corrupted)
    assert len(before) == len(after) == 7
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert NUMBER.sub("#", answer) == NUMBER.sub("#", corrupted)  # only the numbers changed


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It does not lower the potassium.", "It does lower the potassium."),
        ("The device cannot tell them apart.", "The device can tell them apart."),
        ("Spores can germinate.", "Spores cannot germinate."),
        ("The wall is thick and retains dye.", "The wall is not thick and retains dye."),
        ("Cortisol induces PNMT.", "Cortisol suppresses PNMT."),
        (
            "Mean arterial pressure minus intracranial pressure.",
            "Mean arterial pressure plus intracranial pressure.",
        ),
        ("Aspirin irreversibly acetylates COX.", "Aspirin reversibly acetylates COX."),
        ("This island.", None),  # whole words only
        ("Imatinib.", None),
    ],
)
def test_negate(answer, expected):
    assert negate(answer) == expected


def test_negations_flip_to_a_different_phrase():
    assert all(key != value for key, value in NEGATIONS.items())


# --- corrupt --------------------------------------------------------------------------------------


def test_corrupt_pairs_gold_with_one_corrupted_item_in_order():
    items = corrupt(qa("About 3.", "Imatinib.", "It cannot form.", "Adenosine."))
    assert [(i.id, i.label, i.kind) for i in items] == [
        ("q0:gold", True, "gold"),
        ("q0:numeric", False, "numeric"),
        ("q1:gold", True, "gold"),
        ("q1:swapped", False, "swapped"),
        ("q2:gold", True, "gold"),
        ("q2:negated", False, "negated"),
        ("q3:gold", True, "gold"),
        ("q3:swapped", False, "swapped"),
    ]
    assert items[1] == CheckItem(
        "q0:numeric", "Question 0?", "About 3.", "About 7.", False, "numeric"
    )
    assert items[5].answer == "It can form."
    for gold, bad in zip(items[::2], items[1::2], strict=True):
        assert gold.answer == gold.reference == bad.reference
        assert bad.question == gold.question
        assert norm(bad.answer) != norm(gold.answer)
    assert {i.kind for i in items} <= set(KINDS)


def test_swapped_never_self_nor_identical_text():
    answers = ("The retinoblastoma protein (Rb).", "the retinoblastoma  protein (Rb)", "Imatinib.")
    rows = qa(*answers, "Adenosine.", "Sweating.", "IgG.")
    for seed in range(50):
        items = corrupt(rows, seed)
        swapped = [i for i in items if i.kind == "swapped"]
        assert len(swapped) == len(rows)
        for item in swapped:
            assert norm(item.answer) != norm(item.reference)
            assert item.answer in {r["answer"] for r in rows}


def test_corrupt_is_deterministic_per_seed():
    rows = qa(*(f"Answer {c}." for c in "abcdefghij"))
    assert corrupt(rows, 3) == corrupt(rows, 3)
    assert corrupt(rows) == corrupt(rows, 0)
    assert any(corrupt(rows, seed) != corrupt(rows, 0) for seed in range(1, 5))


def test_corrupt_fails_when_nothing_can_be_swapped_in():
    with pytest.raises(SelfAlignError, match=r"q0: no different answer to swap in"):
        corrupt(qa("Imatinib."))
    with pytest.raises(SelfAlignError, match=r"no different answer to swap in"):
        corrupt(qa("Imatinib.", "imatinib"))
    assert [i.kind for i in corrupt(qa("About 3."))] == ["gold", "numeric"]


def test_corrupt_demo_check_set():
    rows = load_qa(HELDOUT)
    items = corrupt(rows)
    assert len(rows) == 120 and len(items) == 240
    assert Counter(i.kind for i in items) == {
        "gold": 120,
        "numeric": 39,
        "negated": 14,
        "swapped": 67,
    }
    assert Counter(i.label for i in items) == {True: 120, False: 120}
    assert len({i.id for i in items}) == 240
    for gold, bad in zip(items[::2], items[1::2], strict=True):
        assert gold.id.removesuffix(":gold") == bad.id.removesuffix(f":{bad.kind}")
        assert norm(bad.answer) != norm(gold.answer)
        if bad.kind == "numeric":
            assert NUMBER.findall(bad.answer) != NUMBER.findall(gold.answer)
    assert corrupt(rows, 1) != items  # another seed, other swap partners


# --- mc_items -------------------------------------------------------------------------------------


def test_mc_items_gold_numeric_negated_and_swapped():
    rows = qa("About 3 days.", "Imatinib.", "It cannot form.", "Adenosine.", "Sweating.")
    items = mc_items(rows)
    assert [item["id"] for item in items] == ["q0", "q1", "q2", "q3", "q4"]
    for item, row in zip(items, rows, strict=True):
        assert set(item) == {"id", "question", "choices", "gold", "distractor_kinds"}
        assert item["question"] == row["question"]
        assert item["choices"][item["gold"]] == row["answer"]
        assert len({norm(c) for c in item["choices"]}) == 4
        wrong = [c for i, c in enumerate(item["choices"]) if i != item["gold"]]
        for kind, text in zip(item["distractor_kinds"], wrong, strict=True):
            if kind == "swapped":
                assert text in {r["answer"] for r in rows} - {row["answer"]}
    assert Counter(items[0]["distractor_kinds"]) == {"numeric": 1, "swapped": 2}
    assert "About 7 days." in items[0]["choices"]
    assert Counter(items[2]["distractor_kinds"]) == {"negated": 1, "swapped": 2}
    assert "It can form." in items[2]["choices"]
    assert items[1]["distractor_kinds"] == ["swapped"] * 3
    # an answer with a number and a negatable word gets both, numeric first
    both = mc_items(qa("It is 5 mm.", "Imatinib.", "Adenosine.", "Sweating."))[0]
    assert sorted(both["distractor_kinds"]) == ["negated", "numeric", "swapped"]
    assert {"It is 11 mm.", "It is not 5 mm."} <= set(both["choices"])


def test_mc_items_deterministic_per_seed_and_input_order():
    rows = qa(*(f"Answer {c}." for c in "abcdefghij"))
    assert mc_items(rows, 3) == mc_items(rows, 3)
    assert mc_items(rows) == mc_items(rows, 0)
    assert any(mc_items(rows, seed) != mc_items(rows) for seed in range(1, 5))
    # an item depends on (seed, id) and the set of QAs, not on where the QA sits in the list
    assert mc_items(rows[::-1], 3) == mc_items(rows, 3)[::-1]
    # the gold is not always first
    assert len({item["gold"] for item in mc_items(rows)}) > 1


def test_mc_items_skip_duplicates_and_fail_without_enough_distractors():
    rows = qa("Imatinib.", "imatinib", "Imatinib", "Adenosine.", "Sweating.", "IgG.")
    for seed in range(20):
        item = mc_items(rows, seed)[0]
        assert sorted(map(norm, item["choices"])) == ["adenosine", "igg", "imatinib", "sweating"]
    with pytest.raises(SelfAlignError, match=r"q0: only 2 different distractors, need 3"):
        mc_items(qa("Imatinib.", "Adenosine.", "Sweating."))
    assert len(mc_items(qa("Imatinib.", "Adenosine.", "Sweating."), n_choices=3)[0]["choices"]) == 3
    with pytest.raises(SelfAlignError, match=r"n_choices must be >= 2, got 1"):
        mc_items(rows, n_choices=1)


def test_mc_items_demo_set():
    rows = load_qa(HELDOUT)
    items = mc_items(rows)
    assert len(items) == 120
    for item, row in zip(items, rows, strict=True):
        assert item["id"] == row["id"]
        assert len(item["choices"]) == 4 and len({norm(c) for c in item["choices"]}) == 4
        assert item["choices"][item["gold"]] == row["answer"]
        assert len(item["distractor_kinds"]) == 3
        assert ("numeric" in item["distractor_kinds"]) == (numeric(row["answer"]) is not None)
    kinds = Counter(k for item in items for k in item["distractor_kinds"])
    assert kinds["numeric"] == 39 and kinds["negated"] >= 14
    assert set(Counter(item["gold"] for item in items)) == {0, 1, 2, 3}


# --- sample ---------------------------------------------------------------------------------------


def test_sample_keeps_pairs_in_order():
    items = corrupt(qa(*(f"Answer {c}." for c in "abcdefghij")))
    picked = sample(items, 3, seed=1)
    assert len(picked) == 6
    assert [i.kind for i in picked] == ["gold", "swapped"] * 3
    assert [i.id.split(":")[0] for i in picked[::2]] == [i.id.split(":")[0] for i in picked[1::2]]
    assert picked == [i for i in items if i in picked]  # original order
    assert sample(items, 3, seed=1) == picked
    assert sample(items, None) == items
    assert sample(items, 50) == items


def test_sample_size_must_be_positive():
    with pytest.raises(SelfAlignError, match=r"sample size must be >= 1, got 0"):
        sample([], 0)


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_mixed_judge():
    assert metrics([True, True, False, False], [True, False, True, False]) == {
        "n": 4,
        "agreement": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "unparseable": 0,
        "tp": 1,
        "fp": 1,
        "tn": 1,
        "fn": 1,
        "predicted_correct_rate": 0.5,
    }


def test_metrics_unparseable_counts_as_disagreement():
    m = metrics([True, True, True, False], [True, None, False, False])
    assert (m["tp"], m["fn"], m["fp"], m["tn"], m["unparseable"]) == (1, 1, 0, 1, 1)
    assert (m["agreement"], m["precision"], m["recall"], m["f1"]) == (0.5, 1.0, 0.3333, 0.5)
    assert m["predicted_correct_rate"] == 0.25


def test_metrics_all_unparseable():
    m = metrics([True, False], [None, None])
    assert (m["agreement"], m["precision"], m["recall"], m["f1"]) == (0.0, None, 0.0, None)
    assert (m["unparseable"], m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 0, 0, 0, 0)


def test_metrics_judge_that_never_says_correct():
    m = metrics([True, False, False], [False, False, None])
    assert (m["agreement"], m["precision"], m["recall"], m["f1"]) == (0.3333, None, 0.0, None)
    assert m["predicted_correct_rate"] == 0.0


def test_metrics_perfect_and_always_correct_judges():
    labels = [True, False] * 5
    perfect = metrics(labels, list(labels))
    assert (perfect["agreement"], perfect["precision"], perfect["recall"], perfect["f1"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    yes = metrics(labels, [True] * 10)
    assert (yes["agreement"], yes["precision"], yes["recall"], yes["f1"]) == (0.5, 0.5, 1.0, 0.6667)
    assert yes["predicted_correct_rate"] == 1.0


def test_metrics_without_positive_labels_or_items():
    m = metrics([False, False], [False, True])
    assert (m["agreement"], m["precision"], m["recall"], m["f1"]) == (0.5, 0.0, None, None)
    empty = metrics([], [])
    assert (empty["n"], empty["agreement"], empty["predicted_correct_rate"]) == (0, None, None)


def test_metrics_lengths_must_match():
    with pytest.raises(SelfAlignError, match=r"2 labels but 1 verdicts"):
        metrics([True, False], [True])


def test_by_kind():
    items = corrupt(qa("About 3.", "Imatinib.", "It cannot form.", "Adenosine."))
    #          gold  numeric gold  swapped gold  negated gold  swapped
    verdicts = [True, False, None, True, True, True, False, False]
    assert by_kind(items, verdicts) == {
        "gold": {"n": 4, "agreement": 0.5, "unparseable": 1},
        "swapped": {"n": 2, "agreement": 0.5, "unparseable": 0},
        "numeric": {"n": 1, "agreement": 1.0, "unparseable": 0},
        "negated": {"n": 1, "agreement": 0.0, "unparseable": 0},
    }
    with pytest.raises(SelfAlignError, match=r"8 items but 1 verdicts"):
        by_kind(items, [True])


def test_summary_line():
    m = {"n": 80, "agreement": 0.6234, "precision": 0.58, "recall": 0.9125, "unparseable": 3}
    assert summary_line("rating", m) == (
        "rating: agreement 0.62, precision 0.58, recall 0.91 (n=80, unparseable 3)"
    )
    never = metrics([True, False], [False, None])
    assert summary_line("strict", never) == (
        "strict: agreement 0.00, precision n/a, recall 0.00 (n=2, unparseable 1)"
    )
