"""Corpus ingest: documents from disk -> overlapping word-window passages for retrieval.

Inputs, detected from the path:
- `.jsonl`: one `{"id": str, "text": str, ...}` per line (other keys ignored);
- `.parquet`: `id` and `text` columns, read batch by batch;
- a folder saved by `datasets.save_to_disk` (has dataset_info.json / state.json), `id` + `text`;
- any other folder: every `.txt` file below it (sorted); the doc id is the relative path without
  `.txt` (`notes/a.txt` -> "notes/a"); UTF-8 with or without BOM, CRLF -> LF.

A passage's id is its document id when the document is one chunk, else "<doc id>#<k>" (k from 0),
so ids stay the same while the document and chunk settings do. Empty documents and exact duplicate
passages (same whitespace-normalized text) are kept in `Corpus.dropped` with a reason;
`iter_passages` streams the same passages and reasons, holding a 16-byte digest per kept passage
rather than its text, so a big corpus can be indexed without a copy of it in memory.
Bad input is a `SelfAlignError` naming the file and line / row / .txt file, a control character
other than tab and newline in an id or text included (a JSON escape such as "\\u0000" too).

Not handled: sentence- or token-aware splitting, near-duplicates (the dedup filter's job), saved
DatasetDicts (point at one split's folder), gzip, a doc id that looks like another's "<id>#<k>".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.errors import SelfAlignError, first_line
from generators.io import decode_utf8, iter_jsonl_objects, json_type, refuse_control_chars

# all-MiniLM-L6-v2 (the default embedder) truncates at 256 word pieces, about 180-200 English
# words: longer chunks would be cut silently. The demo passages (80-180 words) stay one chunk each.
CHUNK_WORDS = 180
# ~2 sentences: a fact that straddles a window boundary still appears whole in one passage.
CHUNK_OVERLAP = 30
BATCH_ROWS = 1024  # Parquet / dataset rows read per step: bounds memory on big corpora
DATASET_MARKERS = ("dataset_info.json", "state.json")  # files `save_to_disk` writes
COLUMNS = ["id", "text"]
DIGEST_BYTES = 16  # blake2b bytes that stand for a passage text in exact-duplicate checks

Located = tuple[str, str, Any]  # (where, id, text) as read; `where` names file and line / row


@dataclass(frozen=True)
class Passage:
    """One retrievable chunk of a document."""

    id: str
    text: str
    doc_id: str


@dataclass
class Corpus:
    """Kept passages, dropped ones with their reason, and the source path as given."""

    passages: list[Passage]
    dropped: list[tuple[Passage, str]]
    source: str


def _check_window(size_words: int, overlap_words: int) -> None:
    if size_words < 1:
        raise SelfAlignError(f"chunk_words must be at least 1, got {size_words}")
    if not 0 <= overlap_words < size_words:
        raise SelfAlignError(
            f"overlap_words must be >= 0 and < chunk_words ({size_words}), got {overlap_words}"
        )


def chunk_text(text: str, size_words: int, overlap_words: int) -> list[str]:
    """Word windows of `size_words`, each starting `size_words - overlap_words` after the last.

    `chunk_text("a b c d e f", 3, 1)` -> ['a b c', 'c d e', 'e f']; short text stays one chunk,
    whitespace collapses to single spaces, blank text gives [].
    """
    _check_window(size_words, overlap_words)
    words = text.split()
    step = size_words - overlap_words
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size_words]))
        if start + size_words >= len(words):
            break
    return chunks


def _checked(where: str, doc_id: Any, text: Any, on_bad: str) -> tuple[str, str]:
    """(id, text) of one document. A text that is missing, not a string or only whitespace is
    an error naming the file, line and id; with on_bad 'skip' it becomes "" (dropped later as
    empty_text). A bad id is always an error: nothing could name the dropped record; so is a
    control character other than tab and newline in the id or text (not text for a model)."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise SelfAlignError(f"{where}: 'id' must be a non-empty string, got {json_type(doc_id)}")
    refuse_control_chars(doc_id, where, "id")
    if isinstance(text, str):
        refuse_control_chars(text, f"{where}: document {doc_id!r}", "text")
    if isinstance(text, str) and text.strip():
        return doc_id, text
    if on_bad == "skip":
        return doc_id, text if isinstance(text, str) else ""
    problem = "is empty" if isinstance(text, str) else f"must be a string, got {json_type(text)}"
    raise SelfAlignError(
        f"{where}: document {doc_id!r}: 'text' {problem} (corpus.on_bad_record: skip drops it)"
    )


