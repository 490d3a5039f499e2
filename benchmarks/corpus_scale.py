"""Corpus scale (P5): peak memory beyond the embedder, and time, to ingest and index a big corpus.

    python benchmarks/corpus_scale.py [--passages 1000000] [--model-sample 20000] [--kind fp16]
                                      [--out DIR] [--keep] [--mode stream|run]

Writes a synthetic Parquet corpus (`id`, `text`; seeded; 30-60 words drawn by frequency from the
demo corpus data/biomed, so one passage per document; ~1 % exact copies of a recent document) one
row group at a time, then streams it through `iter_passages` -> `PassageIndex.build_streaming`
twice, each time in a fresh child process that first loads the default embedder (all-MiniLM-L6-v2)
and encodes a warm-up batch:

    model     the first --model-sample passages, embedded by that model: the real embed rate
    stand-in  all passages, embedded by StandInEncoder (hashed word counts times a seeded random
              projection, no model): ingest, chunking, dedup, passages.parquet, faiss and file
              writes at full scale, where the model would take ~3.5 h on 2 CPU cores

Both use an fp16 index by default (`--kind flat` for the exact one): at 1,000,000 passages the
flat index alone is 1.5 GB; the stand-in run measured 1.87 GiB beyond the embedder with it, about
2.2 GiB with the model's working memory added: over the goal.

Peak beyond the embedder = VmHWM at the end (the peak is reset after the warm-up by writing 5 to
/proc/self/clear_refs) minus VmRSS after the warm-up; it includes faiss and pyarrow being imported
and, in the model run, the model's working memory past the small warm-up (~0.5 GiB at batch 4096).
`--mode run` measures what `selfalign run` itself does with a `corpus.stream: true` recipe instead
of the bare index build: the same child runs the pipeline's ingest + index step
(`flows.pipeline.corpus_and_index` on a started run folder: streamed ingest, exact-duplicate
drop, index, the corpus stage's files, the generation sample of `corpus.sample` passages, texts
by id), with the stand-in encoder in place of the run's embedder (said so in the output; the
model run is skipped in this mode).
The real embedder at N passages is estimated: time = the stand-in run without its encoding + kept
passages / the model's encode rate; peak = the stand-in run's + the model run's.
Goal at 1,000,000 passages: <= 2 GiB beyond the embedder, no full copy of the corpus in memory.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from generators.corpus import Passage, iter_passages
from generators.retrieval.index import (
    IDS_FILE,
    INDEX_FILE,
    INDEX_KINDS,
    PASSAGES_FILE,
    PassageIndex,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO_CORPUS = ROOT / "data" / "biomed" / "corpus.jsonl"
DEMO_SEEDS = ROOT / "data" / "biomed" / "seeds.jsonl"
GOAL_GIB = 2.0
MIN_WORDS, MAX_WORDS = 30, 60  # under CHUNK_WORDS (180): every document is one passage
DUP_RATE = 0.01  # share of documents that copy one of the RECENT documents before them
RECENT = 1000
ROW_GROUP = 10_000  # rows generated and written per Parquet row group
STAND_IN_BUCKETS = 1024  # hashed-word vocabulary of the stand-in encoder
FILES = (INDEX_FILE, IDS_FILE, PASSAGES_FILE)  # sizes reported, in this order
WARM_UP = ["Insulin lowers blood glucose.", "Statins inhibit HMG-CoA reductase."] * 32


def vocabulary() -> tuple[list[str], list[int]]:
    """The demo corpus's words (lowercased, punctuation stripped) and their cumulative counts.

    Real words, so the model tokenizes them like real text (~1.4 word pieces a word; made-up
    words split into ~3 and would make the model look 8x slower).
    """
    counts: collections.Counter[str] = collections.Counter()
    for line in DEMO_CORPUS.open(encoding="utf-8"):
        words = (w.strip(".,;:()\"'").lower() for w in json.loads(line)["text"].split())
        counts.update(w for w in words if w)
    words, counts_ = zip(*counts.most_common(), strict=True)
    return list(words), list(itertools.accumulate(counts_))


def document(rng: random.Random, words: list[str], cum_weights: list[int]) -> str:
    """MIN_WORDS-MAX_WORDS words drawn by frequency, in sentences of 6-14 words."""
    out: list[str] = []
    left = rng.randint(MIN_WORDS, MAX_WORDS)
    while left > 0:
        n = min(left, rng.randint(6, 14))
        out.append(" ".join(rng.choices(words, cum_weights=cum_weights, k=n)).capitalize() + ".")
        left -= n
    return " ".join(out)


def write_corpus(path: Path, n: int, seed: int = 0) -> int:
    """n documents ("doc-0000000", ...) into a Parquet file, a row group at a time.

    Returns how many are exact copies of an earlier document (the passages dedup should drop).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng, (words, cum_weights) = random.Random(seed), vocabulary()
    recent: collections.deque[str] = collections.deque(maxlen=RECENT)
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    copies = 0
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, ROW_GROUP):
            ids, texts = [], []
            for i in range(start, min(n, start + ROW_GROUP)):
                copy = bool(recent) and rng.random() < DUP_RATE
                texts.append(rng.choice(recent) if copy else document(rng, words, cum_weights))
                ids.append(f"doc-{i:07d}")
                recent.append(texts[-1])
                copies += copy
            writer.write_table(pa.table({"id": ids, "text": texts}, schema=schema))
    return copies


