"""Prefect artifacts of a run: what the dashboard shows beside the flow run's graph and logs.

    <key>-funnel            table: stage, in, kept, dropped, reason, count (a row per drop reason)
    <key>-funnel-plot       markdown: records kept per stage as a bar chart (text, plus a PNG
                            when Pillow is installed; flows/ops/funnel_plot.py)
    <key>-kept-samples      table: the first curated records
    <key>-rejected-samples  table: dropped records, taken in turn from each stage, with the reason
    <key>-data-card         markdown: the export's README.md
    <key>-calibration       table: judge agreement on the check set, when judges were calibrated
    <key>-failed-requests   table: LLM requests that failed, when any did
    <key>-training          table: before/after metrics of the fine-tune flow; its decision in
                            the description

<key> is the recipe name in Prefect's key alphabet (`Biomed demo` -> `biomed-demo`), plus
`-round-N` for rounds after the first. The same key in later runs adds a version: the dashboard's
artifact page lists them all. The builders are pure; `publish_run` / `publish_training` create the
artifacts only inside a flow run, and a refusal by the API is a logged warning, never a failed run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.ops.funnel_plot import plot_markdown
from flows.rundir import FAILED_FILE  # written by flows/run.py: one failed request a line
from generators.records import Record

SAMPLE_ROWS = 5  # records per sample table: enough to eyeball, small enough to read
FAILED_ROWS = 50  # failed requests listed (all are in failed_requests.jsonl)
TEXT_MAX = 200  # characters of a text cell
TRAIN_METRICS = ("domain_loss", "test_loss", "general_loss", "domain_token_f1")


def artifact_key(name: str, round: int, kind: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes: ('Biomed_Demo', 1, 'funnel') ->
    'biomed-demo-funnel', ('biomed-loop', 2, 'funnel') -> 'biomed-loop-round-2-funnel'."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "run"
    if round > 1 and not base.endswith(f"round-{round}"):
        base += f"-round-{round}"
    return f"{base}-{kind}"


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """One line of at most `limit` characters: 'a  b\\nc' -> 'a b c'; longer text ends in '…'."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def funnel_rows(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per stage and drop reason (most frequent first); a stage with no drops has one
    row with an empty reason and count 0."""
    rows = []
    for s in stages:
        reasons = sorted(s["reasons"].items(), key=lambda kv: (-kv[1], kv[0])) or [("", 0)]
        for reason, count in reasons:
            row = {k: s[k] for k in ("stage", "in", "kept", "dropped")}
            rows.append({**row, "reason": reason, "count": count})
    return rows


def kept_rows(records: list[Record], n: int = SAMPLE_ROWS) -> list[dict[str, str]]:
    """The first `n` curated records, text clipped, with origin and support (grounding)."""
    return [
        {
            "id": r.id,
            "origin": r.meta.get("origin", "self_instruct"),
            "support": _text(r.meta.get("support", "")),
            **_texts(r, ("instruction", "input", "output")),
        }
        for r in records[:n]
    ]


def _texts(record: Record, fields: tuple[str, ...]) -> dict[str, str]:
    return {f: clip(getattr(record, f)) for f in fields}


def rejected_rows(rejected: list[Record], n: int = SAMPLE_ROWS) -> list[dict[str, str]]:
    """Up to `n` dropped records taken in turn from each stage, so every stage shows a reason."""
    by_stage: dict[str, list[Record]] = {}
    for r in rejected:
        by_stage.setdefault(r.meta.get("dropped_by", ""), []).append(r)
    picked: list[Record] = []
    while len(picked) < n and any(by_stage.values()):
        for queue in by_stage.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return [
        {
            "stage": r.meta.get("dropped_by", ""),
            "reason": r.meta.get("drop_reason", ""),
            "id": r.id,
            **_texts(r, ("instruction", "output")),
        }
        for r in picked
    ]


def calibration_rows(calibration: dict[str, Any]) -> list[dict[str, Any]]:
    columns = ("agreement", "precision", "recall", "unparseable", "n")
    return [
        {
            "judge": name,
            "scorer": m.get("scorer", "llm"),
            **{k: m.get(k) for k in columns},
            "status": m.get("action", "used"),
        }
        for name, m in (calibration.get("judges") or {}).items()
    ]


def _change(before: Any, after: Any) -> float | None:
    numbers = all(isinstance(x, (int, float)) for x in (before, after))
    return round(after - before, 4) if numbers else None


def training_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out metrics before/after training, then each trainer's first/last training loss."""
    rows = [
        {"metric": k, "before": metrics["before"].get(k), "after": metrics["after"].get(k)}
        for k in TRAIN_METRICS
    ]
    for step in ("sft", "dpo"):
        if metrics.get(step):
            first, last = metrics[step].get("first_loss"), metrics[step].get("last_loss")
            rows.append({"metric": f"{step}_train_loss", "before": first, "after": last})
    return [{**row, "change": _change(row["before"], row["after"])} for row in rows]


