from filters.decontam import N_GRAM, HeldoutIndex, decontaminate, ngrams, normalize
from generators.records import Record

QUESTION = (
    "Which protein is phosphorylated by cyclin D-CDK4/6 complexes to release E2F transcription "
    "factors in the G1 phase of the cell cycle?"
)
INDEX = HeldoutIndex.build([("qa-003", QUESTION), ("qa-short", "What is ATP?")])


def words(start: int, stop: int) -> str:
    """Words start..stop-1 of the held-out question, as written there."""
    return " ".join(QUESTION.split()[start:stop])


def test_normalize_and_ngrams():
    assert normalize("Don't PANIC, e-mail!") == ["dont", "panic", "email"]
    assert normalize("“Curly” quotes — and dashes_") == ["curly", "quotes", "and", "dashes"]
    assert ngrams(["a", "b", "c"], 2) == {("a", "b"), ("b", "c")}
    assert ngrams(["a", "b"], 3) == set()


def test_a_13_word_run_in_other_case_and_punctuation_is_dropped():
    copied = words(2, 2 + N_GRAM).upper().replace(" ", ", ", 3) + "!"
    records = [
        Record(instruction="Answer briefly.", output=f"Well: {copied} Indeed."),
        Record(instruction="Explain ATP.", output="ATP stores energy."),
    ]
    kept, dropped = decontaminate(records, INDEX)
    assert [r.instruction for r in kept] == ["Explain ATP."]
    assert dropped[0].meta["dropped_by"] == "decontaminate"
    assert dropped[0].meta["drop_reason"] == "contaminated_qa-003"


def test_12_shared_words_are_kept():
    record = Record(instruction=f"Say: {words(0, N_GRAM - 1)} and then something else entirely.")
    kept, dropped = decontaminate([record], INDEX)
    assert kept == [record] and dropped == []


def test_a_heldout_text_under_13_words_never_matches():
    assert INDEX.match("What is ATP? " * 10) is None
    assert len(HeldoutIndex.build([("x", "What is ATP?")])) == 0


def test_an_ngram_across_two_fields_does_not_count():
    record = Record(instruction=f"Consider this: {words(0, 7)}", output=f"{words(7, 19)} is what")
    assert INDEX.match(f"{record.instruction} {record.output}") == "qa-003"
    kept, dropped = decontaminate([record], INDEX)
    assert kept == [record] and dropped == []


def test_a_shared_ngram_belongs_to_the_first_heldout_id():
    text = " ".join(f"w{i}" for i in range(20))
    for order in (["b", "a"], ["a", "b"]):
        index = HeldoutIndex.build([(i, text) for i in order])
        assert index.match(f"x {text} y") == order[0]
        assert index.texts == 2 and len(index) == 20 - N_GRAM + 1
