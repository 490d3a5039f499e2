"""Closed-book fact rows: rule-found facts, each restated as questions, statements and notes."""

import json
from pathlib import Path

import pytest

from generators.corpus import Passage
from generators.facts import DEFAULT_FORMS, FORMS, extract, fact_records, facts_corpus, number_span

TEXT = (
    "The plasma membrane is a phospholipid bilayer roughly 7 to 10 nanometers thick. "
    "About 25% of membrane lipid is cholesterol in animal cells. "
    "The fluid mosaic model of the membrane was proposed in 1972. "
    "Cholesterol is a sterol that modulates membrane fluidity across temperatures. "
    "Its polar head faces the watery surroundings of the cell. "
    "Membrane proteins float in the bilayer, as Singer and Nicolson described."
)
P = Passage("bio-001", TEXT, "bio-001")
S = [
    "The plasma membrane is a phospholipid bilayer roughly 7 to 10 nanometers thick.",
    "About 25% of membrane lipid is cholesterol in animal cells.",
    "The fluid mosaic model of the membrane was proposed in 1972.",
    "Cholesterol is a sterol that modulates membrane fluidity across temperatures.",
    "Membrane proteins float in the bilayer, as Singer and Nicolson described.",
]
CORPUS = Path(__file__).resolve().parents[2] / "data" / "biomed" / "corpus.jsonl"


def rows(form: str, passage: Passage = P) -> list[tuple[str, str]]:
    return [
        (r.instruction, r.output)
        for r in fact_records(passage, FORMS)
        if r.meta["fact_form"] == form
    ]


def test_extract_finds_one_fact_per_sentence_by_the_first_rule_that_fits():
    facts = extract(P, 6)
    assert [(f.answer, f.kind) for f in facts] == [
        ("7 to 10 nanometers", "number"),
        ("25%", "number"),
        ("1972", "number"),
        ("Cholesterol", "definition"),
        ("Singer and Nicolson", "term"),
    ]  # "Its polar head ..." opens with a pronoun: no fact
    assert [f.id for f in facts] == [f"bio-001-f{i}" for i in range(5)]
    assert [f.sentence for f in facts] == S
    assert all(f.sentence[f.start : f.end] == f.answer for f in facts)
    assert [f.answer for f in extract(P, 2)] == ["7 to 10 nanometers", "25%"]


@pytest.mark.parametrize(
    "sentence, fact",
    [
        ("Normal potassium is 3.5 to 5.0 mmol/L in the serum of adults.", "3.5 to 5.0 mmol/L"),
        ("The usual dose is 5-10 mg given twice a day.", "5-10 mg"),
        ("Resistance arises from variants of CYP2C19 in about 30% of people.", "30%"),
        ("The H1N1 strain and COVID-19 killed 2009 patients in the ward.", "2009 patients"),
        ("Trisomy of chromosome 21 affects about 1 in 700 births.", "700 births"),
        ("The COVID-19 pandemic and H1N1 spread worldwide by air.", None),
        ("Type 2 diabetes is common in adults across the world.", None),
        ("Doudna shared the 2020 Nobel Prize in Chemistry for the work.", None),
        ("The disease is named after a 1976 outbreak of pneumonia.", None),
        ("The score is graded as oriented 5, confused 4 and silent 1.", None),
    ],
)
def test_number_span_takes_a_quantity_not_a_name_or_code(sentence, fact):
    span = number_span(sentence)
    assert (sentence[span[0] : span[1]] if span else None) == fact


def test_question_phrasings_in_situ_then_fronted():
    assert rows("question") == [
        ("The plasma membrane is a phospholipid bilayer roughly how many nanometers thick?",
         "7 to 10 nanometers."),
        ("Which figure completes this statement: The plasma membrane is a phospholipid bilayer "
         "roughly ____ thick?", "7 to 10 nanometers."),
        ("About what percentage of membrane lipid is cholesterol in animal cells?", "25%."),
        ("Which figure completes this statement: About ____ of membrane lipid is cholesterol in "
         "animal cells?", "25%."),
        ("The fluid mosaic model of the membrane was proposed in what year?", "1972."),
        ("Which year completes this statement: The fluid mosaic model of the membrane was "
         "proposed in ____?", "1972."),
        ("What is a sterol that modulates membrane fluidity across temperatures?", "Cholesterol."),
        ("Who or what is a sterol that modulates membrane fluidity across temperatures?",
         "Cholesterol."),
        ("Membrane proteins float in the bilayer, as what described?", "Singer and Nicolson."),
        ("Which term completes this statement: Membrane proteins float in the bilayer, as ____ "
         "described?", "Singer and Nicolson."),
    ]  # fmt: skip
    one = [r for r in fact_records(P, ["question"], phrasings=1)]
    assert len(one) == 5 and one[0].instruction.endswith("how many nanometers thick?")


