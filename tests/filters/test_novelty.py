"""The novelty filter against rouge_score itself, on the Self-Instruct instructions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from filters.novelty import ROUGE_L_MAX, NoveltyPool, novelty_filter, rouge_l_f, tokenize
from generators.records import Record

SELF_INSTRUCT = Path(__file__).resolve().parents[3] / "shared" / "external" / "self-instruct"
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def reference(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def near_duplicate(rng: random.Random, text: str) -> str:
    """`text` with 1-4 words deleted or swapped with a neighbour."""
    words = text.split()
    for _ in range(rng.randint(1, 4)):
        if len(words) < 3:
            break
        i = rng.randrange(len(words) - 1)
        if rng.random() < 0.5:
            del words[i]
        else:
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


@pytest.fixture(scope="module")
def real() -> list[str]:
    """The 175 seed and 252 user-oriented Self-Instruct instructions."""
    if not SELF_INSTRUCT.exists():
        pytest.skip(f"{SELF_INSTRUCT} is not there")
    files = ("seed_tasks.jsonl", "user_oriented_instructions.jsonl")
    return [json.loads(line)["instruction"] for f in files for line in (SELF_INSTRUCT / f).open()]


@pytest.fixture(scope="module")
def mixed(real: list[str]) -> list[str]:
    """Real instructions and near-duplicates of them (and of each other), shuffled."""
    rng = random.Random(0)
    texts = list(real)
    for _ in range(300):
        texts.append(near_duplicate(rng, rng.choice(texts)))
    rng.shuffle(texts)
    return texts


@pytest.mark.parametrize(
    "text",
    [
        "",
        "?!... --- ***",
        "Hello, World! It's 3.14 o'clock.",
        "snake_case and kebab-case/slashes\\back",
        "Ünïcödé café naïve ÉCOLE straße",
        "İstanbul K-ray ﬁne ＦＵＬＬ width",  # lowercasing changes length / stays non-ASCII
        "x² ½ ٣ 123abc ABC123",
        "tabs\tand\nnewlines\r\n  spaces ",
        "emoji 🙂 in the middle🙂too",
    ],
)
def test_tokenize_matches_rouge_score(text):
    assert tokenize(text) == SCORER._tokenizer.tokenize(text)


def test_rouge_l_f_matches_rouge_score_on_real_pairs(real, mixed):
    rng = random.Random(1)
    pairs = []
    for text in rng.choices(real, k=1200):  # 1 to 6 rounds of edits: scores from ~0.3 to 1
        edited = text
        for _ in range(rng.randint(1, 6)):
            edited = near_duplicate(rng, edited)
        pairs.append((text, edited))
    pairs += [(rng.choice(mixed), rng.choice(mixed)) for _ in range(1200)]
    ids: dict[str, int] = {}
    scores = []
    for a, b in pairs:
        ta, tb = tokenize(a), tokenize(b)
        expected = reference(a, b)
        assert abs(rouge_l_f(ta, tb) - expected) <= 1e-9, (a, b)
        as_ids = (
            [ids.setdefault(w, len(ids)) for w in ta],
            [ids.setdefault(w, len(ids)) for w in tb],
        )
        assert rouge_l_f(*as_ids) == rouge_l_f(tb, ta) == expected
        scores.append(expected)
    assert sum(s > ROUGE_L_MAX for s in scores) > 400
    assert sum(0.3 < s <= ROUGE_L_MAX for s in scores) > 400


@pytest.mark.parametrize("threshold", [0.0, 0.5, ROUGE_L_MAX, 0.9])
def test_most_similar_returns_every_entry_above_threshold_exactly(mixed, threshold):
    pool = NoveltyPool(threshold)
    entries = mixed[:200]
    for i, text in enumerate(entries):
        pool.add(f"e{i}", text)
    pool_tokens = [tokenize(t) for t in entries]
    for query in mixed[200:300]:
        tokens = tokenize(query)
        scores = [rouge_scorer._score_lcs(tokens, p).fmeasure for p in pool_tokens]
        above = sorted((-s, i) for i, s in enumerate(scores) if s > threshold)
        found = pool.most_similar(query, k=len(entries))
        assert [(key, s) for key, s in found if s > threshold] == [(f"e{i}", -s) for s, i in above]
        assert all(s == scores[int(key[1:])] for key, s in found)


def self_instruct_loop(seeds: list[str], records: list[Record]) -> tuple[list[str], dict]:
    """Self-Instruct's loop with rouge_score: kept ids, {dropped id: reason}."""
    pool = [(f"seed_{i}", t) for i, t in enumerate(seeds)]
    kept, dropped = [], {}
    for record in records:
        scores = [reference(record.instruction, text) for _, text in pool]
        best = max(range(len(scores)), key=scores.__getitem__)  # first of the ties
        if scores[best] > ROUGE_L_MAX:
            dropped[record.id] = f"rouge_l_{scores[best]:.2f}_vs_{pool[best][0]}"
        else:
            kept.append(record.id)
            pool.append((record.id, record.instruction))
    return kept, dropped


