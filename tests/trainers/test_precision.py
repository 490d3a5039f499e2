"""bf16 is chosen only where its loss check passed (or on CUDA, or when asked for)."""

from __future__ import annotations

import json

import pytest

from trainers import precision

AMX = {"avx2", "amx_bf16"}
PLAIN = {"avx2", "avx512f"}


@pytest.fixture
def verdict(monkeypatch):
    """bf16_check answers what the test sets, and counts its calls."""
    state = {"passed": True, "calls": 0}

    def fake(model_path, cache):
        state["calls"] += 1
        return {"passed": state["passed"], "max_rel_diff": 0.004 if state["passed"] else 0.03}

    monkeypatch.setattr(precision, "bf16_check", fake)
    return state


def test_auto_takes_bf16_on_a_bf16_cpu_only_when_the_check_passed(verdict) -> None:
    assert precision.choose("auto", "m", None, gpu=False, flags=AMX)[0] == "bf16"
    verdict["passed"] = False
    dtype, why = precision.choose("auto", "m", None, gpu=False, flags=AMX)
    assert dtype == "fp32" and why == "bf16 check failed (max loss difference 3.00%)"


def test_auto_never_checks_on_a_cpu_without_bf16_units(verdict) -> None:
    assert precision.choose("auto", "m", None, gpu=False, flags=PLAIN) == (
        "fp32", "no bf16 units on this CPU"
    )  # fmt: skip
    assert verdict["calls"] == 0


def test_cuda_and_explicit_requests(verdict) -> None:
    assert precision.choose("auto", "m", None, gpu=True)[0] == "bf16"
    assert precision.choose("fp32", "m", None, gpu=True)[0] == "fp32"
    assert precision.choose("fp32", "m", None, gpu=False, flags=AMX) == ("fp32", "asked")
    assert precision.choose("bf16", "m", None, gpu=False, flags=AMX) == ("bf16", "asked")
    with pytest.raises(ValueError, match="no bf16 units"):
        precision.choose("bf16", "m", None, gpu=False, flags=PLAIN)
    assert verdict["calls"] == 0


def test_cpu_flags_name_the_bf16_units() -> None:
    assert precision.cpu_has_bf16({"avx512_bf16"}) and precision.cpu_has_bf16({"amx_bf16"})
    assert not precision.cpu_has_bf16(PLAIN)


def test_compare_holds_every_step_to_the_tolerance() -> None:
    ok = precision.compare([2.0, 1.5], [2.01, 1.5])
    assert ok["passed"] and ok["max_rel_diff"] == 0.005
    assert not precision.compare([2.0, 1.5], [2.0, 1.53])["passed"]


def test_the_verdict_is_measured_once_and_then_read_from_the_cache(tmp_path, monkeypatch) -> None:
    runs = []

    def losses(model_path, bf16):
        runs.append(bf16)
        return [3.0, 2.5] if not bf16 else [3.01, 2.51]

    monkeypatch.setattr(precision, "_losses", losses)
    monkeypatch.setattr(precision, "check_key", lambda path: "k")
    first = precision.bf16_check("m", tmp_path)
    assert first["passed"] and runs == [False, True]
    assert json.loads((tmp_path / "precision" / "k.json").read_text()) == first
    assert precision.bf16_check("m", tmp_path) == first and runs == [False, True]
