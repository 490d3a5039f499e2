"""Near-duplicate removal: MinHash LSH over word n-grams, and embedding cosine with faiss.

Both filters are sequential, like novelty: each record is compared with the records kept before it,
so the first occurrence of a near-duplicate group is kept and the later ones are dropped with a
reason naming it (f"near_duplicate_of_{id}", f"embedding_duplicate_of_{id}") and `meta["dedup"]`
holding the method, the similarity and the kept id. Kept records come out unchanged.

Not handled here: dedup across runs or rounds (a filter sees one batch; novelty's pool is the
cross-round memory), IVF/HNSW indexes (flat search is exact and fine up to ~1M records, past that
use an approximate faiss index), and edits spread through a short text: one word changed in the
middle of a 20-word text changes 3 of its 18 word 3-grams (Jaccard 15/21 = 0.71, kept by MinHash at
0.8), which is what the embedding filter is for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from generators.records import Record

if TYPE_CHECKING:
    import faiss
    from datasketch import MinHash

# Common MinHash near-dup settings: Lee et al. 2022 ("Deduplicating Training Data Makes Language
# Models Better", NearDup) call documents near-duplicates at Jaccard >= 0.8 over word 5-grams. Our
# texts are instructions of tens of words and one changed word alters up to n shingles, so 3-grams.
# 128 permutations is datasketch's default: estimate std <= 0.045 (about 0.035 at J = 0.8).
MINHASH_PERMS = 128
SHINGLE_WORDS = 3
JACCARD_MIN = 0.8
MINHASH_SEED = 1  # fixed, so the same records give the same hashes in every run
# LSH banding weights (false positives, false negatives). datasketch's default (0.5, 0.5) makes a
# pair at J = 0.8 a candidate only ~40% of the time; every candidate is verified by its Jaccard
# estimate, so false positives are cheap and we tune for recall: ~87% at 0.8, ~97% at 0.85.
LSH_WEIGHTS = (0.1, 0.9)
# Embedding near-dup: 0.95 is a conservative semantic-dedup cut for sentence embeddings (only
# close paraphrases of one task score above it); lower it to dedup more aggressively.
COSINE_MAX = 0.95

Key = Callable[[Record], str]


def record_text(record: Record) -> str:
    """The whole example, the default MinHash key: instruction, input and output on their lines."""
    return f"{record.instruction}\n{record.input}\n{record.output}"


def task_text(record: Record) -> str:
    """The task without its answer, the default embedding key: instruction and input."""
    return f"{record.instruction}\n{record.input}"


def shingles(text: str, n: int = SHINGLE_WORDS) -> set[str]:
    """Lowercased word n-grams: 'A b c D' -> {'a b c', 'b c d'}; shorter texts: 'A b' -> {'a b'}."""
    words = text.lower().split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def minhashes(texts: list[str], n: int = SHINGLE_WORDS) -> list[MinHash]:
    """One seeded MinHash per text, over its word n-gram shingles (shared permutations)."""
    from datasketch import MinHash

    shingled = ([s.encode("utf-8") for s in shingles(text, n)] for text in texts)
    return MinHash.bulk(shingled, num_perm=MINHASH_PERMS, seed=MINHASH_SEED)


def _best_match(
    minhash: MinHash, candidates: list[int], kept: list[MinHash], threshold: float
) -> tuple[int, float] | None:
    """(kept position, Jaccard estimate) of the best verified LSH candidate, or None.

    Highest estimate wins, ties go to the earliest kept record; estimates < threshold are LSH false
    positives and ignored.
    """
    scored = [(-minhash.jaccard(kept[i]), i) for i in candidates]
    verified = [(neg, i) for neg, i in scored if -neg >= threshold]
    if not verified:
        return None
    neg, i = min(verified)
    return i, -neg


def first_duplicates(hashes: list[MinHash], threshold: float) -> list[tuple[int, float] | None]:
    """In order, for each signature: None when it is kept, else (position among the kept ones
    of the one it near-duplicates, Jaccard estimate >= threshold)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=MINHASH_PERMS, weights=LSH_WEIGHTS)
    kept: list[MinHash] = []
    out: list[tuple[int, float] | None] = []
    for minhash in hashes:
        match = _best_match(minhash, lsh.query(minhash), kept, threshold)
        if match is None:
            lsh.insert(len(kept), minhash)  # keyed by position: texts may share an id
            kept.append(minhash)
        out.append(match)
    return out


