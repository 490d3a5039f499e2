"""trainers.promote: the promote rule on hand-made evaluations, no model."""

from __future__ import annotations

import pytest

from trainers.promote import promote, relative_change


def test_relative_change() -> None:
    assert relative_change(2.0, 1.5) == pytest.approx(-0.25)
    assert relative_change(2.0, 2.04) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="before is 0"):
        relative_change(0.0, 1.0)


def _report(domain: float, general: float | None, nll: list[float] | None = None) -> dict:
    """An evaluation with 8 dev questions of one token each, all at `domain` unless `nll`."""
    nll = nll or [domain] * 8
    dev = {"ids": [f"q{i}" for i in range(len(nll))], "nll": nll, "tokens": [1] * len(nll)}
    return {
        "domain_loss": sum(nll) / len(nll),
        "general_loss": general,
        "per_question": {"dev": dev},
    }


@pytest.mark.parametrize(
    ("after", "kwargs", "ok", "phrases"),
    [
        (
            _report(2.102, 2.031),
            {},
            True,
            [
                "dev domain loss 2.431 -> 2.102 (-13.5%, 95% CI -13.5% .. -13.5%)",
                "general loss 2.010 -> 2.031 (+1.0%)",
                ": promoted",
            ],
        ),
        (_report(2.431, 2.0), {}, False, ["(+0.0%", "interval low end 0.0% <= 0.0%"]),
        (_report(2.5, 2.0), {}, False, ["(+2.8%", "fell -2.8%"]),
        (
            _report(2.102, 2.073),
            {},
            False,
            ["general loss 2.010 -> 2.073 (+3.1%)", "not promoted (general loss rose 3.1% > 2.0%)"],
        ),
        (_report(2.102, None), {}, True, ["general loss not measured: promoted"]),
        (
            _report(2.3, 2.0),
            {"min_domain_gain": 0.1},
            False,
            ["(-5.4%", "interval low end 5.4% <= 10.0%"],
        ),
        (_report(2.102, 2.0), {"min_domain_gain": 0.1}, True, ["(-13.5%", ": promoted"]),
        (_report(2.102, 2.073), {"max_general_increase": 0.05}, True, ["(+3.1%)", ": promoted"]),
    ],
)
def test_promote(after: dict, kwargs: dict, ok: bool, phrases: list[str]) -> None:
    promoted, reason = promote(_report(2.431, 2.010), after, **kwargs)
    assert promoted is ok, reason
    for phrase in phrases:
        assert phrase in reason
    assert "\n" not in reason


def test_promote_needs_the_interval_low_end_above_the_gain() -> None:
    # same point estimate (-10%) twice: every question 10% lower vs half 40% lower, half +20%
    even = _report(0.0, None, [1.8] * 8)
    mixed = _report(0.0, None, [1.2, 2.4] * 4)
    before = _report(2.0, None)
    assert promote(before, even, 0.05)[0]
    promoted, reason = promote(before, mixed, 0.05)
    assert not promoted and "dev domain loss 2.000 -> 1.800 (-10.0%, 95% CI" in reason
    assert "interval low end" in reason
    # the edge: a gain exactly at min_domain_gain does not clear it
    assert not promote(before, even, 0.1)[0] and promote(before, even, 0.0999)[0]


def test_promote_reads_dev_only() -> None:
    before, after = _report(2.0, None), _report(1.8, None)
    decision = promote(before, after)
    for report, loss in ((before, 0.1), (after, 9.0)):
        report["test_loss"] = loss
        report["per_question"]["test"] = {"ids": ["t"], "nll": [loss], "tokens": [1]}
    assert promote(before, after) == decision


def test_promote_refuses_reports_on_different_questions() -> None:
    other = _report(1.5, None)
    other["per_question"]["dev"]["ids"][0] = "elsewhere"
    with pytest.raises(ValueError, match="different dev questions"):
        promote(_report(2.0, None), other)


def test_promote_ignores_general_when_before_lacks_it() -> None:
    promoted, reason = promote(_report(2.0, None), _report(1.5, 9.0))
    assert promoted
    assert reason == (
        "dev domain loss 2.000 -> 1.500 (-25.0%, 95% CI -25.0% .. -25.0%), "
        "general loss not measured: promoted"
    )
