"""Export a curated set: chat `messages` for TRL's SFT trainer, plus flat columns and lineage.

    export/train.jsonl     one object per line: id, messages, instruction, input, output,
                           passages, meta
    export/train.parquet   the same columns (meta as a JSON string)
    export/hf/             datasets.save_to_disk of the Parquet table
    export/rejected.jsonl  every dropped record of every stage, with stage, reason and lineage
    export/dpo.jsonl       preference pairs (prompt/chosen/rejected) when MultiCritique ran
    export/critique_sft.jsonl, export/self_feedback.jsonl
                           critique targets (MultiCritique) and SELF's meta-skill tuples
    export/README.md       the data card

The whole folder is written under a temp name and swapped in, so a crash leaves the old export or
none, never half of one. `alpaca` (a JSON list of instruction/input/output) exists for re-export.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from filters.judge_io import user_message
from flows.stages.base import Datasets  # {name: rows}, each written to export/<name>.jsonl
from generators.errors import SelfAlignError
from generators.io import atomic_path, write_jsonl_atomic, write_text_atomic
from generators.records import Record

FORMATS = ("jsonl", "parquet", "hf", "alpaca")
CARD_EXAMPLES = 2  # per origin, picked around the origin's median support (card_examples)
CARD_HELDOUT_IDS = 5  # held-out ids with the most contaminated records named in the card


def export_row(record: Record) -> dict[str, Any]:
    messages = [
        {"role": "user", "content": user_message(record)},
        {"role": "assistant", "content": record.output},
    ]
    return {"messages": messages, **record.to_dict()}


def _parquet_table(records: list[Record]):
    import pyarrow as pa

    rows = [export_row(r) for r in records]
    for row in rows:
        row["meta"] = json.dumps(row["meta"], ensure_ascii=False, sort_keys=True)
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema(
        [
            ("messages", pa.list_(message)),
            ("id", pa.string()),
            ("instruction", pa.string()),
            ("input", pa.string()),
            ("output", pa.string()),
            ("passages", pa.list_(pa.string())),
            ("meta", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def write_format(records: list[Record], fmt: str, out: Path) -> Path:
    """Write one format to `out` (a file; a folder for `hf`) atomically; returns `out`."""
    if fmt == "jsonl":
        write_jsonl_atomic(out, (export_row(r) for r in records))
    elif fmt == "alpaca":
        rows = [
            {"instruction": r.instruction, "input": r.input, "output": r.output} for r in records
        ]
        write_text_atomic(out, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with atomic_path(out) as tmp:
            pq.write_table(_parquet_table(records), tmp)
    elif fmt == "hf":
        from datasets import Dataset

        tmp = out.with_name(f".{out.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            Dataset(_parquet_table(records)).save_to_disk(str(tmp))
            _swap_dir(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after a swap; half-written after a crash
    else:
        raise SelfAlignError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return out


def _swap_dir(tmp: Path, target: Path) -> None:
    """Replace folder `target` with `tmp` (old one moved aside first, then removed).

    A failed second rename puts the old folder back; a process killed between the two renames
    leaves no `target` (the old one is in `.<name>.old`), never a mix of old and new files.
    """
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def rejected_row(record: Record) -> dict[str, Any]:
    """A dropped record with its stage and reason up front: {"stage", "reason", "id", ...}."""
    return {
        "stage": record.meta.get("dropped_by", ""),
        "reason": record.meta.get("drop_reason", ""),
        **record.to_dict(),
    }


def write_export(
    run_dir: Path,
    records: list[Record],
    card: str,
    rejected: list[Record] = (),
    datasets: Datasets | None = None,
) -> Path:
    """The run's export/ folder: train.*, hf/, rejected.jsonl, extra datasets, README.md."""
    target = run_dir / "export"
    tmp = run_dir / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_format(records, "jsonl", tmp / "train.jsonl")
        write_format(records, "parquet", tmp / "train.parquet")
        write_format(records, "hf", tmp / "hf")
        write_jsonl_atomic(tmp / "rejected.jsonl", (rejected_row(r) for r in rejected))
        for name, rows in (datasets or {}).items():
            write_jsonl_atomic(tmp / f"{name}.jsonl", rows)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        _swap_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the swap; half-written after a crash
    return target


