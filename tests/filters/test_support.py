"""Support scores: the share of an answer's content words and numbers found in its passages."""

from filters.support import distribution, score_support, support, support_filter
from generators.records import Record
from generators.text import content_words, stem, support_words

PASSAGE = "ATP synthase sits in the inner mitochondrial membrane and makes ATP from ADP."


def test_content_words_drop_stopwords_short_words_and_plurals():
    assert content_words("The cells divide, and the cell's proteins fold.") == {
        "cell",
        "divide",
        "protein",
        "fold",
    }
    assert content_words("It is a of to.") == set()


def test_stem_keeps_words_that_only_look_plural():
    assert [stem(w) for w in ("classes", "virus", "analysis", "bus", "genes")] == [
        "class",
        "virus",
        "analysis",
        "bus",
        "gene",
    ]


def test_support_is_the_share_of_answer_words_in_the_passages():
    assert support("ATP synthase makes ATP.", [PASSAGE]) == 1.0
    # 'atp', 'synthase' backed; 'nucleus', 'ribosomes' not
    assert support("ATP synthase lives in the nucleus near ribosomes.", [PASSAGE]) == 0.4
    assert support("Insulin lowers blood glucose.", [PASSAGE]) == 0.0
    assert support("Yes.", [PASSAGE]) == 0.0  # no content word: nothing is supported
    assert support("ATP synthase.", []) == 0.0
    assert support("ATP and glucose.", ["No ATP here.", "Glucose there."]) == 1.0


def test_numbers_count_whatever_their_length():
    assert support_words("25% of 4 cells, pH 7.4") == {"25", "4", "7.4", "cell"}
    assert content_words("25% of 4 cells") == {"cell"}  # reading's key terms stay words
    passage = "If both parents are carriers, each child has a 25% chance of the disease."
    assert support("25%.", [passage]) == 1.0
    assert support("50%.", [passage]) == 0.0
    assert support("25% or 4 children.", [passage]) == 0.3333  # "4" and "children" unbacked


def test_score_and_filter_keep_the_score_on_dropped_records():
    texts = {"p1": PASSAGE}
    good = Record(instruction="What makes ATP?", output="ATP synthase makes ATP.", passages=("p1",))
    bad = Record(instruction="Define insulin.", output="Insulin lowers glucose.", passages=("p1",))
    scored = score_support([good, bad], texts)
    assert [r.meta["support"] for r in scored] == [1.0, 0.0]
    kept, dropped = support_filter(scored, 0.5)
    assert [r.id for r in kept] == [good.id]
    assert dropped[0].meta["drop_reason"] == "unsupported"
    assert dropped[0].meta["dropped_by"] == "grounding"
    assert dropped[0].meta["support"] == 0.0
    assert support_filter(scored, 0.0) == (scored, [])


def test_distribution_quartiles():
    assert distribution([]) == {"n": 0}
    d = distribution([0.0, 0.25, 0.5, 0.75, 1.0])
    assert d == {"n": 5, "mean": 0.5, "p25": 0.25, "median": 0.5, "p75": 0.75}