def test_a_fronted_year_moves_to_the_end_and_a_subject_name_is_asked_with_who_or_what():
    text = "In 1928, Alexander Fleming noticed that a mold killed bacteria on a plate."
    assert rows("question", Passage("p", text, "p"))[0] == (
        "Alexander Fleming noticed that a mold killed bacteria on a plate in what year?",
        "1928.",
    )


def test_statement_cloze_notes_and_relation_forms():
    assert rows("statement") == [
        ("State one fact about membrane.", S[0]),
        ("State one fact about cholesterol.", S[1]),
        # S[2] names only "membrane", which S[0] took: a repeated instruction would be dropped
        ("State one fact about temperatures.", S[3]),
        ("State one fact about bilayer.", S[4]),
    ]
    assert rows("cloze") == [
        ("Fill in the blank: The plasma membrane is a phospholipid bilayer roughly ____ thick.",
         "7 to 10 nanometers."),
        ("Fill in the blank: About ____ of membrane lipid is cholesterol in animal cells.", "25%."),
        ("Fill in the blank: The fluid mosaic model of the membrane was proposed in ____.",
         "1972."),
        ("Fill in the blank: ____ is a sterol that modulates membrane fluidity across "
         "temperatures.", "Cholesterol."),
        ("Fill in the blank: Membrane proteins float in the bilayer, as ____ described.",
         "Singer and Nicolson."),
    ]  # fmt: skip
    notes = "\n".join(f"- {S[i]}" for i in (1, 2, 3, 4, 0))  # seeded, not the passage's order
    assert rows("notes") == [("Write study notes on cholesterol.", notes)]
    other_seed = [r for r in fact_records(P, ["notes"], seed=1)][0].output
    assert sorted(other_seed.split("\n")) == sorted(notes.split("\n"))
    assert rows("relation") == [
        ("How are membrane and bilayer related?", f"{S[0]} {S[4]}"),
        ("How are membrane and cholesterol related?", f"{S[1]} {S[3]}"),
        ("How are membrane and temperatures related?", S[3]),
        ("How are cholesterol and temperatures related?", S[3]),
    ]
    # the passage whole, one per passage, the topic as the notes' (the first definition's term)
    assert rows("passage") == [("Write a short passage on cholesterol.", TEXT)]
    one_fact = Passage(
        "p2", "Ribosomes make proteins. The ribosome has two subunits that join on the RNA.", "p2"
    )
    assert rows("notes", one_fact) == []  # notes need two facts; the passage form does not
    assert rows("passage", one_fact) == [("Write a short passage on ribosomes.", one_fact.text)]
    assert rows("passage", Passage("p3", "Cells divide.", "p3")) == []  # no topic: no row


def test_records_are_closed_book_and_carry_their_lineage():
    records = fact_records(P, FORMS)
    assert {r.meta["fact_form"] for r in records} == set(FORMS)
    for r in records:
        assert r.input == "" and r.passages == ("bio-001",)
        assert TEXT not in r.instruction and len(r.instruction) < len(TEXT) / 2  # closed book
        assert r.meta["origin"] == "facts" and r.meta["source_passage"] == "bio-001"
        assert r.meta["fact_id"].startswith("bio-001-") and r.meta["fact_form"] in FORMS
    assert [r.meta["fact_id"] for r in records if r.meta["fact_form"] == "notes"] == [
        "bio-001-notes"
    ]
    assert fact_records(P, ["cloze"], limit=1)[0].output == "7 to 10 nanometers."
    assert len(fact_records(P, ["relation"], limit=2)) == 2
    assert FORMS == ("question", "statement", "cloze", "notes", "relation", "passage")
    assert DEFAULT_FORMS == ("question", "statement", "cloze", "notes")
    with pytest.raises(ValueError, match="unknown fact forms"):
        fact_records(P, ["quiz"])


def test_pronoun_led_and_short_sentences_give_no_fact():
    assert (
        extract(Passage("p", "It is 7 to 10 nanometers thick in most cells. Short one.", "p"), 6)
        == []
    )


def test_facts_corpus_keeps_each_record_once():
    twice = facts_corpus([P, Passage("bio-001b", TEXT, "bio-001b")])
    once = facts_corpus([P])
    assert [r.id for r in twice] == [r.id for r in once]
    assert len({r.id for r in once}) == len(once)


def test_the_demo_corpus_gives_at_least_two_facts_for_most_passages():
    passages = [Passage(d["id"], d["text"], d["id"]) for d in map(json.loads, CORPUS.open())]
    with_two = sum(len(extract(p, 6)) >= 2 for p in passages)
    assert with_two >= 0.9 * len(passages)
    records = facts_corpus(passages, FORMS)
    assert {r.meta["fact_form"] for r in records} == set(FORMS)
