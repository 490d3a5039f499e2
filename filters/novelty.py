"""Novelty: Self-Instruct's ROUGE-L filter, exact, without scoring every pair.

Self-Instruct drops a new instruction whose ROUGE-L F-measure against any instruction in the pool
(the seeds + every instruction kept before it) is > 0.7. Scores and keep/drop decisions here are
those of `rouge_score.rouge_scorer.RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure`, to the
bit, but an LCS is computed only for pairs that can pass:

1. Tokens become word ids; the k-th occurrence of a word is its own "occurrence token", so the
   multiset overlap of two texts is a set overlap. F = 2 * LCS / (la + lb) and LCS <= overlap, so
   F > t needs overlap >= need(la + lb) = `_min_overlap(t, la + lb)`.
2. Candidates by prefix filtering (Chaudhuri et al. 2006; Bayardo et al. 2007): a pair that can
   pass shares >= need(la + lb) >= need(2m) tokens, m the shorter length, so any
   m - need(2m) + 1 + e tokens of the shorter side hold >= 1 + e shared ones (e = `PREFIX_EXTRA`).
   Each pool entry indexes such a prefix of itself (its rarest tokens when added), which a query
   probes with all its tokens (shorter partners); the query probes the full inverted index with
   its own rarest prefix (partners at least as long). Entries hit too few times are skipped.
3. Exact overlap for the candidates (numpy) prunes again; the survivors get an exact LCS
   (bit-parallel over the query's token positions) and rouge_score's own float arithmetic.

Not handled: rouge_score's stemmer or custom tokenizers, ROUGE-N, ROUGE-Lsum; removing entries
(the pool only grows, in memory); changing a pool's threshold. Below the threshold
`NoveltyPool.most_similar` is best-effort (its docstring says exactly what is guaranteed).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Hashable, Sequence

import numpy as np

from generators.records import Record

ROUGE_L_MAX = 0.7  # Self-Instruct (Wang et al. 2023) rejects at > 0.7
TOP_SIMILAR = 3  # most similar pool entries kept in lineage
# Pruning bounds are loosened by this many tokens, far above float rounding of t * n / 2, so
# rounding can never prune a pair whose (float) score exceeds the threshold.
SLACK = 1e-6
# Prefix tokens beyond the minimum: each adds a posting list to probe, and candidates must then be
# hit 1 + PREFIX_EXTRA times. benchmarks/novelty.py at N = 100,000: 0, 1, 2 -> 28.8, 30.1, 37.8 s.
PREFIX_EXTRA = 0
# rouge_score lowercases, turns every run of non-[a-z0-9] into a space and splits on whitespace:
# exactly the runs of [a-z0-9] in the lowercased text.
TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """rouge_score's default tokens (no stemmer): `"Don't panic, É-2!"` -> [don, t, panic, 2]."""
    return TOKEN_RE.findall(text.lower())


def _masks(tokens: Sequence[Hashable]) -> dict[Hashable, int]:
    """Bit i set where tokens[i] == t: `[5, 7, 5]` -> {5: 0b101, 7: 0b010}."""
    masks: dict[Hashable, int] = {}
    for i, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << i)
    return masks


def _lcs(masks: dict[Hashable, int], m: int, other: Sequence[Hashable]) -> int:
    """LCS length of the m tokens behind `masks` and `other`, bit-parallel (Hyyrö 2004).

    Each zero among v's low m bits counts one LCS token; carries past bit m never come back down.
    """
    v = (1 << m) - 1
    for token in other:
        match = masks.get(token)
        if match:
            u = v & match
            v = (v + u) | (v - u)
    return m - (v & ((1 << m) - 1)).bit_count()


def _fmeasure(lcs: int, la: int, lb: int) -> float:
    """rouge_score's F-measure with its float operations, so results are equal to the bit."""
    if not lcs:
        return 0.0
    precision, recall = lcs / lb, lcs / la
    return 2 * precision * recall / (precision + recall)


