"""Does the curated data make the default model better? `selfalign ablate` on the biomed demo.

    .venv/bin/python benchmarks/alignment.py [--recipe R] [--set key=value ...]

Runs the ablation flow (base, corpus-only control, random subset of the unfiltered generations,
the recipe's curated export; the same LoRA and training-token budget each) and writes
benchmarks/results/alignment.json: per variant, on the held-out *test* split, the change vs base
of the domain answer loss, the general answer loss, the multiple-choice acc_norm and, with a
knowledge set (train.eval.knowledge), acc_norm on its covered and uncovered items and their
difference, each with its paired-bootstrap 95% interval, and the recipe's change against each
other variant, the controls first, on the same questions (`recipe_vs`). Prints the markdown
tables for RESULTS.md.
Nothing here is tuned on the test split: the recipe is used as it ships.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_RECIPE = ROOT / "flows" / "recipes" / "biomed-demo.yaml"
OUT = ROOT / "benchmarks" / "results" / "alignment.json"
KEYS = (  # (metric in ablation.json, name in alignment.json)
    ("test_loss", "domain_loss"),
    ("general_loss", "general_loss"),
    ("test_acc_norm", "acc_norm"),
    ("test_acc", "acc"),
    ("covered_test_acc_norm", "covered_acc_norm"),
    ("uncovered_test_acc_norm", "uncovered_acc_norm"),
    ("knowledge_test_acc_norm", "covered_minus_uncovered"),
    ("dev_loss", "dev_domain_loss"),
    ("covered_dev_acc_norm", "dev_covered_acc_norm"),
    ("knowledge_dev_acc_norm", "dev_covered_minus_uncovered"),
)


def summary(result: dict) -> dict:
    """variant -> {metric: {value, change: {value, lo, hi}}} for the test-split metrics."""
    out = {}
    for name, v in result["variants"].items():
        row = {"rows": v.get("rows", 0), "tokens": v.get("tokens", 0)}
        for key, label in KEYS:
            cell = v["metrics"].get(key)
            if cell:
                row[label] = {"value": cell["value"], "change": cell["change"]}
        out[name] = row
    return out


def versus(result: dict) -> dict:
    """variant -> {metric: the recipe's change vs that variant (controls first), with CI}."""
    return {
        name: {label: metrics[key]["change"] for key, label in KEYS if key in metrics}
        for name, metrics in (result.get("recipe_vs") or {}).items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from flows.ablation.ablate import ablate
    from flows.ablation.report import explanation, markdown_table, versus_table
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    start = time.perf_counter()
    result = ablate(recipe=recipe.model_dump())
    seconds = round(time.perf_counter() - start, 1)
    report = {
        "recipe": args.recipe
        if args.recipe != str(DEFAULT_RECIPE)
        else "flows/recipes/biomed-demo.yaml",
        "overrides": args.overrides,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "seconds": seconds,
        "token_budget": result["token_budget"],
        "split": {k: result["split"][k] for k in ("seed", "test_fraction", "dev_n", "test_n")},
        "variants": summary(result),
        "recipe_vs": versus(result),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(explanation(result))
    print(markdown_table(result))
    print(versus_table(result))
    print(f"{seconds} s; written {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