def _jsonl_docs(path: Path) -> Iterator[Located]:
    for lineno, obj in iter_jsonl_objects(path):
        yield f"{path}:{lineno}", obj.get("id"), obj.get("text")


def _batched_rows(path: Path, batches: Iterable[dict[str, list[Any]]]) -> Iterator[Located]:
    """Rows of column batches ({"id": [...], "text": [...]}) numbered from 0 across batches."""
    row = 0
    for batch in batches:
        for doc_id, text in zip(batch["id"], batch["text"], strict=True):
            yield f"{path}: row {row}", doc_id, text
            row += 1


def _require_columns(path: Path, kind: str, names: list[str]) -> None:
    if not set(COLUMNS) <= set(names):
        found = ", ".join(names) or "none"
        raise SelfAlignError(f"{path}: {kind} needs 'id' and 'text' columns (found: {found})")


def _parquet_docs(path: Path) -> Iterator[Located]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) keeps every row group it has read: a copy of the file
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as e:
        raise SelfAlignError(f"{path}: not a readable Parquet file ({first_line(e)})") from None
    _require_columns(path, "Parquet file", pf.schema_arrow.names)
    batches = pf.iter_batches(batch_size=BATCH_ROWS, columns=COLUMNS)
    return _batched_rows(path, (b.to_pydict() for b in batches))


def _saved_dataset_docs(path: Path) -> Iterator[Located]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:
        raise SelfAlignError(f"{path}: not a readable saved dataset ({first_line(e)})") from None
    _require_columns(path, "saved dataset", list(ds.column_names))
    return _batched_rows(path, ds.select_columns(COLUMNS).iter(batch_size=BATCH_ROWS))


def _read_txt(file: Path) -> str:
    raw = file.read_bytes()
    if b"\x00" in raw:
        raise SelfAlignError(f"{file}: binary file (NUL bytes), expected UTF-8 text")
    text = decode_utf8(raw, file).replace("\r\n", "\n").replace("\r", "\n")
    return refuse_control_chars(text, str(file))  # names the line: `_checked` could not


def _txt_folder_docs(path: Path) -> Iterator[Located]:
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise SelfAlignError(
            f"{path}: no .txt files, and not a datasets.save_to_disk folder "
            f"(no {' or '.join(DATASET_MARKERS)})"
        )
    return ((str(file), rel[: -len(".txt")], _read_txt(file)) for rel, file in files)


