"""Reading-comprehension tasks mined by rules: every answer is the passage's own text."""

from generators.corpus import Passage
from generators.reading import KINDS, key_terms, mine, mine_corpus, sentences

TEXT = (
    "Mitochondria are double-membraned organelles that make most of a cell's ATP. "
    "The inner membrane of mitochondria is folded into cristae. "
    "Cyanide is lethal to most animals because it blocks cytochrome c oxidase in the electron "
    "transport chain. "
    "Loss of the proton gradient across the membrane leads to a collapse of ATP synthesis. "
    "Mitochondria also carry their own circular genome."
)
P = Passage(id="bio-002", text=TEXT, doc_id="bio-002")


def by_kind(records):
    return {r.meta["reading_kind"]: r for r in records}


def test_sentences_split_at_terminal_punctuation_before_a_capital():
    assert sentences("A b c. D e? 3 f! g h.") == ["A b c.", "D e?", "3 f! g h."]
    assert sentences("  ") == []


def test_key_terms_prefer_recurring_words_of_the_first_sentence():
    assert key_terms(TEXT, 2) == ["mitochondria", "membrane"]


def test_mine_builds_every_kind_from_the_passage_text():
    got = by_kind(mine(P))
    assert set(got) == set(KINDS)
    assert got["continue"].input == sentences(TEXT)[0]
    assert got["continue"].output == " ".join(sentences(TEXT)[1:])
    assert got["keyword"].instruction == "Explain what is known about mitochondria."
    assert got["keyword"].output == " ".join(sentences(TEXT)[:2])
    assert got["cause"].instruction == "Explain why cyanide is lethal to most animals."
    assert got["cause"].output == (
        "Because it blocks cytochrome c oxidase in the electron transport chain."
    )
    assert got["effect"].instruction == (
        "Loss of the proton gradient across the membrane. What is the result?"
    )
    assert got["effect"].output == "A collapse of ATP synthesis."
    assert got["summary"].input == TEXT and got["summary"].output == sentences(TEXT)[0]
    for r in got.values():
        assert r.passages == ("bio-002",) and r.meta["origin"] == "reading"
        assert r.meta["source_passage"] == "bio-002"


def test_mine_skips_clauses_without_a_claim_and_honours_kinds():
    text = "Necrosis, by contrast, causes swelling and rupture of the cell. It ends there."
    assert mine(Passage("p", text, "p"), kinds=("cause", "effect")) == []
    dangling = "It is 100% for intravenous doses because nothing is lost on the way in."
    assert mine(Passage("p", dangling, "p"), kinds=("cause",)) == []
    assert [r.meta["reading_kind"] for r in mine(P, kinds=("summary",))] == ["summary"]
    assert mine(Passage("p", "One tiny line.", "p")) == []


def test_mine_corpus_keeps_each_task_once():
    twice = mine_corpus([P, Passage("bio-002b", TEXT, "bio-002b")], kinds=("summary",))
    assert len(twice) == 1


def test_blank_hides_a_number_with_its_unit_else_a_key_term():
    from generators.reading import ALL_KINDS, blanks

    text = (
        "The human mitochondrial genome encodes 37 genes (13 proteins). "
        "About 25% of children are affected. It has 3 copies. "
        "The membrane is roughly 7 to 10 nanometers thick. PCR spread in the 1980s worldwide."
    )
    assert blanks(text, 5) == [
        ("The human mitochondrial genome encodes ____ (13 proteins).", "37 genes"),
        ("About ____ of children are affected.", "25%"),
        ("The membrane is roughly ____ to 10 nanometers thick.", "7"),  # "to": the number alone
    ]  # "It has 3 copies." opens with a pronoun; "1980s" is no whole number and names no term
    got = mine(P, kinds=("blank",), per_kind=2)
    assert [(r.instruction, r.output) for r in got] == [
        ("Fill in the blank: ____ are double-membraned organelles that make most of a cell's ATP.",
         "Mitochondria."),
        ("Fill in the blank: The inner membrane of ____ is folded into cristae.", "mitochondria."),
    ]  # fmt: skip
    assert all(r.meta["reading_kind"] == "blank" for r in got)
    assert "blank" in ALL_KINDS and "blank" not in KINDS  # opt-in: the default export is unchanged


def test_blank_hides_the_fact_where_it_stands_not_an_earlier_look_alike():
    from generators.reading import blanks

    text = "H5N1 infections kill 5 to 10 of every hundred patients in some outbreaks."
    assert blanks(text, 1) == [
        ("H5N1 infections kill ____ to 10 of every hundred patients in some outbreaks.", "5")
    ]
    text = "Vibrio cholerae is a curved rod that causes cholera through a toxin. Cholera spreads."
    assert blanks(text, 1) == [
        ("Vibrio cholerae is a curved rod that causes ____ through a toxin.", "cholera")
    ]
