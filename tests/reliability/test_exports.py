"""Exports are all-or-nothing and deterministic.

Atomic: a crash at any point of `write_export` (mid-file, between files, in the final swap, or a
killed process) leaves the previous export byte-for-byte, or none when there was none, and no temp
folder behind. Deterministic: the same records give the same bytes, and the same recipe + seed on
a deterministic (scripted) model gives the same train.jsonl in two run folders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.export
from flows.export import write_export, write_format
from generators.records import Record
from tests.reliability.fakes import Script, tiny_recipe
from tests.reliability.test_bad_model_output import BAD, GOOD, PROMPTS

OLD = [
    Record(instruction=f"Explain step {i} of glycolysis.", output=f"Step {i}.") for i in range(3)
]
NEW = [
    Record(
        instruction=f"Describe enzyme number {i}.",
        input="A liver biopsy." if i % 2 else "",
        output=f"Enzyme {i} speeds up a reaction.",
        passages=(f"bio-{i:03d}",),
        meta={"score": i, "round": 1},
    )
    for i in range(40)
]
REJECTED = [Record(instruction="Draw a cell.").drop("heuristics", "blocked_word_draw")]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file under `folder` with its bytes (None for folders), by relative path."""
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def old_export(run_dir: Path) -> dict[str, bytes | None]:
    write_export(run_dir, OLD, "old card", REJECTED)
    return tree(run_dir / "export")


def crash_after(calls: int, function):
    """`function`, raising on call number `calls` + 1 (a crash part-way through a file)."""
    count = {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(28, "No space left on device")
        return function(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize(
    "where",
    [
        "mid_train_jsonl",  # some rows of train.jsonl written
        "mid_parquet",  # train.jsonl complete, train.parquet failing
        "after_some_files",  # train.*, hf/ written; rejected.jsonl failing
        "in_the_swap",  # every file written; moving the new folder into place fails
    ],
)
def test_a_crash_keeps_the_old_export_byte_for_byte(tmp_path, monkeypatch, where):
    before = old_export(tmp_path)
    if where == "mid_train_jsonl":
        monkeypatch.setattr(flows.export, "export_row", crash_after(5, flows.export.export_row))
    elif where == "mid_parquet":
        monkeypatch.setattr(flows.export, "_parquet_table", crash_after(0, None))
    elif where == "after_some_files":
        monkeypatch.setattr(flows.export, "rejected_row", crash_after(0, None))
    else:
        rename = Path.rename

        def failing_rename(self, target):
            if self.name == ".export.tmp":
                raise OSError(5, "Input/output error")
            return rename(self, target)

        monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError):
        write_export(tmp_path, NEW, "new card", REJECTED)
    assert tree(tmp_path / "export") == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no .export.tmp / .export.old


def test_a_crash_in_the_first_export_leaves_none(tmp_path, monkeypatch):
    monkeypatch.setattr(flows.export, "export_row", crash_after(5, flows.export.export_row))
    with pytest.raises(OSError):
        write_export(tmp_path, NEW, "card")
    assert list(tmp_path.iterdir()) == []


def test_a_crash_in_a_re_export_keeps_the_old_file_or_folder(tmp_path, monkeypatch):
    write_format(OLD, "jsonl", tmp_path / "train.jsonl")
    write_format(OLD, "hf", tmp_path / "hf")
    before = tree(tmp_path)
    monkeypatch.setattr(flows.export, "export_row", crash_after(5, flows.export.export_row))
    with pytest.raises(OSError):
        write_format(NEW, "jsonl", tmp_path / "train.jsonl")
    import datasets

    def half_save(self, path, *args, **kwargs):
        Path(path).mkdir(parents=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", half_save)
    with pytest.raises(OSError):
        write_format(NEW, "hf", tmp_path / "hf")
    assert tree(tmp_path) == before


# Exports NEW, and at the 10th row says so in a marker file and waits to be killed.
KILLED_EXPORT = """
import itertools, sys, time
from pathlib import Path
import flows.export
from tests.reliability.test_exports import NEW

rows, export_row = itertools.count(1), flows.export.export_row

def slow_row(record):
    if next(rows) == 10:
        Path(sys.argv[2]).write_text("halfway")
        time.sleep(60)
    return export_row(record)

flows.export.export_row = slow_row
flows.export.write_export(Path(sys.argv[1]), NEW, "new card")
"""


def test_a_killed_export_keeps_the_old_one_and_the_next_cleans_up(tmp_path):
    run_dir = tmp_path / "run"
    before = old_export(run_dir)
    marker = tmp_path / "halfway"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(run_dir), str(marker)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the export subprocess never got half way"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert tree(run_dir / "export") == before
    assert (run_dir / ".export.tmp").is_dir()  # a killed process cannot clean up after itself
    write_export(run_dir, NEW, "new card")
    assert [p.name for p in run_dir.iterdir()] == ["export"]
    assert len((run_dir / "export" / "train.jsonl").read_text().splitlines()) == len(NEW)


DETERMINISTIC_FILES = ("train.jsonl", "train.parquet", "rejected.jsonl", "README.md")


def test_the_same_records_export_to_the_same_bytes(tmp_path):
    a = write_export(tmp_path / "a", NEW, "card", REJECTED)
    b = write_export(tmp_path / "b", NEW, "card", REJECTED)
    for name in DETERMINISTIC_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    arrow = sorted(p.name for p in (a / "hf").glob("*.arrow"))
    assert arrow and all((a / "hf" / n).read_bytes() == (b / "hf" / n).read_bytes() for n in arrow)


def test_the_same_recipe_and_seed_give_the_same_train_jsonl(prefect_harness, fake_models, tmp_path):
    from flows.pipeline import self_specialize

    exports, scripts = [], []
    for folder in ("a", "b"):
        scripts.append(Script(BAD, GOOD))
        fake_models(scripts[-1])
        recipe = tiny_recipe(tmp_path, "same", PROMPTS, runs_dir=tmp_path / folder / "runs")
        exports.append(Path(self_specialize(recipe=recipe)) / "export")
    assert exports[0] != exports[1] and all(sum(s.count.values()) > 0 for s in scripts)
    for name in ("train.jsonl", "train.parquet", "rejected.jsonl"):
        assert (exports[0] / name).read_bytes() == (exports[1] / name).read_bytes(), name
    assert (exports[0] / "train.jsonl").read_text().count("\n") > 0
