"""The promote rule: does a trained model replace the one it started from?

The dev domain loss must fall (the low end of its paired bootstrap interval above
`min_domain_gain`), the general loss may rise only a little. The test split is measured and
reported (trainers/evaluate.py), never read by the rule.

Not handled: metrics other than answer losses (token F1 and multiple-choice scores are reported,
not ruled on).
"""

from __future__ import annotations

from typing import Any


def relative_change(before: float, after: float) -> float:
    """(after - before) / before: 2.0 -> 1.5 gives -0.25."""
    if before == 0:
        raise ValueError("relative_change: before is 0")
    return (after - before) / before


def _loss_text(name: str, before: float, after: float) -> str:
    """'domain loss 2.431 -> 2.102 (-13.5%)'."""
    return f"{name} loss {before:.3f} -> {after:.3f} ({relative_change(before, after):+.1%})"


def domain_change(before: dict[str, Any], after: dict[str, Any], seed: int = 0) -> dict[str, float]:
    """Relative change of the dev domain loss, paired bootstrap over the dev questions:
    {"value", "lo", "hi"} (-0.1 = the loss fell 10%)."""
    from trainers.heldout import relative_change_ci

    b, a = before["per_question"]["dev"], after["per_question"]["dev"]
    if b["ids"] != a["ids"]:
        raise ValueError("promote: the two evaluations scored different dev questions")
    return relative_change_ci(b["nll"], a["nll"], b["tokens"], seed=seed)


def promote(
    before: dict[str, Any],
    after: dict[str, Any],
    min_domain_gain: float = 0.0,
    max_general_increase: float = 0.02,
) -> tuple[bool, str]:
    """Promote iff the lower end of the 95% interval of the dev domain loss's relative fall is
    above min_domain_gain, and the general loss rose by at most max_general_increase (ignored
    when either general loss is None); (ok, reason naming the numbers). Reads dev only."""
    change = domain_change(before, after)
    gain, gain_lo = 0.0 - change["value"], 0.0 - change["hi"]  # 0.0 - x: no "-0.0%"
    interval = f"{change['value']:+.1%}, 95% CI {change['lo']:+.1%} .. {change['hi']:+.1%}"
    losses = f"{before['domain_loss']:.3f} -> {after['domain_loss']:.3f}"
    parts = [f"dev domain loss {losses} ({interval})"]
    failures = []
    if gain_lo <= min_domain_gain:
        failures.append(
            f"dev domain loss fell {gain:.1%}, interval low end {gain_lo:.1%} "
            f"<= {min_domain_gain:.1%}"
        )
    if before.get("general_loss") is not None and after.get("general_loss") is not None:
        parts.append(_loss_text("general", before["general_loss"], after["general_loss"]))
        rise = relative_change(before["general_loss"], after["general_loss"])
        if rise > max_general_increase:
            failures.append(f"general loss rose {rise:.1%} > {max_general_increase:.1%}")
    else:
        parts.append("general loss not measured")
    verdict = f"not promoted ({'; '.join(failures)})" if failures else "promoted"
    return not failures, f"{', '.join(parts)}: {verdict}"
