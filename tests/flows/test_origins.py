"""The mix between origins (flows/stages/mix.py) and its recipe section."""

import pytest

from flows.recipe import MixConfig
from flows.stages.base import origin_of as origin
from flows.stages.mix import mix_counts
from generators.records import Record


def test_mix_counts_is_the_largest_set_in_proportion():
    assert mix_counts({"a": 100, "b": 30}, {"a": 1, "b": 1}) == {"a": 30, "b": 30}
    assert mix_counts({"a": 100, "b": 30}, {"a": 2, "b": 1}) == {"a": 60, "b": 30}
    assert mix_counts({"a": 10, "b": 300}, {"a": 0.5, "b": 0.5}) == {"a": 10, "b": 10}
    assert mix_counts({"a": 10, "b": 30}, {"a": 1, "b": 0}) == {"a": 10, "b": 0}
    # an origin asked for but empty cannot be met: the others stay whole
    assert mix_counts({"a": 10, "b": 0}, {"a": 1, "b": 1}) == {"a": 10, "b": 0}
    assert mix_counts({"a": 7}, {"a": 0}) == {"a": 0}


def test_origin_defaults_to_self_instruct():
    assert origin(Record(instruction="x")) == "self_instruct"
    assert origin(Record(instruction="x", meta={"origin": "reading"})) == "reading"


def test_mix_needs_one_origin():
    shares = MixConfig().shares()
    assert [o for o, share in shares.items() if share] == ["self_instruct"]  # on by default
    assert list(shares)[:4] == ["self_instruct", "backtranslation", "reading", "facts"]
    with pytest.raises(ValueError, match="at least one origin"):
        MixConfig(self_instruct=0)


def test_ablate_variants_name_origins():
    from flows.recipe import AblateConfig

    names = ["origin-reading", "origin-backtranslation", "recipe-minus-mix", "recipe-minus-all",
             "origin-facts", "recipe-without-facts"]  # fmt: skip
    assert AblateConfig(variants=names).variants == names
    for bad in ("origin-corpus", "recipe-minus-", "minus-rating", "recipe-without-corpus"):
        with pytest.raises(ValueError, match="unknown variant"):
            AblateConfig(variants=[bad])


def test_the_mix_cuts_the_other_origins_and_keeps_every_facts_row():
    from flows.stages.mix import mix_stage
    from tests.flows.fake_run import FakeRun

    run = FakeRun(mix={"self_instruct": 1, "reading": 1, "facts": 1})
    rows = [Record(f"si {i}", meta={"origin": "self_instruct"}) for i in range(2)]
    rows += [Record(f"rd {i}", meta={"origin": "reading"}) for i in range(6)]
    rows += [Record(f"fact {i}", meta={"origin": "facts"}) for i in range(50)]
    kept = run.apply(mix_stage, rows).records
    by = {o: sum(origin(r) == o for r in kept) for o in ("self_instruct", "reading", "facts")}
    assert by == {"self_instruct": 2, "reading": 2, "facts": 50}
    [(name, n_in, _, dropped)] = run.stages
    assert (name, n_in) == ("mix", 58)
    assert {r.meta["drop_reason"] for r in dropped} == {"mix_share_reading"}
