"""Pure glue between the pipeline's prompt builders, the model's replies and records.

No model calls and no I/O: the flow calls the model (in cached batches) between these functions,
so every step here is tested with plain strings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from filters.base import split
from flows.stages.base import derive_seed
from generators.corpus import Passage
from generators.llm import Conversation
from generators.records import Record
from generators.respond import build_grounded_prompt, response_problem
from generators.seeds import Seed
from generators.self_instruct import (
    build_classification_prompt,
    build_instance_prompt,
    build_instruction_prompt,
    parse_instance,
    parse_instruction_list,
    parse_yes_no,
)


@lru_cache(maxsize=4)
def passage_order(seed: int, n: int) -> tuple[int, ...]:
    """The seeded shuffle prompts take passages from, round-robin (once per run, not per prompt)."""
    return tuple(random.Random(derive_seed(seed, "passages")).sample(range(n), n))


@dataclass(frozen=True)
class Prompt:
    """One instruction-generation prompt and what it was built from (for lineage)."""

    index: int
    conversation: Conversation
    first_number: int
    seed_ids: tuple[str, ...]
    machine_ids: tuple[str, ...]
    passage_ids: tuple[str, ...]


def generation_prompt(
    index: int, cfg, seed: int, seeds: list[Seed], pool: list[Record], passages: list[Passage]
) -> Prompt:
    """Prompt `index`: sampled seed + machine demos, and passages taken round-robin."""
    rng = random.Random(derive_seed(seed, "demos", index))
    demo_seeds = rng.sample(seeds, min(cfg.demos_seed, len(seeds)))
    demo_machine = rng.sample(pool, min(cfg.demos_machine, len(pool)))
    demos = [(s.id, s.instruction) for s in demo_seeds] + [
        (r.id, r.instruction) for r in demo_machine
    ]
    rng.shuffle(demos)
    order = passage_order(seed, len(passages))
    start = index * cfg.passages_per_prompt
    chosen = [passages[order[(start + t) % len(passages)]] for t in range(cfg.passages_per_prompt)]
    conversation = build_instruction_prompt(
        [text for _, text in demos], [(p.id, p.text) for p in chosen], cfg.new_per_prompt
    )
    return Prompt(
        index=index,
        conversation=conversation,
        first_number=len(demos) + 1,
        seed_ids=tuple(s.id for s in demo_seeds),
        machine_ids=tuple(r.id for r in demo_machine),
        passage_ids=tuple(p.id for p in chosen),
    )


def instructions_from_replies(
    prompts: list[Prompt], replies: list[list[str]], lineage: dict[str, Any]
) -> tuple[list[Record], list[Record]]:
    """Parse each reply's numbered list into records; a reply with no items is a dropped record."""
    kept: list[Record] = []
    dropped: list[Record] = []
    for prompt, (reply,) in zip(prompts, replies, strict=True):
        meta = {
            **lineage,
            "origin": "self_instruct",
            "prompt_index": prompt.index,
            "demo_seed_ids": list(prompt.seed_ids),
            "demo_machine_ids": list(prompt.machine_ids),
            "generation_passages": list(prompt.passage_ids),
        }
        items = parse_instruction_list(reply, prompt.first_number)
        if not items:
            stub = Record(instruction="", meta={**meta, "reply": reply}, id=f"reply-{prompt.index}")
            dropped.append(stub.drop("generate", "reply_unparseable"))
        for text, truncated in items:
            kept.append(Record(instruction=text, meta={**meta, "truncated": truncated}))
    return kept, dropped


def classification_prompts(records: list[Record]) -> list[Conversation]:
    return [build_classification_prompt(r.instruction) for r in records]


def apply_classification(records: list[Record], replies: list[list[str]]) -> list[Record]:
    """Mark each record's task type; an unclear answer counts as 'not classification'."""
    out = []
    for record, (reply,) in zip(records, replies, strict=True):
        verdict = parse_yes_no(reply)
        out.append(
            record.with_meta(
                is_classification=bool(verdict), classify_reply_clear=verdict is not None
            )
        )
    return out


def attach_passages(records: list[Record], hits: list[list[tuple[str, float]]]) -> list[Record]:
    """Record the retrieved passages (ids in `passages`, scores in meta)."""
    return [
        replace(
            r,
            passages=tuple(pid for pid, _ in found),
            meta={**r.meta, "passage_scores": [round(float(s), 4) for _, s in found]},
        )
        for r, found in zip(records, hits, strict=True)
    ]


def attach_source_passages(
    records: list[Record], hits: list[list[tuple[str, float]]], min_score: float
) -> list[Record]:
    """The passage each task was written from first, then retrieved ones scoring >= `min_score`
    (their scores in `meta.passage_scores`, the source's id in `meta.source_passage`)."""
    out = []
    for r, found in zip(records, hits, strict=True):
        source = list(r.meta.get("generation_passages", []))[:1]
        extra = [(pid, s) for pid, s in found if s >= min_score and pid not in source]
        out.append(
            replace(
                r,
                passages=tuple(source + [pid for pid, _ in extra]),
                meta={
                    **r.meta,
                    "source_passage": source[0] if source else None,
                    "passage_scores": [round(float(s), 4) for _, s in extra],
                },
            )
        )
    return out


def instance_prompts(records: list[Record], texts: dict[str, str]) -> list[Conversation]:
    return [
        build_instance_prompt(
            r.instruction, r.meta["is_classification"], [(p, texts[p]) for p in r.passages]
        )
        for r in records
    ]


def apply_instances(
    records: list[Record], replies: list[list[str]]
) -> tuple[list[Record], list[Record]]:
    """Fill `input` from each instance reply (draft output kept in meta); drop unparseable ones.

    The id is a hash of (instruction, input), so it changes here; `instruction_id` links back.
    """
    kept: list[Record] = []
    dropped: list[Record] = []
    for record, (reply,) in zip(records, replies, strict=True):
        parsed = parse_instance(reply, record.meta["is_classification"])
        if isinstance(parsed, str):
            dropped.append(record.with_meta(instance_reply=reply).drop("instances", parsed))
            continue
        meta = {**record.meta, "instruction_id": record.id, "instance_output": parsed[1]}
        kept.append(
            Record(
                instruction=record.instruction, input=parsed[0], passages=record.passages, meta=meta
            )
        )
    return kept, dropped


def response_prompts(
    records: list[Record], texts: dict[str, str], from_passage: bool = False
) -> list[Conversation]:
    return [
        build_grounded_prompt(
            r.instruction, r.input, [(p, texts[p]) for p in r.passages], from_passage
        )
        for r in records
    ]


def apply_responses(
    records: list[Record], replies: list[list[str]]
) -> tuple[list[Record], list[Record]]:
    """Set each record's output to its grounded answer; empty or echoed answers are dropped."""
    answered = [
        replace(r, output=reply.strip()) for r, (reply,) in zip(records, replies, strict=True)
    ]
    return split(answered, "respond", lambda r: response_problem(r.output))