def test_novelty_filter_matches_self_instruct_loop(mixed):
    seeds, texts = mixed[:60], mixed[60:320]
    records = [Record(instruction=t, id=f"r{i}") for i, t in enumerate(texts)]
    pool = NoveltyPool()
    for i, text in enumerate(seeds):
        pool.add(f"seed_{i}", text)

    kept, dropped = novelty_filter(records, pool)

    ref_kept, ref_dropped = self_instruct_loop(seeds, records)
    assert [r.id for r in kept] == ref_kept
    assert {r.id: r.meta["drop_reason"] for r in dropped} == ref_dropped
    assert len(dropped) > 50 and len(kept) > 50
    assert {r.meta["dropped_by"] for r in dropped} == {"novelty"}
    assert len(pool) == len(seeds) + len(kept)
    instruction = {r.id: r.instruction for r in records} | {
        f"seed_{i}": t for i, t in enumerate(seeds)
    }
    for record in kept + dropped:
        novelty = record.meta["novelty"]
        assert novelty["max_rouge_l"] == (novelty["most_similar"] or [[None, 0.0]])[0][1]
        for key, score in novelty["most_similar"]:
            assert score == round(reference(record.instruction, instruction[key]), 4)
    assert all(r.meta["novelty"]["max_rouge_l"] > ROUGE_L_MAX for r in dropped)
    assert all(r.meta["novelty"]["max_rouge_l"] <= ROUGE_L_MAX for r in kept)


def test_empty_pool_keeps_and_adds():
    kept, dropped = novelty_filter(
        [Record(instruction="Name three rivers.")], pool := NoveltyPool()
    )
    assert dropped == []
    assert kept[0].meta["novelty"] == {"max_rouge_l": 0.0, "most_similar": []}
    assert len(pool) == 1


def test_identical_instruction_scores_one_and_names_the_first_entry():
    pool = NoveltyPool()
    pool.add("seed_1", "Write a haiku about the sea.")
    pool.add("seed_2", "write a HAIKU about the sea!")
    _, dropped = novelty_filter([Record(instruction="Write a haiku about the sea.")], pool)
    assert dropped[0].meta["drop_reason"] == "rouge_l_1.00_vs_seed_1"
    assert dropped[0].meta["novelty"]["most_similar"] == [["seed_1", 1.0], ["seed_2", 1.0]]
    assert len(pool) == 2


@pytest.mark.parametrize("text", ["", "?!... ---", "é ü ß"])
def test_text_without_tokens_scores_zero_and_is_kept(text):
    pool = NoveltyPool()
    pool.add("seed_1", "Write a haiku about the sea.")
    pool.add("seed_empty", text)
    assert pool.most_similar(text) == []
    assert rouge_l_f(tokenize(text), tokenize(text)) == reference(text, text) == 0.0
    kept, _ = novelty_filter([Record(instruction=text)], pool)
    assert kept[0].meta["novelty"]["max_rouge_l"] == 0.0
    assert len(pool) == 3


def test_threshold_outside_zero_one_is_an_error():
    with pytest.raises(ValueError, match="threshold"):
        NoveltyPool(1.5)