def _located_docs(path: Path) -> Iterator[Located]:
    """The reader for `path`'s format; cheap checks (path, columns, any .txt) happen now."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            raise SelfAlignError(f"{path}: a saved DatasetDict; point at one split's folder")
        if any((path / name).is_file() for name in DATASET_MARKERS):
            return _saved_dataset_docs(path)
        return _txt_folder_docs(path)
    if not path.is_file():
        raise SelfAlignError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_docs(path)
    if suffix == ".parquet":
        return _parquet_docs(path)
    raise SelfAlignError(
        f"{path}: unknown corpus format {suffix!r} "
        "(expected .jsonl, .parquet, a folder of .txt files or a datasets.save_to_disk folder)"
    )


def _unique(docs: Iterator[Located], on_bad: str) -> Iterator[tuple[str, str]]:
    first_at: dict[str, str] = {}
    for where, doc_id, text in docs:
        doc_id, text = _checked(where, doc_id, text, on_bad)
        if doc_id in first_at:
            raise SelfAlignError(
                f"{where}: duplicate document id {doc_id!r} (first at {first_at[doc_id]})"
            )
        first_at[doc_id] = where
        yield doc_id, text


def iter_documents(path: str | Path, on_bad_record: str = "error") -> Iterator[tuple[str, str]]:
    """Stream (doc id, text) from a corpus path; ids are checked unique as they come, and a
    document without text is an error (on_bad_record 'skip': its text is "")."""
    if on_bad_record not in ("error", "skip"):
        raise ValueError(f"on_bad_record must be 'error' or 'skip', got {on_bad_record!r}")
    return _unique(_located_docs(Path(path)), on_bad_record)


def text_digest(text: str) -> int:
    """A fixed-size stand-in for a passage text in the dedup table: 16 bytes of blake2b.

    Two different texts share a digest with odds about n^2 / 2^129 among n passages (~1e-27 at a
    million), far below a disk error; 16 bytes cost ~8 MB more than 8 would at a million.
    """
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=DIGEST_BYTES).digest(), "little"
    )


def source_files(path: str | Path) -> list[Path]:
    """The files a corpus path reads: the file itself, or every file below a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SelfAlignError(f"{path}: corpus not found")
    return sorted(f for f in path.rglob("*") if f.is_file())


def source_digest(path: str | Path, block: int = 1 << 20) -> str:
    """sha256 over the relative names and bytes of `source_files`, read `block` bytes at a time:
    what a streamed index is reused by (reading is ~1 GB/s, far cheaper than embedding)."""
    root, h = Path(path), hashlib.sha256()
    for file in source_files(root):
        h.update(str(file.relative_to(root) if root.is_dir() else file.name).encode() + b"\0")
        with open(file, "rb") as f:
            while data := f.read(block):
                h.update(data)
        h.update(b"\0")
    return h.hexdigest()


def iter_passages(
    path: str | Path,
    chunk_words: int = CHUNK_WORDS,
    overlap_words: int = CHUNK_OVERLAP,
    on_bad_record: str = "error",
) -> Iterator[tuple[Passage, str | None]]:
    """Stream every passage with its drop reason (None: kept); path and window are checked now."""
    _check_window(chunk_words, overlap_words)
    return _passages(iter_documents(path, on_bad_record), chunk_words, overlap_words)


def _passages(
    docs: Iterator[tuple[str, str]], chunk_words: int, overlap_words: int
) -> Iterator[tuple[Passage, str | None]]:
    # a 16-byte digest of each kept text, not the text: ~90 bytes a kept passage (86 MB at 1M)
    first_id: dict[int, str] = {}
    for doc_id, text in docs:
        chunks = chunk_text(text, chunk_words, overlap_words)
        if not chunks:
            yield Passage(doc_id, text, doc_id), "empty_text"
        for k, chunk in enumerate(chunks):
            passage = Passage(doc_id if len(chunks) == 1 else f"{doc_id}#{k}", chunk, doc_id)
            kept_id = first_id.setdefault(text_digest(chunk), passage.id)
            yield passage, None if kept_id == passage.id else f"duplicate_of_{kept_id}"


def load_corpus(
    path: str | Path,
    chunk_words: int = CHUNK_WORDS,
    overlap_words: int = CHUNK_OVERLAP,
    on_bad_record: str = "error",
) -> Corpus:
    """Chunk every document into passages; drop exact duplicate passages (and, with
    on_bad_record 'skip', documents without text; else those are an error)."""
    corpus = Corpus(passages=[], dropped=[], source=str(path))
    for passage, reason in iter_passages(path, chunk_words, overlap_words, on_bad_record):
        if reason is None:
            corpus.passages.append(passage)
        else:
            corpus.dropped.append((passage, reason))
    if not corpus.passages:
        raise SelfAlignError(f"{path}: empty corpus: no document has any text")
    return corpus
