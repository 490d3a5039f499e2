import pytest

from filters.heuristics import (
    BLOCKED_WORDS,
    MAX_WORDS,
    blocked_word,
    heuristic_filter,
    instruction_reason,
    normalize,
)
from generators.records import Record


@pytest.mark.parametrize(
    ("instruction", "truncated", "reason"),
    [
        ("Explain how insulin lowers glucose.", False, None),
        ("Define homeostasis briefly.", False, None),  # exactly MIN_WORDS
        ("Explain how insulin", True, "truncated"),
        ("Define ATP.", False, "too_short"),
        ("", False, "too_short"),
        ("Explain " + "this " * MAX_WORDS, False, "too_long"),
        ("Describe this image of a cell.", False, "blocked_word_image"),
        ("Summarize the attached FILES please.", False, "blocked_word_files"),
        ("Go to the pharmacy and ask.", False, "blocked_word_go_to"),
        ("Explain how to go  to a clinic.", False, "blocked_word_go_to"),
        ("Write a program that sorts genes.", False, "starts_with_write_a_program"),
        ("write a program to count codons.", False, "starts_with_write_a_program"),
        ("- Explain how insulin works.", False, "starts_with_punctuation"),
        ('"Explain how insulin works."', False, "starts_with_punctuation"),
        ("Ésplica come funziona l'insulina.", False, "starts_non_ascii"),
    ],
)
def test_instruction_reason(instruction, truncated, reason):
    assert instruction_reason(instruction, truncated) == reason


def test_truncation_is_reported_before_length():
    assert instruction_reason("Explain", truncated=True) == "truncated"


@pytest.mark.parametrize("word", BLOCKED_WORDS)
def test_every_blocked_word_has_its_reason(word):
    reason = "blocked_word_" + word.replace(" ", "_")
    assert instruction_reason(f"Please explain the {word} here.") == reason


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Update the patient profile today.", None),  # "file" inside "profile"
        ("Compare the imagery in two poems.", None),
        ("Explain the plotted survival data.", None),
        ("Read the MAPS of gene loci.", "maps"),
        ("Explain why they go together well.", None),
        ("Describe a file-based workflow.", "file"),
    ],
)
def test_blocked_words_match_whole_words_case_insensitively(text, word):
    assert blocked_word(text) == word


def test_normalize():
    assert normalize("  Define\n ATP. ") == "define atp."


def test_heuristic_filter_reasons_lineage_and_duplicates():
    first = Record(instruction="Explain how insulin works.", meta={"round": 1, "seeds": ["s1"]})
    records = [
        first,
        Record(instruction="Define ATP.", passages=("bio-1",)),
        Record(instruction="  explain how   INSULIN works. ", meta={"round": 1}),
        Record(instruction="Explain how insulin", meta={"truncated": True, "round": 1}),
        Record(instruction="Explain how glucagon works."),
    ]
    kept, dropped = heuristic_filter(records)
    assert [r.instruction for r in kept] == [
        "Explain how insulin works.",
        "Explain how glucagon works.",
    ]
    assert kept[0] == first
    assert [(r.instruction, r.meta["dropped_by"], r.meta["drop_reason"]) for r in dropped] == [
        ("Define ATP.", "heuristics", "too_short"),
        ("  explain how   INSULIN works. ", "heuristics", f"duplicate_of_{first.id}"),
        ("Explain how insulin", "heuristics", "truncated"),
    ]
    assert dropped[0].passages == ("bio-1",)
    assert dropped[2].meta["truncated"] is True and dropped[2].meta["round"] == 1


def test_dropped_first_copy_does_not_drop_a_good_second_copy():
    cut = Record(instruction="Explain how insulin works.", meta={"truncated": True})
    good = Record(instruction="Explain how insulin works.")
    kept, dropped = heuristic_filter([cut, good], stage="h")
    assert kept == [good]
    assert [(r.meta["dropped_by"], r.meta["drop_reason"]) for r in dropped] == [("h", "truncated")]


def test_same_instruction_with_different_inputs_is_not_a_duplicate():
    records = [
        Record(instruction="Classify this drug.", input="Aspirin"),
        Record(instruction="Classify this drug.", input="Penicillin"),
        Record(instruction="classify this drug.", input="aspirin"),
    ]
    kept, dropped = heuristic_filter(records)
    assert kept == records[:2]
    assert [r.meta["drop_reason"] for r in dropped] == [f"duplicate_of_{records[0].id}"]
