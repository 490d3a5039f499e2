"""Judge calibration: how often each judge a recipe uses agrees with a labelled check set.

The check set is the dev split of held-out QA (filters/calibration.py, trainers/heldout.py): every
question with its correct answer and one corrupted answer; the test split is never read. Each
judge is asked about every item the way the pipeline asks it:

    rating            score >= the recipe's threshold means "correct"
    s3ft_equivalence  is the answer equivalent to the reference answer?
    self_feedback     SELF's own verdict on the answer
    comparison        MultiCritique's pairwise judge on (correct, corrupted), positions hashed;
                      the answer it prefers counts as judged "correct", the other as "wrong"

Results go to runs/<name>/calibration.json, the manifest and the data card. A judge under
`calibration.min_agreement` is a warning (`on_low: warn`), is not used (`skip`: `skipped_judges`
names it, and the pipeline hands the reason to its stage, which passes records through
unfiltered; S3FT falls back to exact match, MultiCritique makes no preference pairs), or stops
the run (`refuse`).
Not calibrated: the meta-critique judge (the check set has no labelled critique units).
"""

from __future__ import annotations

import json

from filters import calibration as cal
from filters import multicritique as mc
from filters import s3ft
from filters import self_refine as sr
from filters.rating import build_rating_prompt, parse_rating, rating_sampling
from flows.recipe import Recipe
from flows.run import Run
from flows.stages.judges.judged import MULTI, RATING, S3FT, SELF
from generators.errors import SelfAlignError
from generators.io import write_text_atomic

JUDGES = ("rating", "s3ft_equivalence", "self_feedback", "comparison")
CALIBRATION_FILE = "calibration.json"


def judges_in(recipe: Recipe) -> list[str]:
    """The judges the recipe's enabled stages use."""
    used = {
        "rating": recipe.rating.enabled,
        "s3ft_equivalence": recipe.s3ft.enabled and recipe.s3ft.judge == "llm",
        "self_feedback": recipe.self_refine.enabled,
        "comparison": recipe.multicritique.enabled,
    }
    return [name for name in JUDGES if used[name]]


def _comparison_verdicts(run: Run, items: list[cal.CheckItem]) -> list[bool | None]:
    """Pairs (gold, corrupted) in check-set order; the preferred answer is judged correct."""
    pairs = [(items[k], items[k + 1]) for k in range(0, len(items), 2)]
    prompts, gold_first = [], []
    for gold, wrong in pairs:
        flip = mc.revision_first(gold.id, "calibration")
        a, b = (wrong.answer, gold.answer) if flip else (gold.answer, wrong.answer)
        gold_first.append(not flip)
        prompts.append(mc.comparison_prompt(gold.question, "", a, b))
    sampling = mc.judge_sampling(mc.COMPARE_SCHEMA, run.recipe.multicritique.judge_max_tokens)
    replies = run.llm_all("calibrate-comparison", prompts, sampling, code=MULTI)
    verdicts: list[bool | None] = []
    for (reply,), a_is_gold in zip(replies, gold_first, strict=True):
        better = mc.parse_comparison(reply)
        if better not in ("A", "B", "tie"):
            verdicts += [None, None]
        elif better == "tie":
            verdicts += [False, False]
        else:
            picked_gold = (better == "A") == a_is_gold
            verdicts += [picked_gold, not picked_gold]
    return verdicts


def judge_verdicts(run: Run, judge: str, items: list[cal.CheckItem]) -> list[bool | None]:
    """One verdict per check item: True = judged correct, None = no usable verdict."""
    r = run.recipe
    if judge == "rating":
        prompts = [build_rating_prompt(it.question, "", it.answer) for it in items]
        sampling = rating_sampling(r.rating.max_tokens)
        replies = run.llm_all("calibrate-rating", prompts, sampling, code=RATING)
        parsed = [parse_rating(reply) for (reply,) in replies]
        return [None if isinstance(p, str) else p[0] >= r.rating.threshold for p in parsed]
    if judge == "s3ft_equivalence":
        prompts = [
            s3ft.equivalence_prompt(it.question, "", it.reference, it.answer) for it in items
        ]
        sampling = s3ft.judge_sampling(r.s3ft.judge_max_tokens)
        replies = run.llm_all("calibrate-s3ft", prompts, sampling, code=S3FT)
        parsed = [s3ft.parse_equivalence(reply) for (reply,) in replies]
        return [p if isinstance(p, bool) else None for p in parsed]
    if judge == "self_feedback":
        prompts = [sr.feedback_prompt(it.question, "", it.answer) for it in items]
        sampling = sr.feedback_sampling(r.self_refine.feedback_max_tokens)
        replies = run.llm_all("calibrate-self", prompts, sampling, code=SELF)
        parsed = [sr.parse_feedback(reply) for (reply,) in replies]
        return [None if isinstance(p, str) else p["correct"] for p in parsed]
    if judge == "comparison":
        return _comparison_verdicts(run, items)
    raise SelfAlignError(f"unknown judge {judge!r}: choose one of {', '.join(JUDGES)}")


def dev_rows(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """The QA rows in the dev split (the test split is never used to calibrate anything)."""
    from trainers.heldout import split

    ev = recipe.train.eval
    return split(rows, ev.split_seed, ev.test_fraction, key=lambda row: row["id"])[0]


def check_items(recipe: Recipe) -> list[cal.CheckItem]:
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


def calibrate(run: Run, judges: list[str] | None = None, log=None, enforce: bool = True) -> dict:
    """Measure `judges` (default: the recipe's) on the check set; write calibration.json.

    Returns {"check_set", "pairs", "min_agreement", "judges": {name: metrics}, "seconds"}
    (`skipped_judges` of it: the judges the pipeline must not use); with `enforce`, raises
    SelfAlignError when a judge is under min_agreement and the recipe says `on_low: refuse`.
    """
    cfg = run.recipe.calibration
    judges = judges_in(run.recipe) if judges is None else judges
    if not judges:
        return {}
    items = check_items(run.recipe)
    labels = [it.label for it in items]
    result = {
        "check_set": cfg.check_set,
        "pairs": len(items) // 2,
        "min_agreement": cfg.min_agreement,
        "judges": {},
    }
    with run.timed("calibration"):
        for judge in judges:
            verdicts = judge_verdicts(run, judge, items)
            metrics = cal.metrics(labels, verdicts)
            metrics["by_kind"] = cal.by_kind(items, verdicts)
            result["judges"][judge] = metrics
            if log:
                log.info("calibration %s", cal.summary_line(judge, metrics))
    result["seconds"] = round(run.seconds["calibration"], 1)
    low = [j for j, m in result["judges"].items() if m["agreement"] < cfg.min_agreement]
    for name, metrics in result["judges"].items():
        metrics["action"] = "used" if name not in low else f"low: {cfg.on_low}"
    write_text_atomic(run.dir / CALIBRATION_FILE, json.dumps(result, indent=2) + "\n")
    run.calibration = result
    if low and enforce:
        message = (
            f"judge(s) {', '.join(low)} agree with the check set less than "
            f"calibration.min_agreement={cfg.min_agreement} (see {run.dir / CALIBRATION_FILE})"
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


def judges_to_skip(run: Run, log) -> dict[str, str]:
    """Calibrate the judges the recipe uses (when it names a check set); returns the ones not to
    use, each with why (judge -> reason; none unless `calibration.on_low` is 'skip')."""
    used = judges_in(run.recipe)
    if used and run.recipe.calibration.check_set:
        return skipped_judges(calibrate(run, used, log=log))
    if used:
        log.warning("judges %s are not calibrated: set calibration.check_set", used)
    return {}
