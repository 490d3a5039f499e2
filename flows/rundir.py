"""The run folder: per-stage kept/rejected Parquet files, the manifest, atomic writes.

    runs/<name>/
      recipe.yaml, manifest.json
      index/                       faiss index of the corpus (reused while the corpus is unchanged)
      cache/                       Prefect's persisted task results (LLM and retrieval batches)
      stages/NN-<stage>/kept.parquet, rejected.parquet
      export/                      train.jsonl, train.parquet, hf/, README.md

Records are stored with `meta` as a JSON string: lineage keys differ from stage to stage, and a
JSON column keeps every file readable with one schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generators.io import atomic_path, write_text_atomic
from generators.records import Record

RECORD_COLUMNS = ("id", "instruction", "input", "output", "passages", "meta")


FAILED_FILE = "failed_requests.jsonl"  # LLM requests that failed after their retries


def records_frame(records: list[Record]):
    """A pandas DataFrame of records (meta as a JSON string)."""
    import pandas as pd

    rows = [
        {**r.to_dict(), "meta": json.dumps(r.meta, ensure_ascii=False, sort_keys=True)}
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def write_records(path: Path, records: list[Record]) -> None:
    """Write records to a Parquet file atomically (an empty list writes an empty table)."""
    frame = records_frame(records)
    frame["passages"] = frame["passages"].map(list)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_records(path: Path) -> list[Record]:
    import pandas as pd

    frame = pd.read_parquet(path)
    return [
        Record(
            id=row.id,
            instruction=row.instruction,
            input=row.input,
            output=row.output,
            passages=tuple(row.passages),
            meta=json.loads(row.meta),
        )
        for row in frame.itertuples(index=False)
    ]


def stage_dir(run_dir: Path, number: int, stage: str) -> Path:
    return run_dir / "stages" / f"{number:02d}-{stage}"


def write_stage(
    run_dir: Path, number: int, stage: str, kept: list[Record], dropped: list[Record]
) -> None:
    folder = stage_dir(run_dir, number, stage)
    write_records(folder / "kept.parquet", kept)
    write_records(folder / "rejected.parquet", dropped)


def final_stage(run_dir: Path) -> Path:
    """The last stage folder of a run (its kept.parquet is what gets exported)."""
    stages = sorted(
        p for p in (run_dir / "stages").glob("[0-9][0-9]-*") if (p / "kept.parquet").is_file()
    )
    if not stages:
        from generators.errors import SelfAlignError

        raise SelfAlignError(f"{run_dir}: not a finished run (no stages/*/kept.parquet)")
    return stages[-1]


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_text_atomic(run_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
