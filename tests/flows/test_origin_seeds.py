"""The seeds origin (flows/stages/origins/seeds.py): added through the stage interface alone."""

from flows.recipe import AblateConfig, MixConfig
from flows.stages.base import Sources
from flows.stages.origins.seeds import seed_records
from generators.seeds import Seed
from tests.flows.fake_run import FakeRun

SEEDS = [
    Seed("s1", "Define pH.", (("", "The negative log of [H+]."), ("in water", ""))),
    Seed("s2", "No instances.", ()),
]


def test_seed_instances_with_an_output_are_records_the_others_dropped():
    run = FakeRun(mix={"self_instruct": 0, "seeds": 1})
    outcome = run.apply(seed_records, Sources(SEEDS, [], {}))
    [record] = outcome.records
    assert (record.instruction, record.output) == ("Define pH.", "The negative log of [H+].")
    assert record.meta["origin"] == "seeds" and record.meta["seed_id"] == "s1"
    [(name, n_in, kept, dropped)] = run.stages
    assert (name, n_in, len(kept)) == ("seeds", 2, 1)
    assert dropped[0].meta["drop_reason"] == "seed_without_output"


def test_the_recipe_the_mix_and_the_ablation_know_the_new_origin():
    assert MixConfig().shares()["seeds"] == 0.0
    assert MixConfig(self_instruct=0, seeds=1).shares()["seeds"] == 1.0
    names = ["origin-seeds", "recipe-without-seeds"]
    assert AblateConfig(variants=names).variants == names
