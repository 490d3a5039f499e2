"""Corpus ingest for a run: read and chunk (generators/corpus.py), then drop near-duplicate
passages (MinHash over word 5-grams, filters/dedup.py) so the same text is not indexed, retrieved
and generated from twice. Each dropped passage keeps a reason naming the passage kept in its
place (near_duplicate_of_<id>); the corpus stage's funnel counts them."""

from __future__ import annotations

from filters.dedup import near_duplicate_texts
from flows.recipe import CorpusConfig
from generators.corpus import Corpus, load_corpus

NEAR_DUP_WORDS = 5  # shingle size for passages (Lee et al. 2022 use word 5-grams for documents)


def without_near_duplicates(corpus: Corpus, threshold: float) -> Corpus:
    """The corpus with each passage whose Jaccard estimate with an earlier kept passage is
    >= threshold moved to `dropped`, reason near_duplicate_of_<kept id>."""
    matches = near_duplicate_texts([p.text for p in corpus.passages], threshold, NEAR_DUP_WORDS)
    kept, dropped = [], list(corpus.dropped)
    for passage, match in zip(corpus.passages, matches, strict=True):
        if match is None:
            kept.append(passage)
        else:
            dropped.append((passage, f"near_duplicate_of_{corpus.passages[match[0]].id}"))
    return Corpus(passages=kept, dropped=dropped, source=corpus.source)


def ingest(cfg: CorpusConfig) -> Corpus:
    """The recipe's corpus as passages, exact and (when set) near duplicates dropped."""
    corpus = load_corpus(cfg.path, cfg.chunk_words, cfg.overlap_words, cfg.on_bad_record)
    if cfg.near_duplicates is None:
        return corpus
    return without_near_duplicates(corpus, cfg.near_duplicates)
