"""The backtranslation origin (Humpback): the model writes the question each corpus span answers;
the span is the answer. Replies that hold no usable question, and questions asked twice, are
dropped with a reason (generators/backtranslate.py parses them)."""

from __future__ import annotations

import random

from pydantic import Field

from flows.stages.base import Origin, Outcome, Sources, Strict, Tools, derive_seed, log, one_step
from generators.backtranslate import build_backtranslation_prompt, parse_question, spans
from generators.llm import Sampling
from generators.records import Record

# The modules whose source keys the stage's cached LLM batches (see flows.tasks.code_version).
BACKTRANSLATE_CODE = ("generators.backtranslate", "generators.respond", "generators.reading")


class BacktranslateConfig(Strict):
    """Instruction backtranslation (Humpback): the model writes the question a corpus span
    answers; the span is the response (generators/backtranslate.py)."""

    sentences_per_span: int = Field(2, ge=1, le=8, description="sentences per response span")
    max_spans: int | None = Field(
        None, ge=1, description="spans used at most (a seeded choice); None: every span"
    )
    max_tokens: int = Field(48, ge=8, description="the question")
    temperature: float = Field(0.0, ge=0)
    topic_replies: bool = Field(
        False,
        description="take a reply that names the span's topic ('The text is about X.') as the "
        "instruction 'Explain X.' (small models mostly answer so) instead of dropping it",
    )


def backtranslate_records(tools: Tools, sources: Sources) -> Outcome:
    """One question per corpus span, asked of the model in cached batches; the span answers it."""
    r = tools.recipe
    cfg = r.backtranslate
    units = [
        (p.id, sid, text)
        for p in sources.passages
        for sid, text in spans(p, cfg.sentences_per_span)
    ]
    if cfg.max_spans is not None and len(units) > cfg.max_spans:
        rng = random.Random(derive_seed(r.seed, "backtranslate-spans"))
        units = [units[i] for i in sorted(rng.sample(range(len(units)), cfg.max_spans))]
    kept: list[Record] = []
    dropped: list[Record] = []
    seen: set[str] = set()
    size = r.batch_records
    for b, start in enumerate(range(0, len(units), size)):
        chunk = units[start : start + size]
        sampling = Sampling(
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            seed=derive_seed(r.seed, "backtranslate", b),
        )
        with tools.timed("backtranslate"):
            conversations = [build_backtranslation_prompt(text) for _, _, text in chunk]
            replies = tools.llm_batch(
                "backtranslate", b, conversations, sampling, code=BACKTRANSLATE_CODE
            )
        for (pid, sid, text), (reply,) in zip(chunk, replies, strict=True):
            meta = {
                **tools.lineage,
                "origin": "backtranslation",
                "source_passage": pid,
                "span": sid,
            }
            question, reason = parse_question(reply, text, cfg.topic_replies)
            record = Record(instruction=question, output=text, passages=(pid,), meta=meta)
            if not reason and record.id in seen:
                reason = "backtranslation_question_repeated"
            if reason:
                stub = Record(
                    instruction=question,
                    output=text,
                    passages=(pid,),
                    meta={**meta, "reply": reply},
                    id=f"span-{sid}",
                )
                dropped.append(stub.drop("backtranslate", reason))
                continue
            seen.add(record.id)
            form = "question" if question.endswith("?") else "topic"  # topic: "Explain X."
            kept.append(record.with_meta(question_form=form))
    log().info("backtranslate: %d spans -> %d questions kept", len(units), len(kept))
    return one_step("backtranslate", len(units), kept, dropped)


ORIGIN = Origin("backtranslation", "backtranslate", BacktranslateConfig, share=0.0,
                share_doc="backtranslated corpus spans", make=backtranslate_records)  # fmt: skip
