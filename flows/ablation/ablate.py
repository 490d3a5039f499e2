"""`selfalign ablate RECIPE`: does the curated data make the model better, against controls?

    base                   the model itself, untrained
    corpus-only, random, recipe, recipe-minus-<stage>, origin-<origin>  (flows/ablation/data.py)
    recipe-without-<origin>  the export without that origin's rows (recipe-without-facts)
    recipe+self_feedback, recipe+critique_sft    the export plus SELF's / MultiCritique's rows

Every trained variant gets one LoRA (the recipe's `train.lora` / `train.sft`, one pass over its
budgeted rows) from the same base model and the same training-token budget, and is measured on the
held-out dev and test splits (answer loss, multiple-choice acc / acc_norm with
lm-evaluation-harness) and the general set; the report compares each with base on the same
questions. Writes, under <run>/ablation/:

    <variant>/train.jsonl, <variant>/model/   what it trained on, its adapter + merged model
    tasks/                                    the lm-eval task files (rerun them with `lm_eval`)
    ablation.json, ablation.md, ablation.png  every number, the table, the chart

and a section of the export's data card and a dashboard artifact. Curation (when a variant needs
generated data), training and evaluation are cached Prefect tasks keyed by content: a rerun trains
and evaluates nothing. DPO is not part of an ablation (SFT only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from filters.decontam import HeldoutIndex, decontaminate
from flows.ablation import data as data
from flows.ablation import report as report
from flows.export import export_row, user_message
from flows.recipe import JUDGE_STAGE_NAMES, MINUS_STAGES, SELECT_RANDOM, Recipe, with_overrides
from flows.stages.base import origin_of
from flows.stages.decontaminate import heldout_index, heldout_sources
from flows.stages.ingest import ingest
from flows.tasks import code_version, content_key, given_key
from flows.train import (
    EVAL_CODE,
    TRAIN_CODE,
    cached,
    extra_rows,
    file_digest,
    release_inference,
    sft_task,
    split_record,
)
from flows.train_rows import order_fields, qa_first, training_rows, with_exposures
from generators.errors import SelfAlignError
from generators.io import write_jsonl_atomic
from generators.models import resolve_model
from generators.records import Record

MC_CODE = ("trainers.mc", "filters.calibration")
MINUS = "recipe-minus-"
MINUS_JUDGES = "recipe-minus-judges"  # the export without any of its judges
ORIGIN = "origin-"
PLUS = "recipe+"  # recipe+self_feedback, recipe+critique_sft: the export plus those rows
WITHOUT = "recipe-without-"  # recipe-without-facts: the export without that origin's rows
RANDOM_WITHOUT = "random-without-"  # the random control drawn without that origin's records
RUNLESS = {"corpus-only"}  # variants that need no curated run


def needs_run(variants: list[str]) -> bool:
    """Whether any variant trains on what a curation run produced."""
    return bool(set(variants) - RUNLESS)


@task(cache_key_fn=given_key, persist_result=True)
def evaluate_variant(
    key: str, model_path: str, eval_cfg: dict[str, Any], task_dir: str, tasks: dict[str, str]
) -> dict[str, Any]:
    """Answer losses (dev, test, general) and multiple-choice scores ({split: task}) of a model."""
    from flows.train import evaluate_model

    out: dict[str, Any] = {"eval": evaluate_model.fn("", model_path, eval_cfg), "mc": {}}
    if tasks:
        from trainers.mc import score_tasks

        scores = score_tasks(model_path, Path(task_dir), list(tasks.values()))
        out["mc"] = {split: scores[name] for split, name in tasks.items()}
    return out


def mc_tasks(r: Recipe, folder: Path) -> dict[str, str]:
    """Write the dev and test multiple-choice tasks; {split: lm-eval task name}."""
    from filters.calibration import load_qa, mc_items
    from trainers.heldout import split
    from trainers.mc import write_task

    ev = r.train.eval
    halves = split(load_qa(ev.domain), ev.split_seed, ev.test_fraction, key=lambda row: row["id"])
    stem = "selfalign_" + re.sub(r"\W", "_", r.name)
    tasks = {}
    for name, part in zip(("dev", "test"), halves, strict=True):
        items = mc_items(part[: ev.domain_size], seed=r.ablate.seed)
        tasks[name] = write_task(items, folder, f"{stem}_{name}").stem
    if ev.knowledge:
        for name, items in knowledge_parts(ev.knowledge, ev.split_seed, ev.test_fraction).items():
            tasks[name] = write_task(items, folder, f"{stem}_{name}").stem
    return tasks


def knowledge_parts(path: str, seed: int, test_fraction: float) -> dict[str, list[dict]]:
    """The knowledge set as four MC parts: {covered_dev, uncovered_dev, covered_test,
    uncovered_test} (split by item id as the QA set is); a malformed item is an error naming
    its file and line."""
    from trainers import knowledge_set as ks
    from trainers.heldout import split

    try:
        rows = ks.read_jsonl(Path(path))
    except (OSError, ks.KnowledgeSetError) as e:
        raise SelfAlignError(f"train.eval.knowledge: {e}") from None
    for no, item in rows:
        if (bad := ks.shape_problem(item)) or "choices" not in item:
            raise SelfAlignError(f"{path}:{no}: {bad or 'an item needs choices and gold'}")
    items = [item for _, item in rows]
    out = {}
    for half, part in zip(("dev", "test"), split(items, seed, test_fraction, key=lambda x: x["id"]),
                          strict=True):  # fmt: skip
        for covered in (True, False):
            name = f"{'covered' if covered else 'uncovered'}_{half}"
            if chosen := ks.split_items(part, covered):
                out[name] = chosen
    return out


def expand(
    variants: list[str], stages_run: list[str], dropping: list[str] | None = None
) -> list[str]:
    """'recipe-minus-all' -> one recipe-minus-<stage> per judged/selection stage that ran (and,
    when `dropping` is given, dropped a record or rewrites answers: leaving out a stage that
    changed nothing trains the recipe's data again); a minus variant of a stage the run does not
    have is an error."""
    out: list[str] = []
    for name in variants:
        if name == "recipe-minus-all":
            rewrote = [s for s in stages_run if s in data.REWRITES]
            pool = stages_run if dropping is None else [*dropping, *rewrote]
            out += [f"{MINUS}{s}" for s in MINUS_STAGES if s in pool]
        elif name == MINUS_JUDGES and not set(stages_run) & set(JUDGE_STAGE_NAMES):
            raise SelfAlignError(f"ablate: variant {name}: the run has no judge stage")
        elif name == SELECT_RANDOM and "select" not in stages_run:
            raise SelfAlignError(f"ablate: variant {name}: the run has no stage 'select'")
        elif (
            name.startswith(MINUS) and name != MINUS_JUDGES and name[len(MINUS) :] not in stages_run
        ):
            raise SelfAlignError(
                f"ablate: variant {name}: the run has no stage '{name.removeprefix(MINUS)}'"
            )
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _chat_record(messages: list[dict[str, str]]) -> Record:
    """instruction = the user turn, output = the assistant turn."""
    return Record(messages[0]["content"], output=messages[-1]["content"])


def _record(row: dict[str, Any]) -> Record:
    """A record from an export row; a row with only `messages` (a hand-made train.jsonl) gives
    instruction = its user turn, output = its assistant turn."""
    return Record.from_dict(row) if "instruction" in row else _chat_record(row["messages"])


def curated_records(run: Path) -> list[Record]:
    path = run / "export" / "train.jsonl"
    if not path.is_file():
        raise SelfAlignError(f"{run}: no export/train.jsonl (run `selfalign run` first)")
    with path.open(encoding="utf-8") as f:
        return [_record(json.loads(line)) for line in f if line.strip()]


def variant_records(r: Recipe, run: Path, variants: list[str]) -> dict[str, list[Record]]:
    """Each variant's records before decontamination and budgeting."""
    curated = curated_records(run) if needs_run(variants) else []
    out: dict[str, list[Record]] = {}
    for name in variants:
        if name == "corpus-only":
            corpus = ingest(r.corpus)
            out[name] = data.corpus_rows([(p.id, p.text) for p in corpus.passages])
        elif name == "random":
            out[name] = data.random_rows(run, len(curated), r.ablate.seed)
        elif name.startswith(RANDOM_WITHOUT):
            gone = name.removeprefix(RANDOM_WITHOUT)
            out[name] = data.random_rows(run, len(curated), r.ablate.seed, without=gone)
        elif name == "recipe":
            out[name] = curated
        elif name.startswith(ORIGIN):
            out[name] = data.origin_rows(run, curated, name.removeprefix(ORIGIN))
        elif name.startswith(WITHOUT):
            gone = name.removeprefix(WITHOUT)
            out[name] = [r for r in curated if origin_of(r) != gone]
        elif name.startswith(PLUS):
            extra = [json.loads(line) for line in extra_rows(run, name.removeprefix(PLUS))]
            out[name] = curated + [_chat_record(row["messages"]) for row in extra]
        elif name == SELECT_RANDOM:
            out[name] = data.select_random_rows(run, r.ablate.seed)
        elif name == MINUS_JUDGES:
            out[name] = data.minus_rows(run, curated, *judge_stages_of(run))
        else:
            out[name] = data.minus_rows(run, curated, name.removeprefix(MINUS))
    return out


def judge_stages_of(run: Path) -> list[str]:
    """The judge stages (flows/stages/registry.py) the run has, in its order."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return [s["stage"] for s in manifest["stages"] if s["stage"] in JUDGE_STAGE_NAMES]


def token_lengths(model_path: str, records: list[Record], max_length: int) -> list[int]:
    """Tokens the trainer sees per record (prompt + answer under the chat template, capped)."""
    from transformers import AutoTokenizer

    from trainers.evaluate import encode_example

    tok = AutoTokenizer.from_pretrained(model_path)
    lengths = (len(encode_example(tok, user_message(rec), rec.output)[0]) for rec in records)
    return [min(n, max_length) for n in lengths]


def train_variant(r: Recipe, run: Path, base, name: str, rows: list[Record]) -> dict[str, Any]:
    """Write the variant's rows and train one LoRA on them (cached by content)."""
    folder = run / "ablation" / name
    lines = [export_row(rec) for rec in rows]
    order = r.train.order
    if r.train.replay:  # every variant gets the same share of general rows
        lines = training_rows(lines, 1, r.train.replay, r.train.replay_set, r.ablate.seed, order)
    elif order == "qa_first":  # across the budget's passes: every QA row, then the documents
        lines = qa_first(lines)
    write_jsonl_atomic(folder / "train.jsonl", lines)
    cfg = r.train.model_dump()
    # the rows already repeat to the budget
    cfg["sft"] = {**order_fields(order), **cfg["sft"], "num_train_epochs": 1}
    key = content_key("ablate-sft", base.model_id, file_digest(folder / "train.jsonl"), cfg,
                      code_version(TRAIN_CODE))  # fmt: skip
    return cached(sft_task, run / "cache", folder / "model", key=key, model_path=base.path,
                  data=str(folder / "train.jsonl"), out=str(folder / "model"), cfg=cfg)  # fmt: skip


def measure(r: Recipe, run: Path, ref, task_dir: Path, tasks: dict[str, str]) -> dict[str, Any]:
    # no greedy answers: the table reports losses and MC accuracy, and 40 generations per model
    # cost more than the rest of its evaluation on CPU
    eval_cfg = {**r.train.eval.model_dump(), "generate_size": 0}
    files = [file_digest(Path(p)) for p in (r.train.eval.domain, r.train.eval.general) if p]
    files += [file_digest(task_dir / f"{name}.jsonl") for name in tasks.values()]
    key = content_key("ablate-eval", ref.model_id, eval_cfg, files, tasks,
                      code_version(EVAL_CODE + MC_CODE))  # fmt: skip
    return cached(evaluate_variant, run / "cache", None, key=key, model_path=ref.path,
                  eval_cfg=eval_cfg, task_dir=str(task_dir), tasks=tasks)  # fmt: skip


def decontaminated(r: Recipe, sets: dict[str, list[Record]]) -> tuple[dict, dict[str, int]]:
    """Every variant's records with held-out overlaps removed, and how many each lost."""
    sources = heldout_sources(r)
    knowledge = r.train.eval.knowledge
    index = (
        heldout_index(sources, r.decontaminate.n, knowledge) if sources else HeldoutIndex.build([])
    )
    out, dropped = {}, {}
    for name, records in sets.items():
        kept, out_ = decontaminate(records, index)
        out[name], dropped[name] = kept, len(out_)
    return out, dropped


def ablation_run(r: Recipe, run_dir: str | None) -> Path:
    """The run the variants take their data from: `run_dir`, else the recipe's own run."""
    from flows.pipeline import curate

    if run_dir:
        return Path(run_dir).resolve()
    if needs_run(r.ablate.variants):
        return curate(r)  # cached: a finished run is not generated again
    return (Path(r.runs_dir) / r.name).resolve()


def run_variants(r: Recipe, run: Path) -> list[str]:
    """The recipe's variants, recipe-minus-all expanded over the stages the run has."""
    manifest = run / "manifest.json"
    stages = json.loads(manifest.read_text())["stages"] if manifest.is_file() else []
    return expand(
        r.ablate.variants,
        [s["stage"] for s in stages],
        [s["stage"] for s in stages if s["dropped"]],
    )


def default_budget(
    r: Recipe, run: Path, base_path: str, max_length: int, lengths: dict[str, list[int]]
) -> int:
    """The curated export's tokens as the recipe variant trains them (decontaminated, facts rows
    `train.exposures` times) x `ablate.epochs`, also when the recipe variant is not asked, so
    that variants trained in separate runs get the same budget; a run without an export: the
    first variant's tokens."""
    reference = lengths.get("recipe")
    if reference is None and (run / "export" / "train.jsonl").is_file():
        kept, _ = decontaminated(r, {"recipe": curated_records(run)})
        recipe = with_exposures(kept["recipe"], r.train.exposures)
        reference = token_lengths(base_path, recipe, max_length)
    if reference is None:
        reference = next(iter(lengths.values()), [])
    return max(1, round(sum(reference) * r.ablate.epochs))


def train_budgeted(
    r: Recipe, run: Path, base, name: str, records: list[Record], lengths: list[int],
    budget: int, lost: int,
) -> dict[str, Any]:  # fmt: skip
    """Train one variant on its rows repeated to the token budget; its ablation.json entry."""
    order = data.budget_rows(lengths, budget, r.ablate.seed)
    rows = [records[i] for i in order]
    get_run_logger().info("ablate %s: %d distinct rows, %d rows in the budget of %d tokens",
                          name, len(records), len(rows), budget)  # fmt: skip
    trained = train_variant(r, run, base, name, rows)
    return {
        "model": trained["merged"], "distinct_rows": len(records), "rows": len(rows),
        "tokens": sum(lengths[i] for i in order), "decontaminated": lost,
        "steps": trained["steps"], "train_seconds": trained["seconds"],
        "first_loss": trained["first_loss"], "last_loss": trained["last_loss"],
    }  # fmt: skip


def measure_variants(
    r: Recipe, run: Path, base, variants: dict[str, Any], task_dir: Path, tasks: dict[str, str]
) -> dict[str, Any]:
    """Measure every model, base included; adds each variant's metrics vs base to `variants`
    and returns the reports by variant."""
    reports = {}
    for name, v in variants.items():
        ref = base if name == "base" else resolve_model(v["model"])
        reports[name] = measure(r, run, ref, task_dir, tasks)
        get_run_logger().info("ablate %s measured", name)
    for name, v in variants.items():
        v["metrics"] = report.compare(reports["base"], reports[name], seed=r.ablate.seed)
        v["eval_seconds"] = reports[name]["eval"]["seconds"]
    return reports


@flow(name="ablate")
def ablate(
    recipe: dict[str, Any], overrides: list[str] | None = None, run_dir: str | None = None
) -> dict[str, Any]:
    """Train and measure every variant of the recipe; returns ablation.json's content."""
    r = with_overrides(recipe, overrides or [])
    if not r.train.eval.domain:
        raise SelfAlignError("ablate needs train.eval.domain (the held-out domain QA)")
    run = ablation_run(r, run_dir)
    release_inference()
    variants = run_variants(r, run)
    base = resolve_model(r.train.model or r.model.name)
    max_length = int(r.train.sft.get("max_length", 512))
    sets, lost = decontaminated(r, variant_records(r, run, variants))
    sets = {name: with_exposures(recs, r.train.exposures) for name, recs in sets.items()}
    lengths = {name: token_lengths(base.path, recs, max_length) for name, recs in sets.items()}
    budget = r.ablate.token_budget or default_budget(r, run, base.path, max_length, lengths)
    task_dir = run / "ablation" / "tasks"
    tasks = mc_tasks(r, task_dir) if r.ablate.mc else {}
    result_variants: dict[str, Any] = {"base": {"model": base.path, "rows": 0, "tokens": 0}}
    for name in variants:
        result_variants[name] = train_budgeted(
            r, run, base, name, sets[name], lengths[name], budget, lost[name]
        )
    reports = measure_variants(r, run, base, result_variants, task_dir, tasks)
    result = {
        "recipe": r.name,
        "run": str(run),
        "base_model": base.path,
        "token_budget": budget,
        "split": split_record(reports["base"]["eval"], r.train.eval.model_dump()),
        "mc_tasks": {split: str(task_dir / f"{name}.yaml") for split, name in tasks.items()},
        "knowledge_n": {
            split: reports["base"]["mc"][split]["n"] for split in tasks if "covered" in split
        },
        "variants": result_variants,
        "recipe_vs": report.versus(reports, seed=r.ablate.seed),
    }
    report.write_outputs(run, result, reports)
    return result
