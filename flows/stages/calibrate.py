"""Judge calibration: how often each judge a recipe uses agrees with a labelled check set.

The check set is the dev split of held-out QA (filters/calibration.py, trainers/heldout.py): every
question with its correct answer and one corrupted answer; the test split is never read. Each
judge is asked about every item the way the pipeline asks it:

    rating            score >= the recipe's threshold means "correct"
    s3ft_equivalence  is the answer equivalent to the reference answer?
    self_feedback     SELF's own verdict on the answer
    comparison        MultiCritique's pairwise judge on (correct, corrupted), positions hashed;
                      the answer it prefers counts as judged "correct", the other as "wrong"

A judge may also be scored without asking the model (its `scorers`, filters/s3ft.py and
filters/support.py: S3FT by token F1 or embedder cosine, rating and SELF by the answer's
likelihood gain from its passages or by IFD). Each judge is measured by the scorers its recipe
section names (`auto`: all of them and the model's verdict), and the one that agrees best is the
judge's `scorer` in the result; the pipeline hands it to the judge's stage.

Results go to runs/<name>/calibration.json, the manifest and the data card. A judge under
`calibration.min_agreement` is a warning (`on_low: warn`), is not used (`skip`: `skipped_judges`
names it, and the pipeline hands the reason to its stage, which passes records through
unfiltered; S3FT falls back to exact match, MultiCritique makes no preference pairs), or stops
the run (`refuse`).
Not calibrated: the meta-critique judge (the check set has no labelled critique units).
"""

from __future__ import annotations

import json
import time

from filters import calibration as cal
from flows.stages.base import LLM_VERDICT, Tools
from flows.stages.registry import JUDGES as JUDGE_STAGES
from generators.errors import SelfAlignError
from generators.io import write_text_atomic

# The verdicts calibrated, one per judge that declares one (flows/stages/registry.py).
JUDGES = tuple(j.verdict for j in JUDGE_STAGES if j.verdict)
CALIBRATION_FILE = "calibration.json"


def judge_of(verdict: str):
    """The registry's judge whose calibrated verdict is `verdict`."""
    for j in JUDGE_STAGES:
        if j.verdict == verdict:
            return j
    raise SelfAlignError(f"unknown judge {verdict!r}: choose one of {', '.join(JUDGES)}")


def judges_in(recipe) -> list[str]:
    """The verdicts of the recipe's switched-on judges that have something to calibrate (the
    model's verdict or a scorer; not a rule such as S3FT's exact match)."""
    return [j.verdict for j in JUDGE_STAGES if j.candidates(getattr(recipe, j.section))]


def candidates_of(recipe, verdict: str) -> list[str]:
    """The scorers calibration measures for `verdict`: the section's choice ("auto": all of
    them), or the model's verdict when the section's choice needs none (asked by name)."""
    j = judge_of(verdict)
    cfg = getattr(recipe, j.section)
    return j.candidates(cfg.model_copy(update={"enabled": True})) or [LLM_VERDICT]


def judge_verdicts(
    tools: Tools, judge: str, items: list[cal.CheckItem], scorer: str = LLM_VERDICT
) -> list[bool | None]:
    """One verdict per check item by `scorer`: True = judged correct, None = no usable verdict."""
    j = judge_of(judge)
    try:
        return j.verdicts_of(scorer)(tools, items)
    except ValueError as e:
        raise SelfAlignError(str(e)) from None


def best(measured: dict[str, dict]) -> str:
    """The scorer with the highest agreement; a tie goes to the one measured first."""
    return max(measured, key=lambda name: measured[name]["agreement"] or 0.0)


def dev_rows(recipe, rows: list[dict]) -> list[dict]:
    """The QA rows in the dev split (the test split is never used to calibrate anything)."""
    from trainers.heldout import split

    ev = recipe.train.eval
    return split(rows, ev.split_seed, ev.test_fraction, key=lambda row: row["id"])[0]


