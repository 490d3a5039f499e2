"""What a training run trains on, beyond the export's rows: fact exposures and general replay.

    exposures   each `facts` row (meta.origin == "facts") appears this many times per epoch:
                facts are learned from repeated, varied restatements (Physics of Language
                Models 3.1), while the other rows keep their single pass
    replay      general instruction rows (a Self-Instruct-format file of human-written tasks)
                added at `replay` x the number of domain rows, so the model keeps its general
                answers while it learns the domain (the general-loss guard)
    order       shuffled (seeded), or qa_first: every question-answer row, then the facts rows
                that read as text (statement, notes, relation, passage), and the trainer keeps
                that order (pre-instruction-tuning, Jiang et al. 2024: QA before documents)

Both act on export rows (dicts with `messages`), seeded, so the same recipe and export always
train on the same lines. Not handled: replay from a chat-format file; weighting instead of
repetition.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, TypeVar

from generators.errors import SelfAlignError

FACTS = "facts"
# facts forms that read as text, not as a question and its answer
DOCUMENT_FORMS = ("statement", "notes", "relation", "passage")
T = TypeVar("T")


def _meta(row: Any) -> dict[str, Any]:
    """The meta of an export row (a dict) or a Record."""
    return (row.get("meta") if isinstance(row, dict) else row.meta) or {}


def is_fact(row: Any) -> bool:
    """Whether an export row (a dict) or a Record comes from the facts origin."""
    return _meta(row).get("origin") == FACTS


def is_document(row: Any) -> bool:
    """Whether a row is a facts row that reads as a document (statement, notes, relation,
    passage), not as a question with its answer."""
    return is_fact(row) and _meta(row).get("fact_form") in DOCUMENT_FORMS


def qa_first(rows: list[T]) -> list[T]:
    """Question-answer rows, then document rows, each in the order given:
    [doc1, qa1, doc2, qa2] -> [qa1, qa2, doc1, doc2]."""
    return [r for r in rows if not is_document(r)] + [r for r in rows if is_document(r)]


def order_fields(order: str) -> dict[str, Any]:
    """The SFT fields an order needs: qa_first's rows are trained in the order written (the
    trainer would otherwise shuffle them)."""
    return {"train_sampling_strategy": "sequential"} if order == "qa_first" else {}


def with_exposures(rows: list[T], exposures: int) -> list[T]:
    """Fact rows (dicts or Records) repeated `exposures` times (each copy right after the last),
    others once: ([a, F], 3) -> [a, F, F, F]."""
    out: list[T] = []
    for row in rows:
        out += [row] * (exposures if is_fact(row) else 1)
    return out


def replay_rows(path: str, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` chat rows from a Self-Instruct task file (instruction [+ input] -> output), a
    seeded choice, cycling through the file when it has fewer tasks than asked."""
    if count <= 0:
        return []
    pool = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SelfAlignError(f"train.replay_set: {path}: {e.strerror}") from None
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
            instance = task["instances"][0]
            prompt = task["instruction"].strip()
            if instance.get("input", "").strip():
                prompt = f"{prompt}\n\n{instance['input'].strip()}"
            answer = instance["output"].strip()
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            raise SelfAlignError(
                f"{path}:{no}: not a Self-Instruct task (instruction, instances[0].output)"
            ) from None
        if answer:
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ]
            pool.append({"messages": messages, "meta": {"origin": "replay", "replay_line": no}})
    if not pool:
        raise SelfAlignError(f"train.replay_set: {path}: no tasks with an answer")
    rng = random.Random(f"replay:{seed}")
    out: list[dict[str, Any]] = []
    while len(out) < count:
        batch = pool[:]
        rng.shuffle(batch)
        out += batch[: count - len(out)]
    return out


def training_rows(
    rows: list[dict[str, Any]], exposures: int, replay: float, replay_set: str | None, seed: int,
    order: str = "shuffled",
) -> list[dict[str, Any]]:  # fmt: skip
    """The export's rows with fact exposures, then the replay rows, shuffled together (seeded) so
    no stretch of training is all replay or all repeats; with order qa_first, the shuffled
    question-answer rows (replay included) come before the shuffled document rows."""
    domain = with_exposures(rows, exposures)
    extra = replay_rows(replay_set, round(replay * len(domain)), seed) if replay_set else []
    out = domain + extra
    if exposures > 1 or extra or order == "qa_first":
        random.Random(f"train-rows:{seed}").shuffle(out)
    return qa_first(out) if order == "qa_first" else out
