"""The novelty filter vs Self-Instruct's all-pairs ROUGE-L loop, side by side in one process.

    python benchmarks/novelty.py [--n 100000] [--check 5000] [--seed 0]

N synthetic instructions (seeded: templates + words drawn by frequency from the Self-Instruct
files, 6-30 words, ~15% near-duplicates of earlier ones) go through `novelty_filter` against a
pool of the 175 Self-Instruct seeds. The first `--check` of them also go through the reference:
stanford_alpaca's `generate_instruction.py` loop (tokenize once, `rouge_scorer._score_lcs` against
every pool entry, drop at max > 0.7), timed beside ours on the same instructions. Exits 1 if the
kept sets or drop reasons differ. Goal: N = 100,000 in <= 60 s on 2 cores. The reference is
quadratic: ~10 min for the default 5,000 on 2 cores (`--check 1000`: under a minute).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import random
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from filters.novelty import ROUGE_L_MAX, NoveltyPool, novelty_filter, tokenize
from generators.records import Record

SELF_INSTRUCT = Path(__file__).resolve().parents[2] / "shared" / "external" / "self-instruct"
VOCAB_SIZE = 4000  # "a few thousand words": the most frequent words of the Self-Instruct files
NEAR_DUP_RATE = 0.15  # share of instructions that are light edits of an earlier one
MIN_WORDS, MODE_WORDS, MAX_WORDS = 6, 13, 30  # triangular, mean ~16 words like Self-Instruct's
OPENINGS = [
    "Write a", "Write a short", "Explain why", "Explain how", "Generate a list of",
    "Classify the following", "Given a", "Given the following", "Summarize the", "Rewrite the",
    "Translate the following", "Create a", "Describe the", "Suggest some", "What is the",
    "How can I", "Find the", "Compose a", "Identify the", "Make a", "Design a", "Provide an",
    "List the", "Compare the", "Tell me about", "Come up with", "Give an example of",
    "Answer the question about", "Convert the", "Edit the following",
]  # fmt: skip
ENDINGS = [
    "", "", "", "in one sentence", "for a beginner", "step by step", "with examples",
    "in a formal tone", "for a child", "as a bulleted list", "and explain your answer",
]  # fmt: skip


def seeds() -> list[tuple[str, str]]:
    """(id, instruction) of the 175 Self-Instruct seed tasks."""
    rows = (json.loads(line) for line in (SELF_INSTRUCT / "seed_tasks.jsonl").open())
    return [(row["id"], row["instruction"]) for row in rows]


def vocabulary() -> tuple[list[str], list[int]]:
    """The VOCAB_SIZE most frequent words of the Self-Instruct files and their cumulative counts."""
    counts: collections.Counter[str] = collections.Counter()
    for name in ("seed_tasks.jsonl", "user_oriented_instructions.jsonl"):
        for line in (SELF_INSTRUCT / name).open():
            row = json.loads(line)
            texts = [row["instruction"]] + [
                i["input"] + " " + i["output"] for i in row["instances"]
            ]
            counts.update(w for t in texts for w in tokenize(t) if w.isalpha())
    words, counts_ = zip(*counts.most_common(VOCAB_SIZE), strict=True)
    return list(words), list(itertools.accumulate(counts_))


def near_duplicate(rng: random.Random, text: str, words: list[str]) -> str:
    """`text` after 1-3 word edits: delete, swap neighbours, replace or insert."""
    tokens = text.split()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(tokens))
        edit = rng.choice(("delete", "swap", "replace", "insert"))
        if edit == "delete" and len(tokens) > MIN_WORDS:
            del tokens[i]
        elif edit == "swap" and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif edit == "replace":
            tokens[i] = rng.choice(words)
        else:
            tokens.insert(i, rng.choice(words))
    return " ".join(tokens)


def instructions(n: int, seed: int) -> list[str]:
    """n synthetic instructions, deterministic for a given seed."""
    rng = random.Random(seed)
    words, cum_weights = vocabulary()
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < NEAR_DUP_RATE:
            out.append(near_duplicate(rng, rng.choice(out), words))
            continue
        opening, ending = rng.choice(OPENINGS), rng.choice(ENDINGS)
        length = round(rng.triangular(MIN_WORDS, MAX_WORDS, MODE_WORDS))
        n_body = max(2, length - len(opening.split()) - len(ending.split()))
        body = " ".join(rng.choices(words, cum_weights=cum_weights, k=n_body))
        out.append(f"{opening} {body} {ending}".strip() + rng.choice(".?"))
    return out


def reference(seed_texts: list[str], texts: list[str]) -> tuple[list[int], dict[int, str], float]:
    """stanford_alpaca's loop with rouge_score: (kept indices, {dropped index: reason}, seconds)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    keys = [f"seed_{i}" for i in range(len(seed_texts))]
    pool = [scorer._tokenizer.tokenize(t) for t in seed_texts]
    kept, dropped = [], {}
    start = time.perf_counter()
    for i, text in enumerate(texts):
        tokens = scorer._tokenizer.tokenize(text)
        scores = [rouge_scorer._score_lcs(tokens, p).fmeasure for p in pool]
        best = max(range(len(scores)), key=scores.__getitem__)  # first of the ties
        if scores[best] > ROUGE_L_MAX:
            dropped[i] = f"rouge_l_{scores[best]:.2f}_vs_{keys[best]}"
            continue
        kept.append(i)
        keys.append(f"rec_{i}")
        pool.append(tokens)
    return kept, dropped, time.perf_counter() - start


