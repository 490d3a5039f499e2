"""The ablation's comparison of every variant with the base model: numbers, table, chart, and
the files that hold them (ablation.json, ablation.md, ablation.png, the data card section).

Each metric of a variant is compared with the base model on the same questions (paired
bootstrap, trainers/heldout.py): answer losses as a relative change (-0.10 = 10% lower, better),
multiple-choice accuracies as a difference in points of 1.0 (+0.10 = ten points more, better).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.ablation.chart import chart_png
from flows.ops.artifacts import artifact_key, publish
from generators.io import write_text_atomic
from trainers.heldout import difference_ci, gap_ci, mean_ci, relative_change_ci

LOSSES = ("test", "dev", "general")
ACCURACIES = ("acc", "acc_norm")
CARD_HEADING = "## Ablation"


def _loss(report: dict[str, Any], split: str) -> dict[str, list] | None:
    per_q = report["eval"]["per_question"].get(split)
    return per_q if per_q and per_q["ids"] else None


def compare(base: dict[str, Any], variant: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """{metric: {"value", "lo", "hi", "change": {"value", "lo", "hi"} | None}} for one variant.

    Metrics: <split>_loss for test, dev, general; <split>_<acc|acc_norm> for test and dev.
    `change` is None for the base model itself.
    """
    out: dict[str, Any] = {}
    same = base is variant
    for split in LOSSES:
        b, v = _loss(base, split), _loss(variant, split)
        if v is None:
            continue
        cell = mean_ci(v["nll"], v["tokens"], seed=seed)
        cell["change"] = (
            None if same else relative_change_ci(b["nll"], v["nll"], b["tokens"], seed=seed)
        )
        out[f"{split}_loss"] = cell
    for split, scores in (variant.get("mc") or {}).items():
        for metric in ACCURACIES:
            values = scores[f"{metric}_per_q"]
            cell = mean_ci(values, seed=seed)
            before = base["mc"][split][f"{metric}_per_q"]
            cell["change"] = None if same else difference_ci(before, values, seed=seed)
            out[f"{split}_{metric}"] = cell
    if not same:
        out.update(knowledge_gaps(base.get("mc") or {}, variant.get("mc") or {}, seed))
    return out


def knowledge_gaps(base: dict, variant: dict, seed: int = 0) -> dict[str, Any]:
    """{knowledge_<half>_<metric>: {"value": None, "change": gap}}: the covered items' change
    minus the uncovered items' change (what the corpus taught, not style), per split half."""
    out: dict[str, Any] = {}
    for half in ("dev", "test"):
        cov, unc = f"covered_{half}", f"uncovered_{half}"
        if not all(k in variant and k in base for k in (cov, unc)):
            continue
        for metric in ACCURACIES:
            key = f"{metric}_per_q"
            gap = gap_ci(base[cov][key], variant[cov][key], base[unc][key], variant[unc][key],
                         seed=seed)  # fmt: skip
            out[f"knowledge_{half}_{metric}"] = {"value": None, "change": gap}
    return out


CONTROLS = ("corpus-only", "random")


