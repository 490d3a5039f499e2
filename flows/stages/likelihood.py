"""The recipe model's likelihoods of answers, for the scorers that need no verdict from it
(filters/support.py) and for offline selection: IFD and the gain an answer gets from its passages.
Each is one cached task over a batch (keyed by content), with the model loaded by transformers
and freed afterwards.

    ifds(tools, prompts, answers)                  -> IFD of each answer given its prompt
    passage_gains(tools, prompts, answers, ctxs)   -> {"gain", "worst"} of each answer: its
                                                      passages (ctxs) before the prompt against
                                                      another answer's
    passages_for(tools, records)                   -> each record's passage texts (retrieved for
                                                      the question when the record names none)
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from filters.support import control_order, passage_gain
from flows.stages.base import Tools
from flows.tasks import code_version, content_key, given_key
from generators.models import resolve_model

# The modules whose source keys the cached scores (see flows.tasks.code_version).
LIKELIHOOD_CODE = ("trainers.evaluate",)
CONTEXT_HEADER = "Passages:\n"


@task(cache_key_fn=given_key, persist_result=True)
def ifd_batch(key: str, model_path: str, prompts: list[str], answers: list[str]) -> list[float]:
    """IFD of each answer given its prompt, under the model in `model_path` (freed afterwards)."""
    from trainers.evaluate import ifd_scores, load_model, release_memory

    model, tokenizer = load_model(model_path)
    try:
        return ifd_scores(model, tokenizer, prompts, answers)
    finally:
        del model, tokenizer
        release_memory()


@task(cache_key_fn=given_key, persist_result=True)
def token_loss_batch(
    key: str, model_path: str, prompts: list[str], answers: list[str], precision: str = "fp32"
) -> list[list[float]]:
    """Each answer's per-token NLL after its prompt, under the model in `model_path`, in
    `precision` (bf16 where the machine's bf16 check passed: twice as fast on such CPUs)."""
    from trainers.evaluate import answer_token_losses, load_model, release_memory

    model, tokenizer = load_model(model_path, precision=precision)
    try:
        return answer_token_losses(model, tokenizer, prompts, answers)
    finally:
        del model, tokenizer
        release_memory()


def _model_path(tools: Tools) -> str:
    return resolve_model(tools.recipe.model.name).path


def scoring_precision(model_path: str) -> str:
    """'bf16' where training would use it on this machine (trainers/precision.py), else 'fp32'."""
    from generators.models import cache_dir
    from trainers.precision import choose

    return choose("auto", model_path, cache_dir())[0]


def ifds(tools: Tools, prompts: list[str], answers: list[str]) -> list[float]:
    """IFD of each answer given its prompt under the recipe's model (cached by content)."""
    key = content_key("ifd", tools.model_id, prompts, answers, code_version(LIKELIHOOD_CODE))
    task_ = ifd_batch.with_options(result_storage=tools.cache, task_run_name="ifd")
    return task_(key=key, model_path=_model_path(tools), prompts=prompts, answers=answers)


def with_context(prompt: str, passages: Sequence[str]) -> str:
    """The prompt after its passages: ('Q?', ['P1', 'P2']) -> 'Passages:\\nP1\\n\\nP2\\n\\nQ?'."""
    if not passages:
        return prompt
    return CONTEXT_HEADER + "\n\n".join(passages) + "\n\n" + prompt


def control_contexts(contexts: list[list[str]], seed: int = 0) -> list[list[str]]:
    """Each answer's control: the passages of an answer with other passages (a seeded cycle,
    filters.support.control_order), or none when every answer has the same ones."""
    keys = ["\n\n".join(c) for c in contexts]
    return [[] if j is None else contexts[j] for j in control_order(keys, seed)]


def passage_gains(
    tools: Tools, prompts: list[str], answers: list[str], contexts: list[list[str]]
) -> list[dict]:
    """{"gain", "worst"} of each answer: its per-token NLL after unrelated passages (another
    answer's, `control_contexts`) and the prompt, against after its own passages (`contexts`)
    and the prompt (filters.support.passage_gain), under the recipe's model."""
    given = [with_context(p, c) for p, c in zip(prompts, contexts, strict=True)]
    controls = control_contexts(contexts, tools.recipe.seed)
    control = [with_context(p, c) for p, c in zip(prompts, controls, strict=True)]
    path = _model_path(tools)
    precision = scoring_precision(path)
    key = content_key(
        "passage-gain", tools.model_id, precision, control, given, answers,
        code_version(LIKELIHOOD_CODE),
    )  # fmt: skip
    task_ = token_loss_batch.with_options(result_storage=tools.cache, task_run_name="passage-gain")
    both = task_(
        key=key, model_path=path, prompts=control + given, answers=answers + answers,
        precision=precision,
    )  # fmt: skip
    unrelated, after = both[: len(prompts)], both[len(prompts) :]
    return [passage_gain(w, u) for w, u in zip(after, unrelated, strict=True)]


def retrieved_texts(tools: Tools, queries: list[str]) -> list[list[str]]:
    """The texts of the top passages (respond.top_k) of each query in the run's index."""
    if not queries:
        return []
    hits = tools.retrieve(0, queries)
    return [[tools.texts[pid] for pid, _ in found if pid in tools.texts] for found in hits]


def named_texts(tools: Tools, record) -> list[str]:
    """The texts of the passages a record names (`passages`, else meta.source_passage)."""
    ids = list(record.passages) or [p for p in [record.meta.get("source_passage")] if p]
    return [tools.texts[p] for p in ids if p in tools.texts]


def passages_for(tools: Tools, records) -> list[list[str]]:
    """Each record's passage texts: those it names (`named_texts`), or the passages retrieved
    for its instruction when it names none."""
    named = [named_texts(tools, r) for r in records]
    missing = [i for i, texts in enumerate(named) if not texts]
    found = retrieved_texts(tools, [records[i].instruction for i in missing])
    for i, texts in zip(missing, found, strict=True):
        named[i] = texts
    return named
