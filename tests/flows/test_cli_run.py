"""`selfalign run` / `selfalign export` on bad input: one error line, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

from tests.flows.test_cli import assert_one_line_error, run_cli

GOOD_SEED = {"instruction": "Explain ATP.", "output": "ATP stores energy."}


def make_recipe(tmp_path, seeds: bytes | None = None, corpus: bytes | None = None, extra: str = ""):
    (tmp_path / "heldout.jsonl").write_text('{"question": "What is ATP?", "answer": "Energy."}\n')
    (tmp_path / "seeds.jsonl").write_bytes(
        seeds if seeds is not None else json.dumps(GOOD_SEED).encode() + b"\n"
    )
    (tmp_path / "corpus.jsonl").write_bytes(
        corpus if corpus is not None else b'{"id": "d1", "text": "ATP is made in mitochondria."}\n'
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: bad\nseeds: seeds.jsonl\ncorpus:\n  path: corpus.jsonl\n"
        f"runs_dir: {tmp_path / 'runs'}\n{extra}"
    )
    return recipe


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        ({"seeds": b'{"instruction": "ok"}\n{"instruction": \n'}, ["seeds.jsonl:2", "JSON"]),
        ({"seeds": b'{"instruction": 42}\n'}, ["seeds.jsonl:1", "instruction"]),
        ({"seeds": b'{"input": "x"}\n'}, ["seeds.jsonl:1", "instruction"]),
        ({"seeds": b'{"instruction": "caf\xe9"}\n'}, ["seeds.jsonl:1", "UTF-8"]),
        ({"seeds": b""}, ["seeds.jsonl", "empty"]),
        (
            {"corpus": b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n'},
            ["corpus.jsonl:2", "duplicate"],
        ),
        ({"corpus": b'{"id": "a"}\n'}, ["corpus.jsonl:1", "text"]),
        ({"extra": "generate:\n  prompts: 0\n"}, ["recipe.yaml", "generate.prompts"]),
        ({"extra": "colour: red\n"}, ["recipe.yaml", "unknown key 'colour'"]),
        ({"extra": "model:\n  name: /no/such/model\n"}, ["'/no/such/model'", "no such folder"]),
        (
            {"extra": "corpus:\n  path: corpus.jsonl\n  overlap_words: 500\n"},
            ["recipe.yaml", "overlap_words must be smaller"],
        ),
        (
            {"extra": "multicritique:\n  enabled: true\n  critics: [{persona: tone}]\n"},
            ["recipe.yaml", "unknown critic persona 'tone'"],
        ),
        ({"extra": "s3ft:\n  judge: vibes\n"}, ["recipe.yaml", "s3ft.judge"]),
        ({"extra": "calibration:\n  on_low: ignore\n"}, ["recipe.yaml", "calibration.on_low"]),
        (
            {"extra": "s3ft:\n  enabled: true\n  gold_set: gold.jsonl\n"},
            ["gold.jsonl", "no such"],
        ),
        (
            {"extra": "calibration:\n  check_set: seeds.jsonl\n"},
            ["seeds.jsonl:1", "question"],
        ),
        ({"extra": "train:\n  enabled: true\n"}, ["recipe.yaml", "train.eval.domain"]),
        ({"extra": "rounds: 2\n"}, ["recipe.yaml", "rounds > 1 needs train.enabled"]),
        (
            {"extra": "train:\n  enabled: true\n  eval: {domain: seeds.jsonl}\n"},
            ["seeds.jsonl:1", "empty answer"],
        ),
        (
            {"extra": "train:\n  enabled: true\n  eval: {domain: heldout.jsonl}\n  sft: {lr: 1}\n"},
            ["train.sft", "unknown SFTConfig field 'lr'"],
        ),
        (
            {"extra": "select:\n  enabled: true\n  utility: rating\n"},
            ["recipe.yaml", "needs rating.enabled"],
        ),
        ({"extra": "train:\n  uds: {k: 0}\n"}, ["recipe.yaml", "train.uds.k"]),
    ],
)
def test_bad_input_fails_before_anything_is_written(tmp_path, kwargs, needles):
    recipe = make_recipe(tmp_path, **kwargs)
    proc = run_cli("run", str(recipe))
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "runs").exists()


def test_missing_recipe_and_bad_set(tmp_path):
    assert_one_line_error(run_cli("run", str(tmp_path / "none.yaml")), "no such recipe file")
    recipe = make_recipe(tmp_path)
    assert_one_line_error(run_cli("run", str(recipe), "--set", "generate.nope=1"), "generate.nope")


def test_export_needs_a_finished_run(tmp_path):
    assert_one_line_error(run_cli("export", str(tmp_path)), str(tmp_path), "not a finished run")
    assert_one_line_error(run_cli("export", str(tmp_path), "--format", "csv"), "--format 'csv'")


def test_calibrate_bad_input(tmp_path):
    recipe = make_recipe(tmp_path)
    assert_one_line_error(run_cli("calibrate", str(recipe)), "calibration.check_set' is not set")
    (tmp_path / "qa.jsonl").write_text('{"question": "Q?", "answer": "A."}\n{"question": \n')
    recipe = make_recipe(tmp_path, extra="calibration:\n  check_set: qa.jsonl\n")
    assert_one_line_error(run_cli("calibrate", str(recipe)), "qa.jsonl:2")
    proc = run_cli("calibrate", str(recipe), "--judge", "vibes")
    assert_one_line_error(proc, "--judge 'vibes'")
    assert not (tmp_path / "runs").exists()


def test_train_bad_input(tmp_path):
    proc = run_cli("train", str(tmp_path))
    assert_one_line_error(proc, str(tmp_path), "no export/train.jsonl")
    run_dir = tmp_path / "runs" / "bad"
    (run_dir / "export").mkdir(parents=True)
    (run_dir / "export" / "train.jsonl").write_text('{"messages": []}\n')
    recipe = make_recipe(tmp_path)
    proc = run_cli("train", str(run_dir), "--recipe", str(recipe))
    assert_one_line_error(proc, "'train.eval.domain' is not set")
    extra = "train:\n  eval: {domain: heldout.jsonl}\n  lora: {rank: 2}\n"
    recipe = make_recipe(tmp_path, extra=extra)
    proc = run_cli("train", str(run_dir), "--recipe", str(recipe))
    assert_one_line_error(proc, "train.lora", "unknown LoraConfig field 'rank'")
    assert not (run_dir / "train").exists()