def versus(reports: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """{variant: compare(variant, recipe)}: the recipe's change against each other variant that
    was trained (the controls first), on the same questions (paired), so 'better than the
    control' and 'what a left-out stage gave' (recipe vs recipe-minus-<stage>) have intervals."""
    if "recipe" not in reports:
        return {}
    recipe = reports["recipe"]
    others = [c for c in CONTROLS if c in reports]
    others += [n for n in reports if n not in ("base", "recipe", *CONTROLS)]
    return {name: compare(reports[name], recipe, seed=seed) for name in others}


def _pct(cell: dict[str, float] | None) -> str:
    if not cell:
        return "-"
    return f"{cell['value']:+.1%} [{cell['lo']:+.1%}, {cell['hi']:+.1%}]"


def _pts(cell: dict[str, float] | None) -> str:
    if not cell:
        return "-"
    return f"{cell['value'] * 100:+.1f} [{cell['lo'] * 100:+.1f}, {cell['hi'] * 100:+.1f}]"


def _change(metrics: dict[str, Any], key: str, is_acc: bool) -> str:
    """A metric's change with its interval: points for accuracies, percent for losses."""
    return (_pts if is_acc else _pct)((metrics.get(key) or {}).get("change"))


def _value(metrics: dict[str, Any], key: str, percent: bool) -> str:
    cell = metrics.get(key)
    if not cell or cell.get("value") is None:
        return "-"
    if percent:
        return f"{cell['value']:.1%}"
    return f"{cell['value']:.3f}"


COLUMNS = (  # (metric, header, is an accuracy)
    ("test_loss", "test domain loss", False),
    ("covered_test_acc_norm", "test covered acc_norm", True),
    ("uncovered_test_acc_norm", "test uncovered acc_norm", True),
    ("knowledge_test_acc_norm", "test covered − uncovered", True),
    ("test_acc_norm", "test MC acc_norm", True),
    ("test_acc", "test MC acc", True),
    ("general_loss", "general loss", False),
    ("dev_loss", "dev domain loss", False),
    ("covered_dev_acc_norm", "dev covered acc_norm", True),
    ("knowledge_dev_acc_norm", "dev covered − uncovered", True),
    ("dev_acc_norm", "dev MC acc_norm", True),
)


def markdown_table(result: dict[str, Any]) -> str:
    """Variant x metric: the value, and under it the change vs base with its 95% interval."""
    cols = [c for c in COLUMNS if any(c[0] in v["metrics"] for v in result["variants"].values())]
    lines = [
        "| variant | rows | tokens | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for name, v in result["variants"].items():
        cells = []
        for key, _, is_acc in cols:
            shown = _value(v["metrics"], key, is_acc)
            change = _change(v["metrics"], key, is_acc)
            cells.append(shown if name == "base" else f"{shown}<br>Δ {change}")
        rows, tokens = v.get("rows", 0), v.get("tokens", 0)
        lines.append(f"| {name} | {rows} | {tokens} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versus_table(result: dict[str, Any]) -> str:
    """The recipe against each other variant, with the paired 95% interval; '' without one."""
    rows = result.get("recipe_vs") or {}
    if not rows:
        return ""
    cols = [c for c in COLUMNS if c[0] != "test_acc"]
    lines = [
        "| recipe vs | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, metrics in rows.items():
        cells = [_change(metrics, key, is_acc) for key, _, is_acc in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return (
        "\nThe recipe against each other variant on the same questions (paired bootstrap): a "
        "loss interval below 0 or an accuracy interval above 0 shows the recipe better (against "
        "recipe-minus-<stage>: what that stage gave).\n\n" + "\n".join(lines) + "\n"
    )


def explanation(result: dict[str, Any]) -> str:
    """How to read the table, with the split sizes and budget of this run."""
    split = result["split"]
    return (
        f"Base model `{result['base_model']}`; every trained variant saw {result['token_budget']} "
        f"training tokens (prompt + answer). Test split: {split['test_n']} questions, dev: "
        f"{split['dev_n']} (split seed {split['seed']}; nothing is tuned on test). Δ is the change "
        "vs base on the same questions with its paired-bootstrap 95% interval: losses relative "
        "(negative is better), accuracies in points (positive is better). An interval that "
        "contains 0 is within the noise. MC: 4 choices (gold + 3 distractors), chance is 25%.\n"
        + knowledge_note(result)
    )


def knowledge_note(result: dict[str, Any]) -> str:
    """What the knowledge columns are, with their sizes; '' when the recipe has no set."""
    sizes = result.get("knowledge_n") or {}
    if not sizes:
        return ""
    parts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in sizes.items())
    return (
        "\nKnowledge (hand-written MC, distractors written, not rule-made): *covered* items ask "
        "one fact of one corpus passage, *uncovered* items a same-domain fact in no passage; "
        "covered − uncovered is the covered change minus the uncovered change (what the corpus "
        f"taught, not style), each set resampled on its own. Items: {parts}.\n"
    )


def card_section(result: dict[str, Any]) -> str:
    """The data card's ablation section."""
    return (
        f"{CARD_HEADING}\n\n{explanation(result)}\n{markdown_table(result)}{versus_table(result)}"
    )


def with_card_section(card: str, section: str) -> str:
    """The card with its ablation section replaced (or appended)."""
    head = card.split(f"\n{CARD_HEADING}\n", 1)[0].rstrip("\n")
    return f"{head}\n\n{section}"


def write_outputs(run: Path, result: dict[str, Any], reports: dict[str, Any]) -> None:
    """ablation.json (+ per-question scores), ablation.md, ablation.png, the data card section,
    and the dashboard artifact."""
    out = run / "ablation"
    full = {**result, "per_question": reports}
    write_text_atomic(out / "ablation.json", json.dumps(full, indent=2, ensure_ascii=False))
    section = card_section(result)
    body = explanation(result) + "\n" + markdown_table(result) + versus_table(result)
    write_text_atomic(out / "ablation.md", f"# Ablation: {result['recipe']}\n\n{body}")
    png = chart_png(result)
    if png is not None:
        (out / "ablation.png").write_bytes(png)
    card = run / "export" / "README.md"
    if card.is_file():
        write_text_atomic(card, with_card_section(card.read_text(encoding="utf-8"), section))
    key = artifact_key(result["recipe"], 1, "ablation")
    publish([("markdown", key, section, "Variants vs base on the held-out splits")])
