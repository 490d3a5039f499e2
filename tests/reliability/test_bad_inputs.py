"""Bad input through the real `selfalign` command, one kind per row of CASES.

Each case runs `selfalign` as a user would (a subprocess, in the case's own folder) and checks:
exit code 2; exactly one `error:` line, the last line of stderr, naming the file / line / key at
fault; no traceback; no model library imported (bad input fails before any model loads); and the
case folder byte-for-byte unchanged afterwards (no run folder, no partial output, no stray files).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from generators.io import MAX_LINE_BYTES

SELFALIGN = str(Path(sys.executable).with_name("selfalign"))
# Importing any of these means a model was about to load: bad input must fail before that.
MODEL_LIBRARIES = ("torch", "transformers", "vllm", "sentence_transformers", "faiss", "trl")
IMPORT_TIME = "import time:"  # PYTHONPROFILEIMPORTTIME's stderr lines: one per imported module

SEEDS = b'{"id": "s1", "instruction": "Explain ATP.", "output": "ATP stores energy."}\n'
CORPUS = b'{"id": "d1", "text": "ATP is made in mitochondria by ATP synthase."}\n'
RECIPE = (
    "name: bad\nseeds: seeds.jsonl\ncorpus:\n  path: corpus.jsonl\n"
    "model:\n  backend: transformers\n  name: model\nruns_dir: runs\n"
)
# A folder that passes the model checks (config, weights, tokenizer) without being loadable: a
# case that gets as far as loading it fails loudly instead of passing by accident.
MODEL_FILES = {
    "model/config.json": b"{}",
    "model/model.safetensors": b"",
    "model/tokenizer.json": b"{}",
}
BINARY = random.Random(0).randbytes(4096)


@dataclass(frozen=True)
class Case:
    """One kind of bad input. Paths are relative to the case folder, which is the cwd; "{d}" in a
    needle stands for that folder. `files` go over the good seeds/corpus/recipe/model (None
    removes one, a name ending in "/" is a folder); `recipe` is YAML appended to the recipe;
    `prepare(d)` builds anything else and returns more YAML for the recipe."""

    needles: tuple[str, ...]
    args: tuple[str, ...] = ("run", "recipe.yaml")
    files: dict[str, bytes | None] = field(default_factory=dict)
    recipe: str = ""
    prepare: Callable[[Path], str] | None = None


def _can_create_in(folder: Path) -> bool:
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError:
        return False
    return True


def _read_only_runs_dir(d: Path) -> str:
    """runs_dir under a read-only folder: mode 0555, or /sys where root ignores the mode."""
    folder = d / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if _can_create_in(folder):  # root: permissions do not bind
        folder.chmod(0o755)
        folder = Path("/sys")
        if not folder.is_dir() or _can_create_in(folder):
            pytest.skip("no read-only folder to point runs_dir at (root, no read-only /sys)")
    return f"runs_dir: {folder / 'runs'}\n"


def _finished_run(d: Path) -> str:
    """A minimal finished run at runs/done (manifest + a final stage) for `export`."""
    from flows.rundir import write_manifest, write_records
    from generators.records import Record

    run = d / "runs" / "done"
    write_manifest(run, {"name": "done"})
    records = [Record(instruction="Explain ATP.", output="ATP stores energy.")]
    write_records(run / "stages" / "00-respond" / "kept.parquet", records)
    return ""


def _huge_line(name: str, key: str) -> Callable[[Path], str]:
    """A `prepare` that adds, as line 2 of JSONL file `name`, one object past the line limit."""

    def append(d: Path) -> str:
        with open(d / name, "ab") as f:
            f.write(b'{"id": "a", "%s": "' % key.encode() + b"a" * MAX_LINE_BYTES + b'"}\n')
        return ""

    return append


CASES = {
    # --- seeds -------------------------------------------------------------------------------
    "seeds-empty": Case(("{d}/seeds.jsonl: empty file",), files={"seeds.jsonl": b""}),
    "seeds-only-blank-lines": Case(
        ("{d}/seeds.jsonl: empty file",), files={"seeds.jsonl": b"\n  \n\r\n"}
    ),
    "seeds-malformed-json-line": Case(
        ("{d}/seeds.jsonl:2: malformed JSON",), files={"seeds.jsonl": SEEDS + b'{"instruction": \n'}
    ),
    "seeds-json-list-in-jsonl": Case(
        ("{d}/seeds.jsonl:1: expected a JSON object, got list",),
        files={"seeds.jsonl": b'[{"instruction": "Explain ATP."}]\n'},
    ),
    "seeds-instruction-is-a-number": Case(
        ("{d}/seeds.jsonl:1: 'instruction' must be a non-empty string",),
        files={"seeds.jsonl": b'{"instruction": 42}\n'},
    ),
    "seeds-unknown-key": Case(
        ("{d}/seeds.jsonl:1: unknown key 'ouput'",),
        files={"seeds.jsonl": b'{"instruction": "Explain ATP.", "ouput": "x"}\n'},
    ),
    "seeds-latin1": Case(
        ("{d}/seeds.jsonl:2: not valid UTF-8",),
        files={"seeds.jsonl": SEEDS + '{"instruction": "Décris l\'ATP."}\n'.encode("latin-1")},
    ),
    "seeds-utf16-with-bom": Case(
        ("{d}/seeds.jsonl:1: UTF-16",), files={"seeds.jsonl": SEEDS.decode().encode("utf-16")}
    ),
    "seeds-utf16-without-bom": Case(
        ("{d}/seeds.jsonl:1: NUL bytes",), files={"seeds.jsonl": SEEDS.decode().encode("utf-16-le")}
    ),
    "seeds-binary-file": Case(("{d}/seeds.jsonl:1: ",), files={"seeds.jsonl": BINARY}),
    "seeds-huge-line": Case(
        ("{d}/seeds.jsonl:2: line longer than",),
        prepare=_huge_line("seeds.jsonl", "instruction"),
    ),
    "seeds-field-past-the-limit": Case(
        ("{d}/seeds.jsonl:2: 'instruction' is 1,000,000 characters, over the limit of 20,000",),
        files={"seeds.jsonl": SEEDS + b'{"instruction": "' + b"cell " * 200_000 + b'"}\n'},
    ),
    "seeds-missing": Case(("{d}/seeds.jsonl: no such file",), files={"seeds.jsonl": None}),
    "seeds-is-a-directory": Case(
        ("{d}/seeds.jsonl: is a directory",), files={"seeds.jsonl": None, "seeds.jsonl/": None}
    ),
    "seeds-duplicate-ids": Case(
        ("{d}/seeds.jsonl:2: duplicate id 's1' (first on line 1)",),
        files={"seeds.jsonl": SEEDS + SEEDS},
    ),
    "seeds-unknown-extension": Case(
        ("{d}/seeds.csv: unknown seed file extension '.csv'",),
        files={"seeds.csv": b"instruction\nExplain ATP.\n"},
        recipe="seeds: seeds.csv\n",
    ),
    # --- corpus ------------------------------------------------------------------------------
    "corpus-empty": Case(
        ("{d}/corpus.jsonl: the corpus has no documents",), files={"corpus.jsonl": b""}
    ),
    "corpus-only-blank-texts": Case(
        ("{d}/corpus.jsonl:1: document 'a': 'text' is empty", "corpus.on_bad_record: skip"),
        files={"corpus.jsonl": b'{"id": "a", "text": "  "}\n{"id": "b", "text": ""}\n'},
    ),
    "corpus-blank-text-skipped-leaves-nothing": Case(
        ("{d}/corpus.jsonl: empty corpus: no document has any text",),
        files={"corpus.jsonl": b'{"id": "a", "text": "  "}\n{"id": "b", "text": ""}\n'},
        recipe="corpus:\n  path: corpus.jsonl\n  on_bad_record: skip\n",
    ),
    "corpus-one-blank-text": Case(
        ("{d}/corpus.jsonl:2: document 'd2': 'text' is empty",),
        files={"corpus.jsonl": CORPUS + b'{"id": "d2", "text": " \\n "}\n'},
    ),
    "corpus-folder-without-txt": Case(
        ("{d}/docs: no .txt files",),
        files={"docs/notes.md": b"# ATP\n"},
        recipe="corpus:\n  path: docs\n",
    ),
    "corpus-malformed-json-line": Case(
        ("{d}/corpus.jsonl:2: malformed JSON",), files={"corpus.jsonl": CORPUS + b'{"id": \n'}
    ),
    "corpus-binary-jsonl": Case(("{d}/corpus.jsonl:1: ",), files={"corpus.jsonl": BINARY}),
    "corpus-binary-txt": Case(
        ("{d}/docs/b.txt: binary file",),
        files={"docs/a.txt": b"ATP is made in mitochondria.", "docs/b.txt": BINARY},
        recipe="corpus:\n  path: docs\n",
    ),
    "corpus-missing": Case(
        ("{d}/corpus.jsonl: no such file or folder",), files={"corpus.jsonl": None}
    ),
    "corpus-latin1": Case(
        ("{d}/corpus.jsonl:1: not valid UTF-8",),
        files={"corpus.jsonl": '{"id": "a", "text": "café"}\n'.encode("latin-1")},
    ),
    "corpus-utf16": Case(
        ("{d}/corpus.jsonl:1: UTF-16",), files={"corpus.jsonl": CORPUS.decode().encode("utf-16")}
    ),
    "corpus-row-without-text": Case(
        ("{d}/corpus.jsonl:2: document 'd2': 'text' must be a string, got null",),
        files={"corpus.jsonl": CORPUS + b'{"id": "d2"}\n'},
    ),
    "corpus-duplicate-ids": Case(
        ("{d}/corpus.jsonl:2: duplicate document id 'd1'",), files={"corpus.jsonl": CORPUS + CORPUS}
    ),
    "corpus-huge-line": Case(
        ("{d}/corpus.jsonl:2: line longer than",), prepare=_huge_line("corpus.jsonl", "text")
    ),
    "corpus-unknown-format": Case(
        ("{d}/corpus.csv: unknown corpus format '.csv'",),
        files={"corpus.csv": b"id,text\nd1,ATP\n"},
        recipe="corpus:\n  path: corpus.csv\n",
    ),
    "corpus-not-parquet": Case(
        ("{d}/corpus.parquet: not a readable Parquet file",),
        files={"corpus.parquet": BINARY},
        recipe="corpus:\n  path: corpus.parquet\n",
    ),
    # --- recipe ------------------------------------------------------------------------------
    "recipe-missing": Case(("none.yaml: no such recipe file",), args=("run", "none.yaml")),
    "recipe-is-a-directory": Case(("model: is a directory",), args=("run", "model")),
    "recipe-not-yaml": Case(
        ("recipe.yaml:2: not valid YAML (expected ',' or ']'",),
        files={"recipe.yaml": b"name: [bad\nseeds: x\n"},
    ),
    "recipe-not-utf8": Case(
        ("recipe.yaml:1: not valid UTF-8",), files={"recipe.yaml": b"name: caf\xe9\n"}
    ),
    "recipe-utf16": Case(
        ("recipe.yaml:1: UTF-16",), files={"recipe.yaml": RECIPE.encode("utf-16")}
    ),
    "recipe-not-a-mapping": Case(
        ("recipe.yaml: a recipe must be a mapping",), files={"recipe.yaml": b"- name\n- seeds\n"}
    ),
    "recipe-empty": Case(("recipe.yaml: a recipe must be a mapping",), files={"recipe.yaml": b""}),
    "recipe-unknown-key": Case(("recipe.yaml:9:1: unknown key 'colour'",), recipe="colour: red\n"),
    "recipe-unknown-nested-key": Case(
        ("recipe.yaml:10:3: unknown key 'generate.promts' (did you mean 'prompts'?)",),
        recipe="generate:\n  promts: 8\n",
    ),
    "recipe-stream-with-near-duplicates": Case(
        ("recipe.yaml:3:1: 'corpus': near_duplicates: near-duplicate removal holds every",),
        files={
            "recipe.yaml": RECIPE.replace(
                "corpus.jsonl\n", "corpus.jsonl\n  stream: true\n"
            ).encode()
        },
    ),
    "recipe-wrong-type": Case(
        ("recipe.yaml:10:3: 'generate.prompts'", "'many'"), recipe="generate:\n  prompts: many\n"
    ),
    "recipe-negative-count": Case(
        ("recipe.yaml:10:3: 'generate.prompts'", "-1"), recipe="generate:\n  prompts: -1\n"
    ),
    "recipe-missing-key": Case(
        ("recipe.yaml: missing key 'seeds'",),
        files={"recipe.yaml": b"name: bad\ncorpus:\n  path: corpus.jsonl\n"},
    ),
    "recipe-bad-run-name": Case(
        ("recipe.yaml:9:1: 'name'", "../escape"), recipe="name: ../escape\n"
    ),
    "recipe-unknown-backend": Case(
        ("recipe.yaml:10:3: 'model.backend'", "llamacpp"),
        recipe="model:\n  backend: llamacpp\n  name: model\n",
    ),
    "recipe-overlap-not-below-chunk": Case(
        ("recipe.yaml:9:1: 'corpus'", "overlap_words must be smaller than chunk_words"),
        recipe="corpus:\n  path: corpus.jsonl\n  chunk_words: 40\n  overlap_words: 40\n",
    ),
    "model-folder-missing": Case(
        ("'./no-such-model'", "no such folder"),
        recipe="model:\n  backend: transformers\n  name: ./no-such-model\n",
    ),
    "model-folder-without-config": Case(
        ("model folder model: config.json is missing",), files={"model/config.json": None}
    ),
    # --- command-line arguments --------------------------------------------------------------
    "set-without-equals": Case(
        ("--set 'generate.prompts': expected key=value",),
        args=("run", "recipe.yaml", "--set", "generate.prompts"),
    ),
    "set-unknown-key": Case(
        ("recipe.yaml: unknown key 'generate.nope'",),
        args=("run", "recipe.yaml", "--set", "generate.nope=1"),
    ),
    "set-bad-value": Case(
        ("recipe.yaml: 'generate.prompts'",),
        args=("run", "recipe.yaml", "--set", "generate.prompts=-1"),
    ),
    "set-into-a-value": Case(
        ("--set 'name.x=1': 'name' is not a section",),
        args=("run", "recipe.yaml", "--set", "name.x=1"),
    ),
    "runs-dir-under-a-file": Case(
        ("runs_dir 'blocker/runs'", "{d}/blocker is a file, not a folder"),
        files={"blocker": b"a regular file"},
        recipe="runs_dir: blocker/runs\n",
    ),
    "runs-dir-read-only": Case(
        ("runs_dir '", "cannot create folders in"), prepare=_read_only_runs_dir
    ),
    "export-not-a-run": Case(
        ("notarun: not a finished run",),
        args=("export", "notarun"),
        files={"notarun/notes.txt": b"x"},
    ),
    "export-unknown-format": Case(
        ("--format 'csv'", "jsonl"),
        args=("export", "runs/done", "--format", "csv"),
        prepare=_finished_run,
    ),
    "export-out-unwritable": Case(
        ("blocker/train.jsonl: cannot write", "at blocker"),
        args=("export", "runs/done", "--out", "blocker/train.jsonl"),
        files={"blocker": b"a regular file"},
        prepare=_finished_run,
    ),
    "train-without-export": Case(
        ("notarun: no export/train.jsonl",),
        args=("train", "notarun"),
        files={"notarun/notes.txt": b"x"},
    ),
    "knowledge-set-control-char": Case(
        ("kn.jsonl:2", "U+0000 (NUL)", "'question'"),
        files={
            "kn.jsonl": b'{"id": "k1", "question": "Q?", "choices": ["a", "b"], "gold": 0}\n'
            b'{"id": "k2", "question": "Q\\u0000?", "choices": ["a", "b"], "gold": 1}\n'
        },
        recipe="train:\n  eval:\n    knowledge: kn.jsonl\n",
    ),
    "knowledge-set-not-an-item": Case(
        ("kn.jsonl:1", "not a knowledge item"),
        files={"kn.jsonl": b'{"id": "k1", "question": "Q?"}\n'},
        recipe="train:\n  eval:\n    knowledge: kn.jsonl\n",
    ),
    "heldout-qa-bad-line-training-off": Case(
        ("qa.jsonl:2",),
        files={"qa.jsonl": b'{"id": "q1", "question": "Q?", "answer": "A."}\n{not json\n'},
        recipe="train:\n  eval:\n    domain: qa.jsonl\n",
    ),
    "calibrate-without-check-set": Case(
        ("recipe.yaml: 'calibration.check_set' is not set",), args=("calibrate", "recipe.yaml")
    ),
    "calibrate-unknown-judge": Case(
        ("--judge 'vibes'",), args=("calibrate", "recipe.yaml", "--judge", "vibes")
    ),
    "serve-bad-cron": Case(
        ("--cron: not a cron expression: 'every day'",),
        args=("serve", "recipe.yaml", "--cron", "every day"),
    ),
    "serve-cron-and-interval": Case(
        ("--cron and --interval",),
        args=("serve", "recipe.yaml", "--cron", "0 3 * * *", "--interval", "60"),
    ),
    "serve-negative-interval": Case(
        ("--interval: must be > 0",), args=("serve", "recipe.yaml", "--interval", "-5")
    ),
    "serve-zero-limit": Case(
        ("--limit: must be >= 1",), args=("serve", "recipe.yaml", "--limit", "0")
    ),
    "serve-bad-seeds": Case(
        ("{d}/seeds.jsonl: empty file",),
        args=("serve", "recipe.yaml"),
        files={"seeds.jsonl": b""},
    ),
}


def _build(d: Path, case: Case) -> None:
    files = {
        "seeds.jsonl": SEEDS,
        "corpus.jsonl": CORPUS,
        "recipe.yaml": RECIPE.encode(),
        **MODEL_FILES,
        **case.files,
    }
    for name, content in files.items():
        path = d / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        elif content is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    extra = case.recipe + (case.prepare(d) if case.prepare else "")
    if extra and "recipe.yaml" not in case.files:
        (d / "recipe.yaml").write_text(RECIPE + extra, encoding="utf-8")


def _snapshot(d: Path) -> dict[str, str]:
    """Every path under `d` with its content hash ('dir' for folders)."""
    return {
        p.relative_to(d).as_posix(): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
    }


def _run(d: Path, args: tuple[str, ...], prefect_home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "SELFALIGN_DEBUG")}
    env.update(PYTHONPROFILEIMPORTTIME="1", PREFECT_HOME=str(prefect_home))
    return subprocess.run(
        [SELFALIGN, *args], cwd=d, env=env, capture_output=True, text=True, timeout=120
    )


def assert_clean_failure(proc: subprocess.CompletedProcess, needles: list[str]) -> None:
    """Exit 2, one `error:` line that is the last line and holds every needle, no traceback,
    no model library imported."""
    lines = proc.stderr.splitlines()
    imported = {line.rpartition("|")[2].strip() for line in lines if line.startswith(IMPORT_TIME)}
    shown = [line for line in lines if not line.startswith(IMPORT_TIME) and line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert shown and shown[-1].startswith("error: "), shown
    assert sum(line.startswith("error:") for line in shown) == 1, shown
    for needle in needles:
        assert needle in shown[-1], (needle, shown[-1])
    heavy = sorted(m for m in imported if m.split(".")[0] in MODEL_LIBRARIES)
    assert not heavy, f"a model library was imported: {heavy[:5]}"


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, case):
    d = tmp_path.resolve() / "case"
    d.mkdir()
    _build(d, case)
    before = _snapshot(d)
    try:
        proc = _run(d, case.args, tmp_path / "prefect-home")
        after = _snapshot(d)
    finally:
        for folder in (d, *(p for p in d.rglob("*") if p.is_dir())):
            folder.chmod(0o755)
    assert_clean_failure(proc, [n.replace("{d}", str(d)) for n in case.needles])
    assert after == before, "the command changed the case folder"


def test_the_table_covers_at_least_25_kinds():
    assert len(CASES) >= 25
    areas = {name.split("-")[0] for name in CASES}
    assert {"seeds", "corpus", "recipe", "set", "runs", "export", "train", "serve"} <= areas
