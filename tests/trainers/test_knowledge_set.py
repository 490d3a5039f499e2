"""The knowledge set's check: it passes the shipped sets and fails on each kind of bad item."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from trainers import knowledge_set as ks

ROOT = Path(__file__).resolve().parents[2]
PASSAGE = (
    "The sodium-potassium ATPase pumps three sodium ions out of the cell and two potassium ions "
    "in for every ATP molecule it hydrolyzes, creating the gradients that drive secondary "
    "transport."
    " The membrane it sits in is 7 to 10 nanometers thick."
)
GOOD = {
    "id": "kn-x-001",
    "passage_id": "x-001",
    "kind": "number",
    "question": "Per ATP split, how many sodium ions does the Na+/K+ pump export?",
    "answer": "three sodium ions",
    "distractors": ["two sodium ions", "seven sodium ions", "four sodium ions"],
}
UNCOVERED = {
    "id": "kn-x-u001",
    "passage_id": None,
    "kind": "person",
    "question": "Who first described the cell in 1665 while looking at cork?",
    "answer": "Robert Hooke",
    "distractors": ["Isaac Newton", "Robert Boyle", "Anton Mesmer"],
    "absent_terms": ["Hooke"],
}


def _write(tmp_path: Path, items: list[dict], corpus: str = PASSAGE) -> tuple[Path, Path]:
    data, text = tmp_path / "items.jsonl", tmp_path / "corpus.jsonl"
    data.write_text("".join(json.dumps(i) + "\n" for i in items))
    text.write_text(json.dumps({"id": "x-001", "text": corpus}) + "\n")
    return data, text


def test_a_good_covered_and_uncovered_pair_passes(tmp_path) -> None:
    data, corpus = _write(tmp_path, [GOOD, UNCOVERED])
    assert ks.check(data, corpus, whole=False) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"question": "How many sodium ions out of the cell and two potassium ions in?"},
         "copies 8 words of the corpus"),
        ({"distractors": ["two sodium ions", "four sodium ions"]}, "needs 3 distractors"),
        ({"question": "How thick is the membrane holding the sodium pump?",
          "answer": "7 to 10 nanometers",
          "distractors": ["2 to 4 nanometers", "20 to 30 nanometers", "about forty nanometers"]},
         "every distractor needs one too"),
        ({"answer": "three chloride ions"}, "is not stated in x-001"),
        ({"kind": "colour"}, "is not one of"),
        ({"question": "How many sodium ions"}, "must end with '?'"),
        ({"passage_id": "x-404"}, "not in the corpus"),
        ({"distractors": ["two", "four sodium ions pumped outward by it", "five sodium ions"]},
         "unbalanced"),
        ({"distractors": ["two sodium ions", "Three sodium ions", "five sodium ions"]},
         "must differ"),
    ],
)  # fmt: skip
def test_a_bad_item_is_named_with_its_line_and_reason(tmp_path, change, reason) -> None:
    data, corpus = _write(tmp_path, [UNCOVERED, {**GOOD, **change}])
    problems = ks.check(data, corpus, whole=False)
    assert len(problems) == 1 and problems[0].startswith(f"{data}:2: kn-x-001: ")
    assert reason in problems[0]


def test_an_uncovered_item_whose_answer_the_corpus_has_fails(tmp_path) -> None:
    data, corpus = _write(tmp_path, [{**UNCOVERED, "absent_terms": ["ATPase"]}])
    assert "uncovered, but the corpus has ['ATPase']" in ks.check(data, corpus, whole=False)[0]


def test_the_whole_file_needs_every_passage_and_enough_uncovered_items(tmp_path) -> None:
    data, corpus = _write(tmp_path, [UNCOVERED])
    problems = ks.check(data, corpus, whole=True)
    assert any("1 passages have no item" in p for p in problems)
    assert any(f"1 uncovered items, need at least {ks.MIN_UNCOVERED}" in p for p in problems)


def test_build_puts_the_gold_at_balanced_positions_and_keeps_the_choices() -> None:
    drafts = [{**GOOD, "id": f"kn-x-{i:03d}"} for i in range(40)]
    built = ks.build(drafts)
    assert Counter(item["gold"] for item in built) == {0: 10, 1: 10, 2: 10, 3: 10}
    for item in built:
        assert item["choices"][item["gold"]] == GOOD["answer"]
        assert [c for c in item["choices"] if c != GOOD["answer"]] == GOOD["distractors"]
        assert "answer" not in item and "distractors" not in item
    assert ks.build(drafts) == built  # seeded by id: the same positions every time


def test_gold_always_longest_is_a_set_problem(tmp_path) -> None:
    long = {**GOOD, "answer": "three sodium ions out"}
    data, corpus = _write(tmp_path, [{**long, "id": f"kn-x-{i}"} for i in range(5)])
    assert any(
        "the gold is the longest choice in 5 of 5" in p for p in ks.check(data, corpus, False)
    )


def test_the_command_exits_1_on_problems_and_0_when_clean(tmp_path, capsys) -> None:
    data, corpus = _write(tmp_path, [GOOD, UNCOVERED])
    assert ks.main(["check", str(data), "--corpus", str(corpus), "--part"]) == 0
    data.write_text(data.read_text() + "{not json\n")
    assert ks.main(["check", str(data), "--corpus", str(corpus), "--part"]) == 2
    assert "items.jsonl:3: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["biomed", "geo"])
def test_the_shipped_knowledge_sets_pass_the_check(field) -> None:
    folder = ROOT / "data" / field
    problems = ks.check(folder / "knowledge_mc.jsonl", folder / "corpus.jsonl", whole=True)
    assert problems == []
    items = [obj for _, obj in ks.read_jsonl(folder / "knowledge_mc.jsonl")]
    assert sum(it["passage_id"] is None for it in items) >= ks.MIN_UNCOVERED