class StandInEncoder:
    """Not a model: unit vectors of hashed word counts times a seeded random projection.

    Same interface as `Embedder`; deterministic across processes (crc32, not `hash`), numpy only,
    so the same text always gets the same vector and identical texts score 1.0.
    """

    model_id, dim = "stand-in-hashed-384", 384

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((STAND_IN_BUCKETS, self.dim), dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        flat = [
            row * STAND_IN_BUCKETS + zlib.crc32(word.encode()) % STAND_IN_BUCKETS
            for row, text in enumerate(texts)
            for word in text.lower().split()
        ]
        counts = np.bincount(
            np.asarray(flat, dtype=np.int64), minlength=len(texts) * STAND_IN_BUCKETS
        )
        vecs = counts.reshape(len(texts), STAND_IN_BUCKETS).astype(np.float32) @ self.projection
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


class Timed:
    """An encoder that adds up the seconds spent in `encode`."""

    def __init__(self, encoder: Any) -> None:
        self.encoder, self.seconds = encoder, 0.0
        self.model_id, self.dim = encoder.model_id, encoder.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.encoder.encode(texts)
        finally:
            self.seconds += time.perf_counter() - start


def memory_kib(field: str) -> int:
    """A field of /proc/self/status in KiB: 'VmRSS' (now) or 'VmHWM' (peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(corpus: Path, folder: Path, encoder: Any, limit: int | None, kind: str) -> dict:
    """Stream the first `limit` passages (all if None) into an index in `folder`; counts + times."""
    counts = {"kept": 0, "dropped": 0}
    last: list[Passage] = []

    def kept():
        for passage, reason in itertools.islice(iter_passages(corpus), limit):
            counts["kept" if reason is None else "dropped"] += 1
            if reason is None:
                last[:] = [passage]
                yield passage

    timed = Timed(encoder)
    start = time.perf_counter()
    index = PassageIndex.build_streaming(kept(), timed, folder, kind=kind)
    seconds = time.perf_counter() - start
    peak_kib = memory_kib("VmHWM")
    del index  # the check below loads the folder as a later stage would
    loaded = PassageIndex.load(folder, encoder)
    start = time.perf_counter()
    hit_id, score = loaded.search([last[0].text], k=1)[0][0]
    files = {name: (folder / name).stat().st_size for name in FILES}
    return {
        **counts,
        "kind": kind,
        "seconds": seconds,
        "encode_seconds": timed.seconds,
        "peak_kib": peak_kib,
        "search_ms": 1000 * (time.perf_counter() - start),
        "search_ok": hit_id == last[0].id,
        "search_score": score,
        "files": files,
    }


def measure_run(corpus: Path, folder: Path, kind: str) -> dict:
    """`selfalign run`'s ingest + index step on `corpus` (stream: true) in a run folder under
    `folder`, the stand-in encoder standing in for the run's embedder; counts + times."""
    from flows.pipeline import corpus_and_index
    from flows.recipe import Recipe
    from flows.run import Run

    stream = {"path": str(corpus), "stream": True, "near_duplicates": None, "index": kind}
    fields = {"name": "corpus-scale", "seeds": str(DEMO_SEEDS), "corpus": stream}
    recipe = Recipe.model_validate({**fields, "runs_dir": str(folder)})
    run = Run.start(recipe)
    timed = Timed(StandInEncoder())
    run.encoder = lambda: timed  # the run's embedder, replaced for this measurement only
    start = time.perf_counter()
    sample, texts = corpus_and_index(run)
    seconds = time.perf_counter() - start
    peak_kib = memory_kib("VmHWM")
    stage = run.stages[0]
    last = texts.ids[-1]
    index_dir = run.dir / "index"
    loaded = PassageIndex.load(index_dir, timed)
    start = time.perf_counter()
    hit_id, score = loaded.search([texts[last]], k=1)[0][0]
    return {
        "kept": stage["kept"],
        "dropped": stage["dropped"],
        "kind": kind,
        "seconds": seconds,
        "encode_seconds": timed.seconds,
        "peak_kib": peak_kib,
        "search_ms": 1000 * (time.perf_counter() - start),
        "search_ok": hit_id == last,
        "search_score": score,
        "sample": len(sample),
        "files": {name: (index_dir / name).stat().st_size for name in FILES},
    }


def child(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints `RESULT {json}` as its last line."""
    if args.child == "run":
        import flows.pipeline  # noqa: F401  (imported before the baseline, as in `selfalign run`)
    from generators.retrieval.embedder import Embedder

    embedder = Embedder("default")
    embedder.encode(WARM_UP)
    baseline_kib, reset = memory_kib("VmRSS"), reset_peak()
    if args.child == "run":
        result = measure_run(args.corpus, args.folder, args.kind)
    else:
        encoder = embedder if args.child == "model" else StandInEncoder()
        result = measure(args.corpus, args.folder, encoder, args.limit, args.kind)
    print("RESULT " + json.dumps({**result, "baseline_kib": baseline_kib, "peak_reset": reset}))


def run_child(vectors: str, corpus: Path, folder: Path, limit: int | None, kind: str) -> dict:
    command = [sys.executable, __file__, "--child", vectors, "--corpus", str(corpus)]
    command += ["--folder", str(folder), "--kind", kind]
    command += ["--limit", str(limit)] if limit is not None else []
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"{vectors} run failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1].removeprefix("RESULT "))


HEADER = [
    "vectors", "passages", "kept", "dropped", "index", "seconds", "passages/s", "encode s",
    "peak beyond embedder GiB", "index.faiss MB", "ids.json MB", "passages.parquet MB",
]  # fmt: skip


def beyond_gib(r: dict) -> float:
    return (r["peak_kib"] - r["baseline_kib"]) / 2**20


def table_row(vectors: str, r: dict) -> list[str]:
    read, sizes = r["kept"] + r["dropped"], [r["files"][f] / 1e6 for f in FILES]
    return [
        vectors, f"{read:,}", f"{r['kept']:,}", f"{r['dropped']:,}", r["kind"],
        f"{r['seconds']:.1f}", f"{read / r['seconds']:,.0f}", f"{r['encode_seconds']:.1f}",
        f"{beyond_gib(r):.2f}", f"{sizes[0]:.0f}", f"{sizes[1]:.1f}", f"{sizes[2]:.0f}",
    ]  # fmt: skip


def report(n: int, copies: int, rows: dict[str, dict]) -> None:
    print(f"corpus: {n:,} documents, {copies:,} exact copies; one passage per document")
    print("| " + " | ".join(HEADER) + " |")
    print("|---" * len(HEADER) + "|")
    for vectors, r in rows.items():
        print("| " + " | ".join(table_row(vectors, r)) + " |")
    for vectors, r in rows.items():
        print(
            f"{vectors}: RSS with the embedder loaded {r['baseline_kib'] / 2**20:.2f} GiB "
            f"(peak reset after warm-up: {r['peak_reset']}); one query on the reloaded folder: "
            f"top-1 is the passage queried: {r['search_ok']} (score {r['search_score']:.3f}, "
            f"{r['search_ms']:.0f} ms)"
        )
    model, stand_in = rows["model"], rows["stand-in"]
    rate = model["kept"] / model["encode_seconds"]
    estimate = stand_in["seconds"] - stand_in["encode_seconds"] + stand_in["kept"] / rate
    print(
        f"model encode rate {rate:.0f} passages/s; estimated total with the real embedder at "
        f"{n:,} documents: {estimate:,.0f} s = {estimate / 3600:.1f} h (an estimate: stand-in run "
        "minus its encoding + kept passages / model encode rate)"
    )
    both = beyond_gib(stand_in) + beyond_gib(model)  # fixed overhead (imports...) counted twice
    print(
        f"estimated peak beyond the embedder with the real embedder at {n:,} documents: "
        f"{both:.2f} GiB (stand-in peak + the model run's, which holds the model's working memory; "
        "an estimate, on the high side)"
    )
    met = "met" if both <= GOAL_GIB else "NOT met"
    print(f"goal <= {GOAL_GIB} GiB beyond the embedder at {n:,}: {met}")


def report_run(n: int, copies: int, r: dict) -> None:
    """The `--mode run` figures: `selfalign run`'s corpus step, stand-in encoder."""
    print(f"corpus: {n:,} documents, {copies:,} exact copies; one passage per document")
    print("selfalign run's ingest + index (corpus.stream: true), stand-in encoder (not the model)")
    print("| " + " | ".join(HEADER) + " |")
    print("|---" * len(HEADER) + "|")
    print("| " + " | ".join(table_row("stand-in, selfalign run", r)) + " |")
    print(
        f"RSS with the embedder loaded {r['baseline_kib'] / 2**20:.2f} GiB (peak reset after "
        f"warm-up: {r['peak_reset']}); generation sample {r['sample']:,} passages; one query on "
        f"the reloaded index, the last passage's text read back by id: top-1 is that passage: "
        f"{r['search_ok']} (score {r['search_score']:.3f}, {r['search_ms']:.0f} ms)"
    )
    met = "met" if beyond_gib(r) <= GOAL_GIB else "NOT met"
    print(f"goal <= {GOAL_GIB} GiB beyond the embedder at {n:,}: {met} ({beyond_gib(r):.2f} GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000, help="synthetic documents")
    parser.add_argument("--model-sample", type=int, default=20_000, help="passages for the model")
    parser.add_argument("--kind", choices=INDEX_KINDS, default="fp16", help="faiss index kind")
    parser.add_argument("--out", type=Path, help="work folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and index folders")
    parser.add_argument(
        "--mode",
        choices=["stream", "run"],
        default="stream",
        help="stream: the bare streamed index build (model + stand-in); run: `selfalign run`'s "
        "own ingest + index step with corpus.stream (stand-in encoder)",
    )
    parser.add_argument("--child", choices=["model", "stand-in", "run"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    out = args.out or Path(tempfile.mkdtemp(prefix="selfalign-corpus-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    corpus, written = out / "corpus.parquet", [out / "corpus.parquet"]
    try:
        start = time.perf_counter()
        copies = write_corpus(corpus, args.passages)
        print(f"wrote {corpus} in {time.perf_counter() - start:.0f} s", flush=True)
        if args.mode == "run":
            written.append(out / "runs")
            result = run_child("run", corpus, out / "runs", None, args.kind)
            report_run(args.passages, copies, result)
            return
        rows = {}
        for vectors, limit in (("model", args.model_sample), ("stand-in", None)):
            folder = out / f"index-{vectors}"
            written.append(folder)
            rows[vectors] = run_child(vectors, corpus, folder, limit, args.kind)
        report(args.passages, copies, rows)
    finally:
        if not args.keep:
            for path in written:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            if not args.out:
                out.rmdir()


if __name__ == "__main__":
    main()
