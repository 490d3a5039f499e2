"""passages.parquet: the passage texts beside a streamed index (index.py writes it), read back
by id or sampled without the corpus in memory.

    id, doc_id, text    one row per passage, in index order, written a batch (row group) at a time

Not handled: writing (`PassageIndex.build_streaming` does it, with the index), updating rows.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from generators.corpus import Passage

PASSAGES_FILE = "passages.parquet"  # written by PassageIndex.build_streaming only


def passages_schema() -> Any:
    """The Arrow schema of passages.parquet."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("doc_id", pa.string()), ("text", pa.string())])


class PassageTexts(Mapping[str, str]):
    """Passage id -> text, read from a streamed index folder's passages.parquet as asked for.

    Holds the id -> row map (built on first use, ~100 bytes an id) and the last few row groups
    read, never the whole corpus; `preload` adds passages already in memory (the sample).
    """

    def __init__(self, folder: str | Path, ids: list[str]) -> None:
        import pyarrow.parquet as pq

        self.ids, self.known = ids, {}
        self.file = pq.ParquetFile(Path(folder) / PASSAGES_FILE)
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.num_row_groups)]
        self.starts = list(itertools.accumulate(sizes, initial=0))
        self.rows: dict[str, int] | None = None
        self.group = lru_cache(maxsize=8)(self._read_group)

    def preload(self, passages: Iterable[Passage]) -> None:
        self.known.update((p.id, p.text) for p in passages)

    def _read_group(self, number: int) -> list[str]:
        return self.file.read_row_group(number, columns=["text"]).column("text").to_pylist()

    def __getitem__(self, pid: str) -> str:
        if pid in self.known:
            return self.known[pid]
        if self.rows is None:
            self.rows = {p: i for i, p in enumerate(self.ids)}
        row = self.rows[pid]  # KeyError for an id not in the index, as a dict would
        number = bisect.bisect_right(self.starts, row) - 1
        return self.group(number)[row - self.starts[number]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def sample_passages(folder: str | Path, k: int, seed: int) -> list[Passage]:
    """A seeded uniform sample of `k` passages (all when fewer) from passages.parquet, in file
    order, read one row group at a time."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(Path(folder) / PASSAGES_FILE)
    total = file.metadata.num_rows
    chosen = set(random.Random(seed).sample(range(total), k)) if k < total else None
    out, start = [], 0
    for number in range(file.num_row_groups):
        rows = file.read_row_group(number).to_pylist()
        out += [
            Passage(row["id"], row["text"], row["doc_id"])
            for i, row in enumerate(rows, start)
            if chosen is None or i in chosen
        ]
        start += len(rows)
    return out