def ours(seed_texts: list[str], texts: list[str]) -> tuple[list[int], dict[int, str], float]:
    """novelty_filter over `texts`: (kept indices, {dropped index: reason}, seconds)."""
    pool = NoveltyPool()
    for i, text in enumerate(seed_texts):
        pool.add(f"seed_{i}", text)
    records = [Record(instruction=t, id=f"rec_{i}") for i, t in enumerate(texts)]
    start = time.perf_counter()
    kept, dropped = novelty_filter(records, pool)
    seconds = time.perf_counter() - start
    reasons = {int(r.id[4:]): r.meta["drop_reason"] for r in dropped}
    return [int(r.id[4:]) for r in kept], reasons, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic instructions to filter")
    parser.add_argument("--check", type=int, default=5_000, help="first ones to check vs rouge")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seed_texts = [text for _, text in seeds()]
    texts = instructions(args.n, args.seed)

    kept_all, dropped_all, seconds_all = ours(seed_texts, texts)
    check = texts[: args.check]
    kept, dropped, seconds = ours(seed_texts, check)
    ref_kept, ref_dropped, ref_seconds = reference(seed_texts, check)
    same = kept == ref_kept and dropped == ref_dropped

    table = Table(title=f"novelty filter (ROUGE-L > {ROUGE_L_MAX}), pool starts with 175 seeds")
    for column in ("run", "instructions", "kept", "dropped", "seconds", "s per 1k"):
        table.add_column(column, justify="right" if column != "run" else "left")
    rows = [
        ("ours", args.n, len(kept_all), len(dropped_all), seconds_all),
        ("ours", len(check), len(kept), len(dropped), seconds),
        ("rouge_score all-pairs", len(check), len(ref_kept), len(ref_dropped), ref_seconds),
    ]
    for name, n, k, d, s in rows:
        table.add_row(name, f"{n:,}", f"{k:,}", f"{d:,}", f"{s:.2f}", f"{1000 * s / max(n, 1):.3f}")
    console = Console()
    console.print(table)
    console.print(f"speed-up on the first {len(check):,}: {ref_seconds / max(seconds, 1e-9):.0f}x")
    console.print(f"kept sets and drop reasons identical to rouge_score: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