def biggest_drop(stages: list[dict[str, Any]]) -> str:
    """'<stage> dropped N records, most often <reason> (M)' for the stage that dropped the most;
    '' when no stage dropped any."""
    worst = max(stages, key=lambda s: s["dropped"], default=None)
    if worst is None or not worst["dropped"]:
        return ""
    reason, count = max(worst["reasons"].items(), key=lambda kv: kv[1], default=("-", 0))
    return f"{worst['stage']} dropped {worst['dropped']} records, most often {reason} ({count})"


def empty_export_reason(stages: list[dict[str, Any]]) -> str:
    """Why nothing was exported: the first stage that kept no record, and the stage that
    dropped the most ('reading kept 0 of 2; corpus dropped 1 records, most often ...')."""
    parts = [f"{s['stage']} kept 0 of {s['in']}" for s in stages if not s["kept"]][:1]
    parts.append(biggest_drop(stages))
    return "; ".join(p for p in parts if p) or "no stage produced a record"


def data_card(manifest: dict[str, Any], records: list[Record]) -> str:
    """Markdown data card: recipe, models, counts per stage and reason, examples."""
    lines = [
        f"# {manifest['name']}: self-generated instruction data",
        "",
        f"Made by selfalign {manifest['versions']['selfalign']} on {manifest['finished_at']}.",
        f"{len(records)} records. Generator: `{manifest['model_id']}` ({manifest['backend']}); "
        f"embedder: `{manifest['embedder_id']}`.",
        "",
    ]
    if not records:
        lines += [f"**The export is empty:** {empty_export_reason(manifest['stages'])}.", ""]
    lines += [
        "## Funnel",
        "",
        "| stage | in | kept | dropped | reasons | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for stage in manifest["stages"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stage["reasons"].items())) or "-"
        counts = " | ".join(str(stage[k]) for k in ("in", "kept", "dropped"))
        lines.append(f"| {stage['stage']} | {counts} | {reasons} | {stage.get('seconds', '-')} |")
    lines += [
        "",
        "`in` of *generate* counts prompts; each reply's numbered list becomes its kept tasks,",
        "and a reply with no list is a dropped record; `in` of *reading* counts passages.",
        "Rejected records of every stage, with their stage, reason and lineage, are in",
        "`rejected.jsonl` (and in the run's `stages/NN-<stage>/rejected.parquet`). Seconds are",
        "this process's wall time per stage (a resumed or cached run counts only what it redid).",
        "",
    ]
    lines += _judges_section(manifest, records)
    lines += _origins_section(manifest)
    lines += _decontamination_section(manifest)
    lines += [
        "## Examples",
        "",
        f"{CARD_EXAMPLES} records per origin, those whose support is nearest the origin's",
        "median (representative: not the best, not the worst).",
        "",
    ]
    for r in card_examples(records, CARD_EXAMPLES):
        origin = r.meta.get("origin", "self_instruct")
        support = r.meta.get("support")
        lines += [f"*{origin}*" + (f", support {support}" if support is not None else ""), ""]
        lines += [f"**Instruction:** {r.instruction}", ""]
        if r.input:
            lines += [f"**Input:** {r.input}", ""]
        lines += [
            f"**Output:** {r.output.strip()}",
            "",
            f"Passages: {', '.join(r.passages) or '-'}",
            "",
        ]
    lines += ["## Recipe", "", "```yaml", manifest["recipe_yaml"].rstrip(), "```", ""]
    return "\n".join(lines)


def card_examples(records: list[Record], per_origin: int) -> list[Record]:
    """Up to `per_origin` records of each origin (in order of first appearance), those whose
    `meta.support` is nearest the origin's median support, ties to the earlier record; an origin
    with no support scores gives its first records. Returned in export order."""
    by_origin: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_origin.setdefault(r.meta.get("origin", "self_instruct"), []).append(i)
    chosen: list[int] = []
    for indices in by_origin.values():
        scored = [i for i in indices if isinstance(records[i].meta.get("support"), int | float)]
        if not scored:
            chosen += indices[:per_origin]
            continue
        values = sorted(records[i].meta["support"] for i in scored)
        median = values[(len(values) - 1) // 2]
        nearest = sorted(scored, key=lambda i: (abs(records[i].meta["support"] - median), i))
        chosen += nearest[:per_origin]
    return [records[i] for i in sorted(chosen)]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _judges_section(manifest: dict[str, Any], records: list[Record]) -> list[str]:
    """S3FT target split, judge calibration and the extra datasets, when those stages ran."""
    lines: list[str] = []
    sources = [r.meta["target_source"] for r in records if "target_source" in r.meta]
    if sources:
        split = {k: sources.count(k) for k in ("own", "paraphrase", "gold")}
        lines += [
            "## S3FT training targets",
            "",
            "| own | paraphrase | gold |",
            "|---|---|---|",
            f"| {split['own']} | {split['paraphrase']} | {split['gold']} |",
            "",
            "`own`: the model's own answer was judged equivalent to the gold and is the target;",
            "`paraphrase`: its paraphrase of the gold was; `gold`: neither, the gold is kept",
            "(per record in `meta.target_source`, details in `meta.s3ft`).",
            "",
        ]
    calibration = manifest.get("calibration") or {}
    if calibration.get("judges"):
        lines += [
            "## Judge calibration",
            "",
            f"Check set: `{calibration['check_set']}`, {calibration['pairs']} questions, each with",
            "its correct answer and one corrupted answer (numbers changed, claim negated, or",
            "another question's answer). Precision and recall are of the judge's *correct*",
            f"verdicts. A judge under agreement {calibration['min_agreement']} is flagged `low`",
            "with what the recipe did (`calibration.on_low`): warn and use it, skip it (its stage",
            "does not filter), or refuse to run. The scorer is what gave the verdicts: `llm`, the",
            "model's own; `f1`, `cosine`, `passage_gain`, `ifd`, a scorer that asks the model",
            "for none (flows/stages/judges/scored.py). Where several were measured, the judge ran",
            "with the one that agreed best; the others are listed as `not chosen`.",
            "",
            "| judge | scorer | agreement | precision | recall | unparseable | n | status |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, m in calibration["judges"].items():
            chosen = m.get("scorer", "llm")
            measured = m.get("candidates") or {chosen: m}
            for scorer, c in sorted(measured.items(), key=lambda kv: kv[0] != chosen):
                row = [c["agreement"], c["precision"], c["recall"], c["unparseable"], c["n"]]
                status = m.get("action", "used") if scorer == chosen else "not chosen"
                cells = " | ".join(map(_fmt, row))
                lines.append(f"| {name} | {scorer} | {cells} | {status} |")
        lines.append("")
    datasets = manifest.get("datasets") or {}
    if datasets:
        lines += ["## Other datasets in this export", ""]
        lines += [f"- `{name}.jsonl`: {n} rows" for name, n in sorted(datasets.items())]
        lines.append("")
    return lines


def _origins_section(manifest: dict[str, Any]) -> list[str]:
    """Records by origin and the support of their answers (flows/stages/grounding.py)."""
    support = manifest.get("support") or {}
    if not support:
        return []
    exported = manifest.get("origins") or {}
    lines = [
        "## Origins and support",
        "",
        "Support: the share of an answer's content words and numbers found in its passages",
        "(filters/support.py), over the records the grounding stage scored.",
        "",
        "| origin | exported | scored | support mean | p25 | median | p75 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in support.items():
        cells = [d.get(k, "-") for k in ("n", "mean", "p25", "median", "p75")]
        lines.append(f"| {name} | {exported.get(name, 0)} | " + " | ".join(map(str, cells)) + " |")
    return [*lines, ""]


def _decontamination_section(manifest: dict[str, Any]) -> list[str]:
    """N-gram overlap with the held-out sets (flows/stages/decontaminate.py), when the stage ran."""
    d = manifest.get("decontamination") or {}
    if not d:
        return []
    top = list(d["by_heldout"].items())[:CARD_HELDOUT_IDS]
    return [
        "## Decontamination",
        "",
        f"{d['checked']} records checked for {d['n']}-gram overlap (lowercased, punctuation",
        f"removed) with {d['heldout_texts']} held-out questions and answers in "
        + ", ".join(f"`{s}`" for s in d["sources"])
        + f"; {d['dropped']} dropped (reason `contaminated_<held-out id>`).",
        "",
        "Most often matched: " + (", ".join(f"{k} ({v})" for k, v in top) or "-") + ".",
        "",
    ]