def failed_rows(run_dir: Path, count: int, n: int = FAILED_ROWS) -> list[dict[str, Any]]:
    """The first `n` rows of failed_requests.jsonl, text clipped; a count alone without it."""
    path = run_dir / FAILED_FILE
    if not path.is_file():
        return [{"failed_requests": count, "details": f"no {FAILED_FILE} in {run_dir}"}]
    rows = []
    with open(path, encoding="utf-8") as f:
        for line, _ in zip(f, range(n), strict=False):
            row = json.loads(line)
            rows.append(
                {k: v if isinstance(v, (int, float)) else clip(_text(v)) for k, v in row.items()}
            )
    return rows


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def flow_run_id() -> str | None:
    """The id of the flow run this code runs in (None outside one): lineage for the manifest."""
    from prefect.runtime import flow_run

    return flow_run.id


def _logger() -> logging.Logger | logging.LoggerAdapter:
    from prefect import get_run_logger

    try:
        return get_run_logger()
    except Exception:  # no run context: the plain logger
        return logging.getLogger("selfalign")


Artifact = tuple[str, str, Any, str]  # (kind: "table" | "markdown", key, data, description)


def run_artifacts(
    manifest: dict[str, Any],
    records: list[Record],
    rejected: list[Record],
    card: str,
    run_dir: Path,
) -> list[Artifact]:
    """Funnel, plot, samples, data card, calibration and failed requests of a finished run."""
    name, round, stages = manifest["name"], manifest.get("round", 1), manifest["stages"]
    where = f"run folder `{run_dir}`"
    specs = [
        ("table", "funnel", funnel_rows(stages), "Records in/kept/dropped per stage and reason"),
        ("markdown", "funnel-plot", plot_markdown(stages), "Records kept per stage"),
        ("table", "kept-samples", kept_rows(records), f"Curated records (of {len(records)})"),
        (
            "table",
            "rejected-samples",
            rejected_rows(rejected),
            f"Dropped records with their stage and reason (of {len(rejected)})",
        ),
        ("markdown", "data-card", card, "The data card (export/README.md)"),
    ]
    calibration = calibration_rows(manifest.get("calibration") or {})
    if calibration:
        specs.append(("table", "calibration", calibration, "Judge agreement on the check set"))
    failed = manifest.get("failed_requests") or 0
    if failed:
        rows = failed_rows(run_dir, failed)
        specs.append(("table", "failed-requests", rows, f"{failed} failed LLM requests"))
    return [
        (kind, artifact_key(name, round, what), data, f"{text}; {where}")
        for kind, what, data, text in specs
    ]


def training_artifact(name: str, metrics: dict[str, Any]) -> Artifact:
    """The fine-tune flow's before/after metrics, with the promote decision as description."""
    round, model = metrics["round"], metrics["trained_model"]["path"]
    description = f"Round {round}: {metrics['decision']}. Trained model: `{model}`"
    return ("table", artifact_key(name, round, "training"), training_rows(metrics), description)


def publish(artifacts: list[Artifact]) -> list[str]:
    """Create the artifacts in the current flow run (none outside one); a refusal by the API is
    a warning, never an error. Returns the keys published."""
    if flow_run_id() is None:
        return []
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create = {"table": create_table_artifact, "markdown": create_markdown_artifact}
    published = []
    for kind, key, data, description in artifacts:
        try:
            create[kind](data, key=key, description=description)
            published.append(key)
        except Exception as e:  # the dashboard is optional, the run is not
            _logger().warning("could not publish the Prefect artifact %s: %s", key, e)
    return published


def publish_run(
    manifest: dict[str, Any],
    records: list[Record],
    rejected: list[Record],
    card: str,
    run_dir: Path,
) -> list[str]:
    """Publish a finished run's artifacts in its flow run; never raises."""
    return _build_and_publish(lambda: run_artifacts(manifest, records, rejected, card, run_dir))


def publish_training(name: str, metrics: dict[str, Any]) -> list[str]:
    """Publish the fine-tune flow's metrics table in its flow run; never raises."""
    return _build_and_publish(lambda: [training_artifact(name, metrics)])


def _build_and_publish(build: Callable[[], list[Artifact]]) -> list[str]:
    if flow_run_id() is None:
        return []
    try:
        artifacts = build()
    except Exception as e:  # a malformed manifest part must not fail a finished run
        _logger().warning("could not build the Prefect artifacts: %s", e)
        return []
    return publish(artifacts)
