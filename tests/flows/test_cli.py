"""The `selfalign` command as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SELFALIGN = str(Path(sys.executable).with_name("selfalign"))


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SELFALIGN, *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from typer.testing import CliRunner; from flows.cli.app import app; "
        "r = CliRunner().invoke(app, ['--help']); "
        "heavy = [m for m in ('torch', 'vllm', 'transformers', 'faiss', 'prefect') "
        "if m in sys.modules]; "
        "print(r.exit_code, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "0 []"


def test_help_lists_the_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("models", "generate", "demo"):
        assert command in proc.stdout


def test_unknown_backend():
    assert_one_line_error(
        run_cli("generate", "-p", "hi", "--backend", "llamacpp"), "unknown backend 'llamacpp'"
    )


def test_model_path_that_does_not_exist(tmp_path):
    missing = str(tmp_path / "no-such-model")
    assert_one_line_error(
        run_cli("generate", "-p", "hi", "--model", missing), missing, "no such folder"
    )


def test_folder_without_a_model(tmp_path):
    assert_one_line_error(
        run_cli("generate", "-p", "hi", "--model", str(tmp_path)), str(tmp_path), "config.json"
    )


@pytest.mark.slow
def test_corrupt_weights_are_reported_not_raised(default_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(default_model.path, broken)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"\x00garbage" * 64)
    proc = run_cli("generate", "-p", "hi", "--backend", "transformers", "--model", str(broken))
    assert_one_line_error(proc, str(broken), "cannot be loaded")


@pytest.mark.slow
def test_models_prepare_prints_the_cached_folder(default_model):
    proc = run_cli("models", "prepare")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == default_model.path
    assert "already prepared" in proc.stderr


@pytest.mark.slow
def test_generate_with_transformers_backend(default_model):
    proc = run_cli(
        "generate",
        "--backend",
        "transformers",
        "-p",
        "What is the capital of France?",
        "--max-tokens",
        "16",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["prompt"] == "What is the capital of France?"
    assert "Paris" in row["completions"][0]
    assert row["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")


ABLATE_RECIPE = (
    "name: abl\nseeds: {data}/seeds.jsonl\ncorpus:\n  path: {data}/corpus.jsonl\nruns_dir: {runs}\n"
)


@pytest.mark.parametrize(
    ("extra", "args", "needles"),
    [
        ("", (), ["'train.eval.domain' is not set"]),
        (
            "train:\n  eval:\n    domain: {data}/heldout_qa.jsonl\nablate:\n  variants: [best]\n",
            (),
            ["'ablate.variants'", "unknown variant 'best'"],
        ),
        (
            "train:\n  eval:\n    domain: {data}/heldout_qa.jsonl\n",
            ("--run", "{runs}/nothing"),
            ["no export/train.jsonl"],
        ),
    ],
)
def test_ablate_bad_input_is_one_line_and_writes_nothing(tmp_path, extra, args, needles):
    data = Path(__file__).resolve().parents[2] / "data" / "biomed"
    runs = tmp_path / "runs"
    recipe = tmp_path / "r.yaml"
    recipe.write_text((ABLATE_RECIPE + extra).format(data=data, runs=runs))
    proc = run_cli("ablate", str(recipe), *(a.format(runs=runs) for a in args))
    assert_one_line_error(proc, *needles)
    assert not runs.exists()
