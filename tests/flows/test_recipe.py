from pathlib import Path

import pytest

from flows.recipe import load_recipe
from generators.errors import SelfAlignError

DEMO = Path(__file__).resolve().parents[2] / "flows" / "recipes" / "biomed-demo.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


MINIMAL = "name: t\nseeds: s.jsonl\ncorpus:\n  path: c.jsonl\n"


def test_demo_recipe_loads_with_paths_resolved():
    recipe = load_recipe(DEMO)
    assert recipe.name == "biomed-demo" and recipe.generate.prompts == 36
    assert (recipe.mix.self_instruct, recipe.mix.backtranslation, recipe.mix.reading) == (1, 10, 10)
    assert recipe.backtranslate.topic_replies and recipe.grounding.source_passage
    assert recipe.seeds.endswith("data/biomed/seeds.jsonl") and Path(recipe.seeds).is_file()
    assert Path(recipe.corpus.path).is_file()


@pytest.mark.parametrize("name", ["biomed-demo.yaml", "geo-demo.yaml"])
def test_both_demo_recipes_train_alike(name):
    """The training settings were chosen on both domains' dev splits: they must not drift apart."""
    train = load_recipe(DEMO.with_name(name)).train
    assert (train.method, train.sft, train.exposures, train.replay) == (
        "full",
        {"learning_rate": 5e-5, "num_train_epochs": 1},
        2,
        0.1,
    )
    assert Path(train.replay_set).name == "seed_tasks.jsonl" and Path(train.replay_set).is_file()


def test_relative_paths_are_relative_to_the_recipe(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert recipe.seeds == str(tmp_path / "s.jsonl")
    assert recipe.corpus.path == str(tmp_path / "c.jsonl")
    assert recipe.model.backend == "auto" and recipe.novelty.threshold == 0.7


@pytest.mark.parametrize(
    "text, message",
    [
        (MINIMAL + "genrate:\n  prompts: 3\n", "unknown key 'genrate'"),
        (MINIMAL + "generate:\n  promts: 3\n", "unknown key 'generate.promts'"),
        (
            MINIMAL + "generate:\n  prompts: -2\n",
            "'generate.prompts': Input should be greater than or equal to 1",
        ),
        (MINIMAL + "model:\n  backend: llamacpp\n", "'model.backend'"),
        (MINIMAL + "novelty:\n  threshold: 1.5\n", "'novelty.threshold'"),
        ("seeds: s.jsonl\ncorpus:\n  path: c.jsonl\n", "missing key 'name'"),
        ("name: t\nseeds: [\n", "not valid YAML"),
        ("name: t\nseeds: [a\ncorpus: {}\n", "r.yaml:3: not valid YAML (expected ',' or ']'"),
        ("- a\n- b\n", "a recipe must be a mapping"),
        (MINIMAL.replace("name: t", "name: ../escape"), "'name'"),
    ],
)
def test_bad_recipes_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SelfAlignError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_set_overrides_and_validates(tmp_path):
    path = write(tmp_path, MINIMAL)
    recipe = load_recipe(path, ["generate.prompts=5", "respond.top_k=0", "model.name=/m"])
    assert (recipe.generate.prompts, recipe.respond.top_k, recipe.model.name) == (5, 0, "/m")
    with pytest.raises(SelfAlignError, match="unknown key 'generate.nope'"):
        load_recipe(path, ["generate.nope=1"])
    with pytest.raises(SelfAlignError, match="expected key=value"):
        load_recipe(path, ["generate.prompts"])


def test_missing_recipe_file(tmp_path):
    with pytest.raises(SelfAlignError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")


def test_loop_recipe_and_the_next_rounds_recipe(tmp_path):
    from flows.pipeline import round_recipe

    loop = load_recipe(DEMO.with_name("biomed-loop.yaml"), ["train.model=/models/base"])
    assert loop.rounds == 2 and loop.train.enabled and loop.select.enabled
    assert Path(loop.train.eval.domain).is_file() and Path(loop.train.eval.general).is_file()
    second = round_recipe(loop, tmp_path / "runs" / "biomed-loop", 2, "/models/round-1")
    assert (second.name, second.runs_dir) == ("round-2", str(tmp_path / "runs/biomed-loop/rounds"))
    assert (second.seed, second.rounds) == (loop.seed + 1, 1)
    assert second.model.name == "/models/round-1" and second.train.model is None
    assert second.generate == loop.generate and second.train.eval == loop.train.eval


def test_a_folder_is_not_a_recipe(tmp_path):
    with pytest.raises(SelfAlignError, match=r": is a directory, expected a recipe YAML file"):
        load_recipe(tmp_path)


def test_recipe_errors_name_line_column_and_the_key_meant(tmp_path) -> None:
    from flows.recipe_errors import yaml_positions

    assert yaml_positions("a:\n  b: 1\n  c:\n    - d: 2\n") == {
        ("a",): (1, 1),
        ("a", "b"): (2, 3),
        ("a", "c"): (3, 3),
        ("a", "c", "0"): (4, 7),
        ("a", "c", "0", "d"): (4, 7),
    }
    (tmp_path / "s.jsonl").write_text('{"instruction": "Explain ATP.", "output": "x"}\n')
    (tmp_path / "c.jsonl").write_text('{"id": "d1", "text": "ATP is made."}\n')
    head = "name: a\nseeds: s.jsonl\ncorpus: c.jsonl\n"
    cases = {
        "generate:\n  temprature: 0.5\n": "r.yaml:5:3: unknown key 'generate.temprature' "
        "(did you mean 'temperature'?)",
        "generate:\n  prompts: -1\n": "r.yaml:5:3: 'generate.prompts': Input should be greater",
        "colour: red\n": "r.yaml:4:1: unknown key 'colour'",
        "multicritique:\n  critics:\n    - persona: accuracy\n      sed: 1\n": "r.yaml:7:7: "
        "unknown key 'multicritique.critics.0.sed' (did you mean 'seed'?)",
    }
    for tail, message in cases.items():
        (tmp_path / "r.yaml").write_text(head + tail)
        with pytest.raises(SelfAlignError) as e:
            load_recipe(tmp_path / "r.yaml")
        assert str(e.value).startswith(f"{tmp_path / 'r.yaml'}:{message.split(':', 1)[1]}")
    (tmp_path / "r.yaml").write_text(head)  # `corpus: PATH`, short for `corpus: {path: PATH}`
    assert load_recipe(tmp_path / "r.yaml").corpus.path == str(tmp_path / "c.jsonl")
    with pytest.raises(SelfAlignError, match=r"r\.yaml: unknown key 'generate.nope'$"):
        load_recipe(tmp_path / "r.yaml", ["generate.nope=1"])  # from --set: no position


def test_multicritique_judge_max_tokens_is_settable(tmp_path):
    path = write(tmp_path, MINIMAL)
    assert load_recipe(path).multicritique.judge_max_tokens == 64
    recipe = load_recipe(path, ["multicritique.judge_max_tokens=32"])
    assert recipe.multicritique.judge_max_tokens == 32
    with pytest.raises(SelfAlignError, match="'multicritique.judge_max_tokens'"):
        load_recipe(path, ["multicritique.judge_max_tokens=8"])
