"""`run_admitted`'s control flow on a scripted engine: what is in flight stays within the budget,
outputs come back in input order, and an error aborts what is in flight."""

from dataclasses import dataclass, field

import pytest

from generators.backends.vllm_admission import request_tokens, run_admitted


@dataclass
class Out:
    request_id: str
    finished: bool = True


@dataclass
class ScriptedEngine:
    """Finishes its requests in the order `finish` gives (indices), one per step."""

    need: list[int]
    finish: list[int]
    fail_at_step: int | None = None
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    steps: int = 0
    aborted: list[str] = field(default_factory=list)

    def add_request(self, rid, prompt, params):
        self.in_flight[rid] = int(rid.rsplit("-", 1)[1])
        self.peak = max(self.peak, sum(self.need[i] for i in self.in_flight.values()))
        assert prompt["prompt_token_ids"] == [self.in_flight[rid]]

    def step(self):
        self.steps += 1
        if self.steps == self.fail_at_step:
            raise RuntimeError("engine died")
        for i in self.finish:
            rid = f"selfalign-{i}"
            if rid in self.in_flight:
                del self.in_flight[rid]
                self.finish.remove(i)
                return [Out(f"other-{i}", finished=True), Out(rid, finished=False), Out(rid)]
        return []

    def abort_request(self, ids):
        self.aborted += ids


class Params:
    output_kind = None


def run(engine, n, capacity):
    done = []
    outs = run_admitted(
        engine,
        [[i] for i in range(n)],
        [Params() for _ in range(n)],
        engine.need,
        capacity,
        on_done=done.append,
    )
    return outs, done


def test_in_flight_stays_within_the_budget_and_outputs_keep_input_order():
    need = [3, 5, 2, 4, 6, 1]
    engine = ScriptedEngine(need, finish=[2, 0, 1, 3, 5, 4])
    outs, done = run(engine, 6, capacity=9)
    assert [o.request_id for o in outs] == [f"selfalign-{i}" for i in range(6)]
    assert engine.peak <= 9 and sorted(done) == list(range(6)) and not engine.in_flight


def test_everything_goes_in_at_once_when_it_fits():
    engine = ScriptedEngine([1] * 5, finish=[4, 3, 2, 1, 0])
    run(engine, 5, capacity=100)
    assert engine.peak == 5 and engine.steps == 5


def test_a_request_larger_than_the_budget_still_runs_alone():
    engine = ScriptedEngine([2, 50, 2], finish=[0, 1, 2])
    outs, _ = run(engine, 3, capacity=10)
    assert all(outs) and engine.peak == 50


def test_an_engine_error_aborts_what_is_in_flight():
    engine = ScriptedEngine([1] * 4, finish=[0, 1, 2, 3], fail_at_step=2)
    with pytest.raises(RuntimeError, match="engine died"):
        run(engine, 4, capacity=100)
    assert sorted(engine.aborted) == ["selfalign-1", "selfalign-2", "selfalign-3"]


class Sp:
    def __init__(self, max_tokens, n=1):
        self.max_tokens, self.n = max_tokens, n


def test_request_tokens_counts_whole_blocks_per_sample_up_to_the_context():
    assert request_tokens(538, Sp(128), block=128, max_len=2048) == 768
    assert request_tokens(100, Sp(28), block=16, max_len=2048) == 128
    assert request_tokens(100, Sp(28, n=3), block=16, max_len=2048) == 384
    assert request_tokens(2000, Sp(512), block=128, max_len=2048) == 2048