def check_items(recipe) -> list[cal.CheckItem]:
    """The labelled check set: the dev questions of `calibration.check_set`, each with its
    correct and one corrupted answer, sampled to `calibration.size` pairs."""
    cfg = recipe.calibration
    if not cfg.check_set:
        raise SelfAlignError("recipe: 'calibration.check_set' is not set (a held-out QA JSONL)")
    rows = dev_rows(recipe, cal.load_qa(cfg.check_set))
    if len(rows) < 2:
        raise SelfAlignError(f"{cfg.check_set}: fewer than 2 questions in the dev split")
    items = cal.corrupt(rows, seed=recipe.seed)
    return cal.sample(items, cfg.size, seed=recipe.seed)


def calibrate(
    tools: Tools, judges: list[str] | None = None, log=None, enforce: bool = True
) -> dict:
    """Measure `judges` (default: the recipe's) on the check set; write calibration.json.

    Returns {"check_set", "pairs", "min_agreement", "judges": {name: metrics}, "seconds"} (the
    manifest's `calibration` section; `skipped_judges` of it: the judges the pipeline must not
    use); with `enforce`, raises SelfAlignError when a judge is under min_agreement and the recipe
    says `on_low: refuse`.
    """
    cfg = tools.recipe.calibration
    judges = judges_in(tools.recipe) if judges is None else judges
    if not judges:
        return {}
    items = check_items(tools.recipe)
    labels = [it.label for it in items]
    result = {
        "check_set": cfg.check_set,
        "pairs": len(items) // 2,
        "min_agreement": cfg.min_agreement,
        "judges": {},
    }
    started = time.perf_counter()
    with tools.timed("calibration"):
        for judge in judges:
            measured = {}
            for scorer in candidates_of(tools.recipe, judge):
                verdicts = judge_verdicts(tools, judge, items, scorer)
                metrics = cal.metrics(labels, verdicts)
                metrics["by_kind"] = cal.by_kind(items, verdicts)
                measured[scorer] = metrics
                if log:
                    log.info("calibration %s", cal.summary_line(f"{judge} [{scorer}]", metrics))
            chosen = best(measured)
            result["judges"][judge] = {**measured[chosen], "scorer": chosen}
            if len(measured) > 1:
                result["judges"][judge]["candidates"] = measured
    result["seconds"] = round(time.perf_counter() - started, 1)
    low = [j for j, m in result["judges"].items() if m["agreement"] < cfg.min_agreement]
    for name, metrics in result["judges"].items():
        metrics["action"] = "used" if name not in low else f"low: {cfg.on_low}"
    path = tools.run_dir / CALIBRATION_FILE
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    if low and enforce:
        message = (
            f"judge(s) {', '.join(low)} agree with the check set less than "
            f"calibration.min_agreement={cfg.min_agreement} (see {path})"
        )
        if cfg.on_low == "refuse":
            raise SelfAlignError(message)
        if log:
            log.warning("%s; calibration.on_low is '%s'", message, cfg.on_low)
    return result


def skipped_judges(result: dict) -> dict[str, str]:
    """The judges `calibrate` found under min_agreement with `on_low: skip`, each with why.

    {"min_agreement": 0.6, "judges": {"rating": {"agreement": 0.4, "action": "low: skip"}}}
    -> {"rating": "uncalibrated: agreement 0.4 < 0.6"}; {} (nothing calibrated) -> {}.
    """
    return {
        name: f"uncalibrated: agreement {metrics['agreement']} < {result['min_agreement']}"
        for name, metrics in result.get("judges", {}).items()
        if metrics["action"] == "low: skip"
    }


def chosen_scorers(result: dict) -> dict[str, str]:
    """Each calibrated judge's scorer: {"judges": {"rating": {"scorer": "ifd", ...}}} ->
    {"rating": "ifd"}; {} when nothing was calibrated."""
    return {name: m.get("scorer", LLM_VERDICT) for name, m in result.get("judges", {}).items()}


def judges_to_skip(tools: Tools, log) -> tuple[dict[str, str], dict]:
    """Calibrate the judges the recipe uses (when it names a check set). Returns the ones not to
    use, each with why (judge -> reason; none unless `calibration.on_low` is 'skip'), and the
    calibration result for the manifest ({} when nothing was calibrated)."""
    used = judges_in(tools.recipe)
    if used and tools.recipe.calibration.check_set:
        result = calibrate(tools, used, log=log)
        return skipped_judges(result), result
    if used:
        log.warning("judges %s are not calibrated: set calibration.check_set", used)
    return {}, {}
