"""The ablation's pure parts: variant rows, the token budget, the comparison and its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ablation.ablate import expand
from flows.ablation.data import (
    budget_rows,
    corpus_rows,
    first_sentence,
    minus_rows,
    origin_rows,
    random_rows,
    select_random_rows,
)
from flows.ablation.report import (
    card_section,
    compare,
    markdown_table,
    versus,
    versus_table,
    with_card_section,
)
from flows.rundir import write_stage
from generators.errors import SelfAlignError
from generators.records import Record


def test_first_sentence_and_corpus_rows() -> None:
    assert first_sentence("The cell divides. It then grows.") == (
        "The cell divides.",
        "It then grows.",
    )
    assert first_sentence("Sizes are 3.5 nm, e.g. in yeast. Next one.")[0] == (
        "Sizes are 3.5 nm, e.g. in yeast."
    )
    assert first_sentence("One sentence only.") == ("One sentence only.", "")
    rows = corpus_rows([("p1", "Head here. Body one. Body two."), ("p2", "Alone.")])
    assert [(r.instruction, r.output, r.passages) for r in rows] == [
        ("Head here.", "Body one. Body two.", ("p1",))
    ]
    assert rows[0].meta == {"origin": "corpus"}


def test_budget_rows_repeats_in_seeded_passes_until_the_budget() -> None:
    order = budget_rows([10, 10, 10], 25, seed=0)
    assert sorted(order) == [0, 1, 2]
    long = budget_rows([10, 20, 30], 130, seed=1)
    assert sum([10, 20, 30][i] for i in long) >= 130
    assert sum([10, 20, 30][i] for i in long[:-1]) < 130  # stops at the first row past it
    assert sorted(long[:3]) == [0, 1, 2] and sorted(long[3:6]) == [0, 1, 2]
    assert budget_rows([10, 20, 30], 130, seed=1) == long
    assert budget_rows([5], 1, seed=0) == [0]
    with pytest.raises(SelfAlignError, match="no training rows"):
        budget_rows([], 10, seed=0)


def test_minus_rows_adds_what_the_stage_dropped(tmp_path) -> None:
    kept = [Record("keep me", "a", id="k1")]
    dropped = [Record("dropped", "b", id="d1").drop("rating", "judge_score_2_lt_4")]
    write_stage(tmp_path, 9, "rating", kept, dropped)
    rows = minus_rows(tmp_path, kept, "rating")
    assert [r.id for r in rows] == ["k1", "d1"]
    with pytest.raises(SelfAlignError, match="no stage 'select'"):
        minus_rows(tmp_path, kept, "select")


def test_minus_rows_give_back_the_answers_a_rewriting_stage_replaced(tmp_path) -> None:
    target = Record("q1", output="own words", id="s1", meta={"s3ft": {"gold": "gold answer"}})
    gold = Record("q2", output="gold", id="s2", meta={"s3ft": {"gold": "gold"}})
    write_stage(tmp_path, 9, "s3ft", [target, gold], [])
    assert [r.output for r in minus_rows(tmp_path, [target, gold], "s3ft")] == [
        "gold answer",
        "gold",
    ]
    steps = [{"step": 0, "response": "first try"}, {"step": 1, "response": "refined"}]
    refined = Record("q3", output="refined", id="r1", meta={"self": {"steps": steps}})
    unrefined = Record("q4", output="as is", id="r2", meta={"self": {"steps": []}})
    lost = Record("q5", output="still wrong", id="r3", meta={"self": {"steps": steps}})
    write_stage(tmp_path, 10, "self_refine", [refined, unrefined], [lost.drop("self_refine", "x")])
    rows = minus_rows(tmp_path, [refined, unrefined], "self_refine")
    assert [(r.id, r.output) for r in rows] == [
        ("r1", "first try"),
        ("r2", "as is"),
        ("r3", "first try"),
    ]
    # the same record kept as the export has it (other stages' rewrites stay)
    assert minus_rows(tmp_path, [target], "self_refine")[0].output == "own words"


def test_minus_rows_of_several_stages_restore_the_earliest_answer(tmp_path) -> None:
    steps = [{"step": 0, "response": "s3ft target"}]
    both = Record(
        "q1", output="refined", id="b1", meta={"s3ft": {"gold": "gold"}, "self": {"steps": steps}}
    )
    rated_out = Record("q2", output="low", id="x1").drop("rating", "scorer_passage_gain_low")
    write_stage(tmp_path, 8, "rating", [both], [rated_out])
    write_stage(tmp_path, 9, "s3ft", [both], [])
    write_stage(tmp_path, 10, "self_refine", [both], [])
    rows = minus_rows(tmp_path, [both], "rating", "s3ft", "self_refine")
    assert [(r.id, r.output) for r in rows] == [("b1", "gold"), ("x1", "low")]


def test_select_random_rows_match_what_selection_kept(tmp_path) -> None:
    kept = [Record(f"k{i}") for i in range(3)]
    dropped = [Record(f"d{i}").drop("select", "selection_over_budget") for i in range(3)]
    write_stage(tmp_path, 11, "select", kept, dropped)
    rows = select_random_rows(tmp_path, seed=0)
    assert len(rows) == 3
    assert {r.id for r in rows} <= {r.id for r in kept + dropped}
    assert select_random_rows(tmp_path, seed=0) == rows
    assert {r.id for r in select_random_rows(tmp_path, seed=1)} != {r.id for r in rows}


def test_origin_rows_take_one_origin_before_the_mix_cut(tmp_path) -> None:
    reading = Record("r1", meta={"origin": "reading"})
    cut = Record("r2", meta={"origin": "reading"}).drop("mix", "mix_share_reading")
    own = Record("s1")
    # no mix stage: the curated records of that origin
    assert origin_rows(tmp_path, [reading, own], "self_instruct") == [own]
    write_stage(tmp_path, 10, "mix", [reading, own], [cut])
    assert [r.id for r in origin_rows(tmp_path, [], "reading")] == [reading.id, cut.id]
    with pytest.raises(SelfAlignError, match="no 'backtranslation' records"):
        origin_rows(tmp_path, [], "backtranslation")


def test_random_rows_draw_from_everything_grounding_scored(tmp_path) -> None:
    answered = [Record(f"a{i}") for i in range(3)]
    write_stage(tmp_path, 6, "respond", answered, [])
    assert {r.id for r in random_rows(tmp_path, 5, 0)} == {r.id for r in answered}
    mined = Record("m", meta={"origin": "reading"})
    unsupported = Record("u").drop("grounding", "unsupported")
    write_stage(tmp_path, 9, "grounding", [*answered, mined], [unsupported])
    assert len(random_rows(tmp_path, 9, 0)) == 5
    assert len(random_rows(tmp_path, 2, 0)) == 2
    # random-without-<origin>: the same draw with none of that origin's records
    assert {r.id for r in random_rows(tmp_path, 9, 0, without="reading")} == (
        {r.id for r in answered} | {unsupported.id}
    )
    assert {r.id for r in random_rows(tmp_path, 9, 0, without="self_instruct")} == {mined.id}
    write_stage(tmp_path, 9, "grounding", [mined], [])
    with pytest.raises(SelfAlignError, match="random-without-reading: no other records"):
        random_rows(tmp_path, 1, 0, without="reading")


def test_expand_minus_variants() -> None:
    stages = ["corpus", "respond", "rating", "select", "decontaminate"]
    assert expand(["corpus-only", "recipe-minus-all"], stages) == [
        "corpus-only",
        "recipe-minus-rating",
        "recipe-minus-select",
    ]
    with pytest.raises(SelfAlignError, match="no stage 's3ft'"):
        expand(["recipe-minus-s3ft"], stages)
    # 'all' leaves out a stage that dropped nothing (grounding with no floor); naming it works
    stages = ["corpus", "respond", "grounding", "mix", "select"]
    assert expand(["recipe-minus-all"], stages, dropping=["corpus", "mix"]) == ["recipe-minus-mix"]
    assert expand(["recipe-minus-grounding"], stages, dropping=[]) == ["recipe-minus-grounding"]
    # S3FT and SELF drop nothing (S3FT) or little, but rewrite answers: 'all' keeps them
    stages = ["corpus", "grounding", "s3ft", "self_refine", "select"]
    assert expand(["recipe-minus-all", "select-random"], stages, dropping=["select"]) == [
        "recipe-minus-s3ft",
        "recipe-minus-self_refine",
        "recipe-minus-select",
        "select-random",
    ]
    with pytest.raises(SelfAlignError, match="no stage 'select'"):
        expand(["select-random"], ["corpus", "mix"])
    assert expand(["recipe-minus-judges"], stages) == ["recipe-minus-judges"]
    with pytest.raises(SelfAlignError, match="no judge stage"):
        expand(["recipe-minus-judges"], ["corpus", "mix"])


def _report(nll: list[float], acc_norm: list[int]) -> dict:
    per_q = {"ids": [f"q{i}" for i in range(len(nll))], "nll": nll, "tokens": [1] * len(nll)}
    mc = {"acc_per_q": acc_norm, "acc_norm_per_q": acc_norm}
    return {"eval": {"per_question": {"test": per_q, "dev": per_q}}, "mc": {"test": mc}}


def test_compare_and_table() -> None:
    base = _report([2.0] * 8, [0, 0, 1, 1] * 2)
    better = _report([1.8] * 8, [1, 0, 1, 1] * 2)
    metrics = compare(base, better)
    assert metrics["test_loss"]["value"] == pytest.approx(1.8)
    assert metrics["test_loss"]["change"]["value"] == pytest.approx(-0.1)
    assert metrics["test_acc_norm"]["change"]["value"] == pytest.approx(0.25)
    assert compare(base, base)["test_loss"]["change"] is None
    result = {
        "variants": {
            "base": {"rows": 0, "tokens": 0, "metrics": compare(base, base)},
            "recipe": {"rows": 8, "tokens": 800, "metrics": metrics},
        },
        "split": {"dev_n": 8, "test_n": 8, "seed": 0},
        "base_model": "m",
        "token_budget": 800,
    }
    table = markdown_table(result)
    assert "| recipe | 8 | 800 | 1.800<br>Δ -10.0% [-10.0%, -10.0%] | 75.0%<br>Δ +25.0" in table
    assert table.splitlines()[2].startswith("| base | 0 | 0 | 2.000 | 50.0% |")
    card = with_card_section("# card\n\ntext\n", card_section(result))
    assert card.startswith("# card\n\ntext\n\n## Ablation\n")
    assert with_card_section(card, card_section(result)) == card  # replaced, not appended


def test_recipe_versus_each_control_is_paired() -> None:
    base = _report([2.0] * 8, [0, 0, 1, 1] * 2)
    corpus = _report([2.0] * 4 + [1.5] * 4, [0, 0, 1, 1] * 2)
    recipe = _report([1.5] * 8, [1, 0, 1, 1] * 2)
    reports = {"base": base, "corpus-only": corpus, "recipe": recipe}
    vs = versus(reports)
    assert list(vs) == ["corpus-only"]  # random was not trained
    assert vs["corpus-only"]["test_loss"]["change"]["value"] == pytest.approx(12 / 14 - 1)
    assert vs["corpus-only"]["test_acc_norm"]["change"]["value"] == pytest.approx(0.25)
    assert versus({"base": base, "random": corpus}) == {}  # no recipe: nothing to compare
    # every other variant is compared too, the controls first
    minus = {"base": base, "recipe-minus-rating": corpus, "recipe": recipe, "random": corpus}
    vs_minus = versus(minus)
    assert list(vs_minus) == ["random", "recipe-minus-rating"]
    assert vs_minus["recipe-minus-rating"] == vs["corpus-only"]
    table = versus_table({"recipe_vs": vs})
    assert "| corpus-only | -14.3% [" in table and "| +25.0 [" in table
    assert versus_table({"recipe_vs": {}}) == ""


def _export(run, name: str, rows: list[dict]) -> None:
    import json

    (run / "export").mkdir(parents=True, exist_ok=True)
    (run / "export" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _chat(user: str, answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    }


def test_extra_sft_rows_follow_the_export_in_training_and_in_recipe_plus_variants(tmp_path) -> None:
    from flows.ablation.ablate import variant_records
    from flows.recipe import Recipe, TrainConfig
    from flows.train import sft_data

    run = tmp_path / "run"
    atp = ("What is ATP?", "The cell's energy carrier.")
    _export(run, "train", [{**_chat(*atp), "instruction": atp[0], "output": atp[1]}])
    feedback = {"instruction": "Q", "verdict": "correct", **_chat("Judge: Q / A", "Correct.")}
    _export(run, "self_feedback", [feedback])
    out = tmp_path / "out"
    assert sft_data(run, out, TrainConfig(), 0) == run / "export" / "train.jsonl"
    data = sft_data(run, out, TrainConfig(extra_sft=["self_feedback"]), 0)
    assert data == out / "sft_data.jsonl"
    lines = data.read_text().splitlines()
    assert len(lines) == 2 and '"Correct."' in lines[1]
    with pytest.raises(SelfAlignError, match=r"critique_sft\.jsonl: no rows .*multicritique"):
        sft_data(run, out, TrainConfig(extra_sft=["critique_sft"]), 0)

    recipe = Recipe.model_validate(
        {"name": "x", "seeds": "s", "corpus": {"path": "c"},
         "ablate": {"variants": ["recipe", "recipe+self_feedback"]}}
    )  # fmt: skip
    sets = variant_records(recipe, run, recipe.ablate.variants)
    assert [(r.instruction, r.output) for r in sets["recipe+self_feedback"]] == [
        atp,
        ("Judge: Q / A", "Correct."),
    ]
    with pytest.raises(ValueError, match="recipe\\+<self_feedback\\|critique_sft>"):
        Recipe.model_validate(
            {"name": "x", "seeds": "s", "corpus": {"path": "c"},
             "ablate": {"variants": ["recipe+dpo"]}}
        )  # fmt: skip


def _knowledge(report: dict, covered: list[int], uncovered: list[int]) -> dict:
    mc = dict(report["mc"])
    for name, scores in (("covered_test", covered), ("uncovered_test", uncovered)):
        mc[name] = {"acc_per_q": scores, "acc_norm_per_q": scores, "n": len(scores)}
    return {**report, "mc": mc}


def test_covered_minus_uncovered_is_the_knowledge_gap_with_its_own_columns() -> None:
    base = _knowledge(_report([2.0] * 4, [0, 1, 0, 1]), [0, 0, 0, 0, 1, 1], [0, 0, 1, 1])
    tuned = _knowledge(_report([1.8] * 4, [1, 1, 0, 1]), [1, 1, 1, 0, 1, 1], [1, 0, 1, 1])
    metrics = compare(base, tuned)
    assert metrics["covered_test_acc_norm"]["change"]["value"] == pytest.approx(3 / 6)
    assert metrics["uncovered_test_acc_norm"]["change"]["value"] == pytest.approx(1 / 4)
    gap = metrics["knowledge_test_acc_norm"]
    assert gap["value"] is None and gap["change"]["value"] == pytest.approx(0.5 - 0.25)
    assert gap["change"]["lo"] <= 0.25 <= gap["change"]["hi"]
    assert "knowledge_test_acc_norm" not in compare(base, base)
    result = {
        "variants": {
            "base": {"rows": 0, "tokens": 0, "metrics": compare(base, base)},
            "recipe": {"rows": 4, "tokens": 40, "metrics": metrics},
        },
        "split": {"dev_n": 4, "test_n": 4, "seed": 0},
        "base_model": "m",
        "token_budget": 40,
        "knowledge_n": {"covered_test": 6, "uncovered_test": 4},
    }
    table = markdown_table(result)
    header = table.splitlines()[0]
    assert "test covered acc_norm | test uncovered acc_norm | test covered − uncovered" in header
    assert "| -<br>Δ +25.0 [" in table  # the gap has no value of its own, only the change
    assert "Items: covered test 6, uncovered test 4." in card_section(result)


def test_knowledge_parts_split_the_shipped_set_by_id_and_name_a_bad_line(tmp_path) -> None:
    from flows.ablation.ablate import knowledge_parts

    path = Path(__file__).resolve().parents[2] / "data" / "biomed" / "knowledge_mc.jsonl"
    parts = knowledge_parts(str(path), seed=0, test_fraction=0.5)
    assert sorted(parts) == ["covered_dev", "covered_test", "uncovered_dev", "uncovered_test"]
    assert sum(len(v) for v in parts.values()) == 420
    assert sum(len(parts[f"covered_{h}"]) for h in ("dev", "test")) == 330
    assert all(it["passage_id"] is None for it in parts["uncovered_test"])
    dev_ids = {it["id"] for h in ("covered_dev", "uncovered_dev") for it in parts[h]}
    assert not dev_ids & {it["id"] for h in ("covered_test", "uncovered_test") for it in parts[h]}
    bad = tmp_path / "kn.jsonl"
    bad.write_text(path.read_text().splitlines()[0] + "\n" + '{"id": "x", "kind": "number"}\n')
    with pytest.raises(SelfAlignError, match=r"kn\.jsonl:2: 'question' must be"):
        knowledge_parts(str(bad), 0, 0.5)


def test_recipe_without_an_origin_drops_only_its_rows(tmp_path) -> None:
    from flows.ablation.ablate import variant_records
    from flows.recipe import Recipe

    run = tmp_path / "run"
    rows = [
        {**_chat(q, a), "instruction": q, "output": a, "meta": {"origin": origin}}
        for q, a, origin in [("Q1", "A1", "reading"), ("Q2", "A2", "facts"), ("Q3", "A3", "facts")]
    ]
    _export(run, "train", rows)
    recipe = Recipe.model_validate(
        {"name": "x", "seeds": "s", "corpus": {"path": "c"},
         "ablate": {"variants": ["recipe", "recipe-without-facts"]}}
    )  # fmt: skip
    sets = variant_records(recipe, run, recipe.ablate.variants)
    assert [r.instruction for r in sets["recipe"]] == ["Q1", "Q2", "Q3"]
    assert [r.instruction for r in sets["recipe-without-facts"]] == ["Q1"]
    with pytest.raises(ValueError, match="random-without-<"):
        Recipe.model_validate(
            {"name": "x", "seeds": "s", "corpus": {"path": "c"},
             "ablate": {"variants": ["random-without-nothing"]}}
        )  # fmt: skip
    ok = {"name": "x", "seeds": "s", "corpus": {"path": "c"},
          "ablate": {"variants": ["random-without-facts"]}}  # fmt: skip
    assert Recipe.model_validate(ok).ablate.variants == ["random-without-facts"]


def test_the_default_budget_follows_the_export_also_without_the_recipe_variant(
    tmp_path, default_model
) -> None:
    """Controls trained in a run of their own get the budget the recipe variant would get."""
    from flows.ablation.ablate import default_budget, token_lengths, variant_records
    from flows.recipe import Recipe
    from flows.train_rows import with_exposures

    run = tmp_path / "run"
    rows = [
        {**_chat(q, a), "instruction": q, "output": a, "meta": {"origin": origin}}
        for q, a, origin in [("Explain prions.", "Misfolded proteins.", "reading"),
                             ("What is the normal range?", "70 to 99 mg/dL", "facts")]
    ]  # fmt: skip
    _export(run, "train", rows)
    recipe = Recipe.model_validate(
        {"name": "x", "seeds": "s", "corpus": {"path": "c"}, "train": {"exposures": 2},
         "ablate": {"epochs": 2}}
    )  # fmt: skip
    curated = with_exposures(variant_records(recipe, run, ["recipe"])["recipe"], 2)
    lengths = token_lengths(default_model.path, curated, 512)
    assert len(lengths) == 3  # the facts row twice
    budget = 2 * sum(lengths)
    assert default_budget(recipe, run, default_model.path, 512, {"recipe": lengths}) == budget
    controls = {"corpus-only": [7, 7], "random": [9]}
    assert default_budget(recipe, run, default_model.path, 512, controls) == budget
    no_run = tmp_path / "none"  # nothing exported: the first variant's tokens
    assert default_budget(recipe, no_run, default_model.path, 512, controls) == 28
