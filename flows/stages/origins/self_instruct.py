"""The Self-Instruct origin: the model writes new tasks from seed and machine demos grounded in
passages, then an input and an answer for each (its recipe sections are the run's own: generate,
novelty, instances, respond).

    generate    Self-Instruct prompts (seed + machine demos, grounded in passages) -> numbered lists
    heuristics  length, blocked words, punctuation, truncation, in-batch duplicates
    novelty     ROUGE-L against seeds and everything kept so far
    classify    is the task a classification task?
    instances   retrieve passages, then write one input for each task
    respond     answer each task grounded in its retrieved passages (or the one it came from)

Generation runs in batches of prompts because later prompts show earlier kept tasks as demos; the
per-record stages run in batches of `batch_records`. The prompt building and parsing are the pure
functions of self_instruct_steps.py.
"""

from __future__ import annotations

import math

from prefect import task
from prefect.cache_policies import NO_CACHE

from filters.heuristics import heuristic_filter
from filters.novelty import NoveltyPool, novelty_filter
from flows.stages.base import Origin, Outcome, Sources, Step, Tools, derive_seed, log
from flows.stages.origins import self_instruct_steps as steps
from generators.corpus import Passage
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed

CLASSIFY_MAX_TOKENS = 4  # "Yes" / "No" and a little slack


@task(cache_policy=NO_CACHE)
def filter_heuristics(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Self-Instruct's heuristic filters, with reasons."""
    return heuristic_filter(records)


@task(cache_policy=NO_CACHE)
def filter_novelty(records: list[Record], pool: NoveltyPool) -> tuple[list[Record], list[Record]]:
    """ROUGE-L novelty against the pool; kept records join the pool."""
    return novelty_filter(records, pool)


def generation_sampling(recipe, batch: int) -> Sampling:
    """The generate stage's sampling for one batch, its seed derived from the recipe's."""
    cfg = recipe.generate
    return Sampling(
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        seed=derive_seed(recipe.seed, "generate", batch),
    )


def generate_instructions(
    tools: Tools, seeds: list[Seed], passages: list[Passage]
) -> tuple[list[Record], list[Step]]:
    """Bootstrapping: batches of prompts, each batch filtered before the next one samples demos.
    Returns the novel tasks and the generate, heuristics and novelty steps."""
    r = tools.recipe
    cfg = r.generate
    pool = NoveltyPool(r.novelty.threshold)
    for seed in seeds:
        pool.add(seed.id, seed.instruction)
    kept: list[Record] = []
    parsed: list[Record] = []
    unparsed: list[Record] = []
    heur_kept: list[Record] = []
    heur_out: list[Record] = []
    nov_out: list[Record] = []
    batches = math.ceil(cfg.prompts / cfg.batch_prompts)
    for b in range(batches):
        indices = range(b * cfg.batch_prompts, min(cfg.prompts, (b + 1) * cfg.batch_prompts))
        prompts = [steps.generation_prompt(i, cfg, r.seed, seeds, kept, passages) for i in indices]
        with tools.timed("generate"):
            conversations = [p.conversation for p in prompts]
            replies = tools.llm_batch("generate", b, conversations, generation_sampling(r, b))
            candidates, bad = steps.instructions_from_replies(prompts, replies, tools.lineage)
        with tools.timed("heuristics"):
            after_heuristics, dropped_h = filter_heuristics(candidates)
        with tools.timed("novelty"):
            novel, dropped_n = filter_novelty(after_heuristics, pool)
        kept += novel
        parsed += candidates
        unparsed += bad
        heur_kept += after_heuristics
        heur_out += dropped_h
        nov_out += dropped_n
        log().info(
            "generate batch %d/%d: %d prompts -> %d tasks, %d pass heuristics, %d novel (total %d)",
            b + 1,
            batches,
            len(prompts),
            len(candidates),
            len(after_heuristics),
            len(novel),
            len(kept),
        )
    return kept, [
        Step("generate", cfg.prompts, parsed, unparsed),
        Step("heuristics", len(parsed), heur_kept, heur_out),
        Step("novelty", len(heur_kept), kept, nov_out),
    ]


def stage_sampling(cfg, seed: int, stage: str, batch: int) -> Sampling:
    """Sampling for a per-record stage from its recipe section, seeded per (stage, batch)."""
    return Sampling(
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        repetition_penalty=getattr(cfg, "repetition_penalty", 1.0),
        seed=derive_seed(seed, stage, batch),
    )


def complete_records(
    tools: Tools, instructions: list[Record], texts
) -> tuple[list[Record], list[Step]]:
    """Classify, retrieve, write an input, and answer each task, in batches of records.
    Returns the answered records and the classify, instances and respond steps."""
    r = tools.recipe
    size = r.batch_records
    batches = [instructions[i : i + size] for i in range(0, len(instructions), size)]
    classified: list[Record] = []
    inst_kept: list[Record] = []
    inst_out: list[Record] = []
    answered: list[Record] = []
    resp_out: list[Record] = []
    for b, batch in enumerate(batches):
        with tools.timed("classify"):
            replies = tools.llm_batch(
                "classify",
                b,
                steps.classification_prompts(batch),
                Sampling(max_tokens=CLASSIFY_MAX_TOKENS),
            )
            batch = steps.apply_classification(batch, replies)
        classified += batch
        with tools.timed("instances"):
            hits = tools.retrieve(b, [x.instruction for x in batch])
            if r.grounding.source_passage:
                batch = steps.attach_source_passages(batch, hits, r.grounding.min_score)
            else:
                batch = steps.attach_passages(batch, hits)
            sampling = stage_sampling(r.instances, r.seed, "instances", b)
            replies = tools.llm_batch(
                "instances", b, steps.instance_prompts(batch, texts), sampling
            )
            with_input, dropped = steps.apply_instances(batch, replies)
        inst_kept += with_input
        inst_out += dropped
        with tools.timed("respond"):
            sampling = stage_sampling(r.respond, r.seed, "respond", b)
            prompts = steps.response_prompts(with_input, texts, r.grounding.source_passage)
            replies = tools.llm_batch("respond", b, prompts, sampling)
            done, dropped = steps.apply_responses(with_input, replies)
        answered += done
        resp_out += dropped
        log().info(
            "records batch %d/%d: %d answered (total %d)",
            b + 1,
            len(batches),
            len(done),
            len(answered),
        )
    return answered, [
        Step("classify", len(instructions), classified, []),
        Step("instances", len(classified), inst_kept, inst_out),
        Step("respond", len(inst_kept), answered, resp_out),
    ]


def self_instruct_records(tools: Tools, sources: Sources) -> Outcome:
    """New tasks from the seeds, each with an input and a grounded answer."""
    instructions, generated = generate_instructions(tools, sources.seeds, sources.passages)
    answered, completed = complete_records(tools, instructions, sources.texts)
    return Outcome(answered, generated + completed)


ORIGIN = Origin("self_instruct", None, None, share=1.0, make=self_instruct_records,
                share_doc="Self-Instruct tasks answered by respond")  # fmt: skip
