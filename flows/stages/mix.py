"""The curated set's other origins, its grounding check, and the mix between origins.

    backtranslate   the model writes the question each corpus span answers (Humpback)
    reading         reading-comprehension tasks mined from passages by rules (AdaptLLM)
    facts           closed-book rows on each passage's atomic facts, several forms per fact
    grounding       every record's support (filters/support.py), a floor when the recipe sets one
    mix             origins cut, seeded, to the recipe's shares

Every record carries `meta.origin` ('self_instruct', 'backtranslation', 'reading' or
'facts'), so the funnel, the data card and the export say where each came from.
"""

from __future__ import annotations

import random

from prefect import get_run_logger

from filters.support import distribution, score_support, support_filter
from flows.run import Run
from flows.stages.origins import self_instruct_steps as stages
from generators.backtranslate import build_backtranslation_prompt, parse_question, spans
from generators.corpus import Passage
from generators.facts import facts_corpus
from generators.llm import Sampling
from generators.reading import mine_corpus
from generators.records import Record

ORIGINS = ("self_instruct", "backtranslation", "reading", "facts")
BACKTRANSLATE_CODE = ("generators.backtranslate", "generators.respond", "generators.reading")


def origin(record: Record) -> str:
    return record.meta.get("origin", "self_instruct")


def backtranslate_records(run: Run, passages: list[Passage]) -> list[Record]:
    """One question per corpus span, asked of the model in cached batches; the span answers it.
    Replies that hold no usable question, and questions asked twice, are dropped with a reason."""
    cfg, r = run.recipe.backtranslate, run.recipe
    units = [(p.id, sid, text) for p in passages for sid, text in spans(p, cfg.sentences_per_span)]
    if cfg.max_spans is not None and len(units) > cfg.max_spans:
        rng = random.Random(stages.derive_seed(r.seed, "backtranslate-spans"))
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
            seed=stages.derive_seed(r.seed, "backtranslate", b),
        )
        with run.timed("backtranslate"):
            conversations = [build_backtranslation_prompt(text) for _, _, text in chunk]
            replies = run.llm("backtranslate", b, conversations, sampling, code=BACKTRANSLATE_CODE)
        for (pid, sid, text), (reply,) in zip(chunk, replies, strict=True):
            meta = {**run.lineage, "origin": "backtranslation", "source_passage": pid, "span": sid}
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
    run.stage("backtranslate", len(units), kept, dropped)
    get_run_logger().info("backtranslate: %d spans -> %d questions kept", len(units), len(kept))
    return kept


def reading_records(run: Run, passages: list[Passage]) -> list[Record]:
    """Reading-comprehension tasks mined from every passage (no LLM)."""
    cfg = run.recipe.reading
    with run.timed("reading"):
        mined = mine_corpus(passages, cfg.kinds, cfg.per_kind)
    records = [r.with_meta(**run.lineage) for r in mined]
    run.stage("reading", len(passages), records, [])
    return records


def facts_records(run: Run, passages: list[Passage]) -> list[Record]:
    """Closed-book rows on every passage's atomic facts (no LLM, no passage in the prompt)."""
    cfg = run.recipe.facts
    with run.timed("facts"):
        made = facts_corpus(passages, cfg.forms, cfg.per_passage, cfg.phrasings, run.recipe.seed)
    records = [r.with_meta(**run.lineage) for r in made]
    run.stage("facts", len(passages), records, [])
    return records


def grounding_stage(run: Run, records: list[Record], texts: dict[str, str]) -> list[Record]:
    """Score each record's support against its passages; drop those under `min_support`."""
    cfg = run.recipe.grounding
    with run.timed("grounding"):
        scored = score_support(records, texts)
        kept, dropped = support_filter(scored, cfg.min_support)
    run.stage("grounding", len(records), kept, dropped)
    run.support = {
        name: distribution([x.meta["support"] for x in scored if origin(x) == name])
        for name in ORIGINS
        if any(origin(x) == name for x in scored)
    }
    return kept


def mix_counts(available: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """How many records of each origin the mix keeps: the largest set in the given proportions.

    mix_counts({"a": 100, "b": 30}, {"a": 1, "b": 1}) -> {"a": 30, "b": 30}; an origin with share
    0 keeps 0; an origin with a share but no records leaves the others whole (it cannot be met).
    """
    wanted = {o: s for o, s in shares.items() if s > 0 and available.get(o, 0) > 0}
    if not wanted:
        return {o: 0 for o in available}
    total = sum(wanted.values())
    scale = min(available[o] / (s / total) for o, s in wanted.items())
    return {
        o: min(available[o], round(scale * wanted[o] / total)) if o in wanted else 0
        for o in available
    }


UNCUT = ("facts",)  # kept whole by the mix: their number follows the corpus (facts.per_passage)


def mix_stage(run: Run, records: list[Record]) -> list[Record]:
    """Cut the origins to the recipe's shares (a seeded choice within each); the rest are dropped
    with reason 'mix_share_<origin>'. With a single origin nothing is cut; facts rows are never
    cut (their share only switches them on)."""
    shares = {o: s for o, s in run.recipe.mix.shares().items() if o not in UNCUT}
    by_origin: dict[str, list[Record]] = {}
    for x in records:
        if origin(x) not in UNCUT:
            by_origin.setdefault(origin(x), []).append(x)
    if len([o for o in by_origin if shares.get(o, 0) > 0]) < 2:
        return records
    counts = mix_counts({o: len(xs) for o, xs in by_origin.items()}, shares)
    keep: set[str] = set()
    for o, xs in by_origin.items():
        rng = random.Random(stages.derive_seed(run.recipe.seed, "mix", o))
        keep |= {x.id for x in rng.sample(xs, counts[o])}
    cut = [x for x in records if origin(x) not in UNCUT]
    kept = [x for x in records if x.id in keep or origin(x) in UNCUT]
    dropped = [x.drop("mix", f"mix_share_{origin(x)}") for x in cut if x.id not in keep]
    run.stage("mix", len(records), kept, dropped)
    return kept