def near_duplicate_texts(
    texts: list[str], threshold: float, n: int
) -> list[tuple[int, float] | None]:
    """first_duplicates over word n-gram MinHashes, with positions into `texts`: None for a text
    kept, else (index of the earlier kept text it near-duplicates, Jaccard estimate)."""
    kept_at: list[int] = []
    out: list[tuple[int, float] | None] = []
    for i, match in enumerate(first_duplicates(minhashes(texts, n), threshold)):
        if match is None:
            kept_at.append(i)
            out.append(None)
        else:
            out.append((kept_at[match[0]], match[1]))
    return out


def minhash_dedup(
    records: list[Record],
    threshold: float = JACCARD_MIN,
    stage: str = "minhash_dedup",
    key: Key = record_text,
    hasher: Callable[[list[str]], list[MinHash]] | None = None,
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): drop a record whose Jaccard estimate with a kept one is >= threshold.

    `hasher` computes the signatures (default `minhashes`; flows/ops/scale.py maps it over a
    cluster).

    Dropped records get reason f"near_duplicate_of_{kept_id}" and meta["dedup"] =
    {"method": "minhash", "jaccard_estimate": 0.875, "duplicate_of": kept_id}.
    """
    kept: list[Record] = []
    dropped: list[Record] = []
    hashes = (hasher or minhashes)([key(r) for r in records])
    for record, match in zip(records, first_duplicates(hashes, threshold), strict=True):
        if match is None:
            kept.append(record)
        else:
            position, estimate = match
            original = kept[position].id
            dedup = {
                "method": "minhash",
                "jaccard_estimate": round(estimate, 3),
                "duplicate_of": original,
            }
            reason = f"near_duplicate_of_{original}"
            dropped.append(record.with_meta(dedup=dedup).drop(stage, reason))
    return kept, dropped


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32: [[3, 4], [0, 0]] -> [[0.6, 0.8], [0, 0]]."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1), dtype=np.float32)


def _embed_all(
    records: list[Record], embed: Callable[[list[str]], np.ndarray], key: Key
) -> np.ndarray:
    """Unit vectors for all records from one `embed` call; checks there is one row per record."""
    vectors = np.asarray(embed([key(r) for r in records]))
    if vectors.ndim != 2 or len(vectors) != len(records):
        raise ValueError(
            f"embed returned shape {vectors.shape} for {len(records)} texts; want (n, dim)"
        )
    return unit_rows(vectors)


def _nearest(index: faiss.IndexFlatIP, query: np.ndarray) -> tuple[np.float32, int]:
    """(cosine, position) of the indexed vector nearest the (1, dim) `query`; (-inf, -1) if none."""
    if not index.ntotal:
        return np.float32(-np.inf), -1
    cosines, positions = index.search(query, 1)
    return cosines[0, 0], int(positions[0, 0])


def embedding_dedup(
    records: list[Record],
    embed: Callable[[list[str]], np.ndarray],
    threshold: float = COSINE_MAX,
    stage: str = "embedding_dedup",
    key: Key = task_text,
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): drop a record whose cosine with a kept one is > threshold.

    `embed` is e.g. `Embedder.encode`. Cosines are compared in float32, the vectors' precision.
    Dropped records get reason f"embedding_duplicate_of_{kept_id}" and meta["dedup"] =
    {"method": "embedding", "cosine": 0.9712, "duplicate_of": kept_id}.
    """
    if not records:
        return [], []
    import faiss

    vectors = _embed_all(records, embed, key)
    index = faiss.IndexFlatIP(vectors.shape[1])
    kept: list[Record] = []
    dropped: list[Record] = []
    for record, vector in zip(records, vectors, strict=True):
        query = vector[None, :]
        cosine, position = _nearest(index, query)
        if cosine > np.float32(threshold):
            original = kept[position].id
            dedup = {
                "method": "embedding",
                "cosine": round(float(cosine), 4),
                "duplicate_of": original,
            }
            reason = f"embedding_duplicate_of_{original}"
            dropped.append(record.with_meta(dedup=dedup).drop(stage, reason))
        else:
            index.add(query)
            kept.append(record)
    return kept, dropped