def rouge_l_f(a_tokens: Sequence[Hashable], b_tokens: Sequence[Hashable]) -> float:
    """Exact ROUGE-L F-measure of two token lists (symmetric): `[1, 2, 3], [1, 3]` -> 0.8."""
    if not a_tokens or not b_tokens:
        return 0.0
    lcs = _lcs(_masks(a_tokens), len(a_tokens), b_tokens)
    return _fmeasure(lcs, len(a_tokens), len(b_tokens))


def _min_overlap(threshold: float, total_len: np.ndarray | int) -> np.ndarray:
    """Fewest shared tokens with which F can exceed `threshold` (F <= 2 * overlap / total_len)."""
    return np.maximum(
        1, np.floor(threshold * np.asarray(total_len) / 2 - SLACK).astype(np.int64) + 1
    )


def _rarest(tokens: list[int], df: list[array], n: int) -> list[int]:
    """The n tokens with the fewest postings in `df` (ties: newest token first)."""
    return sorted(tokens, key=lambda t: (len(df[t]), -t))[: max(n, 0)]


def _hits(postings: list[array], tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(entries listed under any of `tokens`, how many of them list each), entries ascending."""
    out = array("i")
    for t in tokens:
        out.extend(postings[t])
    ids = np.sort(np.frombuffer(out, dtype=np.int32))
    firsts = np.flatnonzero(np.diff(ids, prepend=-1))
    return ids[firsts], np.diff(np.append(firsts, len(ids)))


class NoveltyPool:
    """Instructions to be novel against, indexed so a lookup scores only pairs that can pass."""

    def __init__(self, threshold: float = ROUGE_L_MAX) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        self._keys: list[str] = []
        self._seqs: list[tuple[int, ...]] = []  # word ids per entry, for the LCS
        self._lens = array("i")  # tokens per entry
        self._starts = array("q")  # where each entry's occurrence tokens start in _flat
        self._flat = array("i")  # every entry's occurrence tokens, concatenated
        self._word_ids: dict[str, int] = {}
        self._occ_ids: dict[tuple[int, int], int] = {}  # (word id, k-th occurrence) -> id
        self._full: list[array] = []  # occurrence token -> entries holding it
        self._prefix: list[array] = []  # occurrence token -> entries holding it in their prefix
        self._in_query = np.zeros(1024, dtype=np.uint8)  # scratch: 1 at the query's tokens

    def __len__(self) -> int:
        return len(self._keys)

    def _encode(self, text: str, grow: bool) -> tuple[list[int], list[int]]:
        """Word ids and occurrence-token ids; unseen ones are -1 unless `grow`.

        `"a b a"` -> ([0, 1, 0], [0, 1, 2]) on an empty pool (occurrences (0, 0), (1, 0), (0, 1)).
        """
        words, occs, seen = [], [], {}
        for token in tokenize(text):
            w = self._word_ids.get(token, -1)
            if w < 0 and grow:
                w = self._word_ids[token] = len(self._word_ids)
            k = seen[token] = seen.get(token, -1) + 1
            o = self._occ_ids.get((w, k), -1)
            if o < 0 and grow:
                o = self._occ_ids[(w, k)] = len(self._full)
                self._full.append(array("i"))
                self._prefix.append(array("i"))
            words.append(w)
            occs.append(o)
        return words, occs

    def add(self, key: str, text: str) -> None:
        """Add `text` under `key` (a record id or a seed id); it takes part in later lookups."""
        words, occs = self._encode(text, grow=True)
        index, m = len(self._keys), len(words)
        for o in _rarest(occs, self._full, int(self._prefix_len(m))):
            self._prefix[o].append(index)
        for o in occs:
            self._full[o].append(index)
        self._starts.append(len(self._flat))
        self._flat.extend(occs)
        self._lens.append(m)
        self._keys.append(key)
        self._seqs.append(tuple(words))
        if len(self._full) > len(self._in_query):
            self._in_query = np.zeros(2 * len(self._full), dtype=np.uint8)

    def _prefix_len(self, n: np.ndarray | int) -> np.ndarray:
        """Prefix tokens for a text of n tokens, vs partners at least as long."""
        return np.minimum(n, n - _min_overlap(self.threshold, 2 * np.asarray(n)) + 1 + PREFIX_EXTRA)

    def _candidates(self, m: int, known: list[int]) -> np.ndarray:
        """Entries sharing enough prefix tokens with the query (prefix filtering, see the top)."""
        t, lens = self.threshold, np.frombuffer(self._lens, dtype=np.int32)
        probe = int(self._prefix_len(m))  # unseen tokens are the rarest: they come first, hit none
        longer, hits = _hits(self._full, _rarest(known, self._full, probe - (m - len(known))))
        n = lens[longer]
        ok = (n >= m) & (hits >= _min_overlap(t, m + n) - (m - probe))
        shorter, s_hits = _hits(self._prefix, known)
        s_n = lens[shorter]
        s_ok = (s_n < m) & (s_hits >= _min_overlap(t, m + s_n) - (s_n - self._prefix_len(s_n)))
        return np.concatenate([longer[ok], shorter[s_ok]])

    def _overlaps(self, cands: np.ndarray, known: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(lengths, multiset overlaps with the query) of the candidate entries."""
        lens = np.frombuffer(self._lens, dtype=np.int32)[cands].astype(np.int64)
        starts = np.frombuffer(self._starts, dtype=np.int64)[cands]
        ends = np.cumsum(lens)
        positions = np.arange(ends[-1]) + np.repeat(starts - (ends - lens), lens)
        self._in_query[known] = 1
        hits = self._in_query[np.frombuffer(self._flat, dtype=np.int32)[positions]]
        self._in_query[known] = 0
        return lens, np.add.reduceat(hits, ends - lens, dtype=np.int64)

    def most_similar(self, text: str, k: int = TOP_SIMILAR) -> list[tuple[str, float]]:
        """Up to k (key, exact ROUGE-L F) pairs, best first (ties: earliest added first).

        Guaranteed: every entry scoring > threshold is scored, so the returned entries above the
        threshold are exactly the pool's best ones, and the first is the pool's maximum whenever
        that exceeds the threshold. Entries at or below it are the best of the few the prefix
        filter let through (those with the best overlap bound): exact scores, but possibly not
        the pool's best. Empty when nothing got through (e.g. empty pool, `text` without tokens).
        """
        words, occs = self._encode(text, grow=False)
        known = [o for o in occs if o >= 0]
        m = len(words)
        if not known or k <= 0:
            return []
        cands = self._candidates(m, known)
        if not cands.size:
            return []
        lens, overlaps = self._overlaps(cands, known)
        chosen = overlaps >= _min_overlap(self.threshold, m + lens)
        if len(cands) > k:  # plus the k best bounds: informative neighbours below the threshold
            chosen[np.argpartition(-overlaps / (m + lens), k - 1)[:k]] = True
        else:
            chosen[:] = True
        masks = _masks(words)
        scored = []
        for i in cands[chosen].tolist():
            lcs = _lcs(masks, m, self._seqs[i])
            scored.append((-_fmeasure(lcs, self._lens[i], m), i))
        scored.sort()
        return [(self._keys[i], -neg) for neg, i in scored[:k]]


def novelty_filter(
    records: list[Record], pool: NoveltyPool, stage: str = "novelty"
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): drop a record whose instruction scores > pool.threshold against the pool.

    Sequential, as in Self-Instruct: each record is compared with the pool as it stands, and kept
    ones join it (under their id). Every record gets `meta["novelty"]`; dropped ones name the
    most similar entry in their reason, e.g. "rouge_l_0.82_vs_seed_task_12".
    """
    kept: list[Record] = []
    dropped: list[Record] = []
    for record in records:
        similar = pool.most_similar(record.instruction)
        best_key, best = similar[0] if similar else ("", 0.0)
        record = record.with_meta(
            novelty={
                "max_rouge_l": round(best, 4),
                "most_similar": [[key, round(score, 4)] for key, score in similar],
            }
        )
        if best > pool.threshold:
            dropped.append(record.drop(stage, f"rouge_l_{best:.2f}_vs_{best_key}"))
        else:
            kept.append(record)
            pool.add(record.id, record.instruction)
    return kept, dropped
