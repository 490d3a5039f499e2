"""The decontamination stage: nothing exported shares an n-gram with a set it is measured on.

    sources   recipe.train.eval.domain, train.eval.general, calibration.check_set (those that exist)
    index     every question and answer of each, read with trainers.data.load_qa, under its QA id
    filter    filters.decontam.decontaminate -> stage "decontaminate", reason contaminated_<id>

It runs last, right before the export. Switched off, or with no held-out set in the recipe, it
passes records through and writes no stage folder.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from filters.decontam import REASON_PREFIX, STAGE, HeldoutIndex, decontaminate
from flows.stages.base import Outcome, Step, Tools, log
from generators.errors import SelfAlignError
from generators.records import Record


def heldout_sources(recipe) -> list[str]:
    """The held-out files the recipe names that exist, each once, in a fixed order."""
    configured = (
        recipe.train.eval.domain,
        recipe.train.eval.general,
        recipe.calibration.check_set,
        recipe.train.eval.knowledge,
    )
    return [p for p in dict.fromkeys(configured) if p and Path(p).is_file()]


def heldout_index(paths: list[str], n: int, knowledge: str | None = None) -> HeldoutIndex:
    """An index of the question and the answer of every QA in `paths` under the QA's id; the
    file that is the recipe's `knowledge` set gives each item's question and gold choice."""
    texts = [pair for path in paths for pair in heldout_texts(path, path == knowledge)]
    return HeldoutIndex.build(texts, n)


def heldout_texts(path: str, knowledge: bool) -> list[tuple[str, str]]:
    """(id, text) of every question and answer in a QA file or, `knowledge`, a knowledge set."""
    from trainers import knowledge_set
    from trainers.data import load_qa

    if knowledge:
        texts = []
        for no, it in knowledge_set.read_jsonl(Path(path)):
            try:
                texts += [(it["id"], it["question"]), (it["id"], it["choices"][it["gold"]])]
            except (KeyError, IndexError, TypeError):
                raise SelfAlignError(
                    f"{path}:{no}: not a knowledge item (needs id, question, choices and gold)"
                ) from None
        return texts
    return [(qa.id, t) for qa in load_qa(path) for t in (qa.prompt, qa.answer)]


def decontaminate_stage(tools: Tools, records: list[Record]) -> Outcome:
    """Drop records that share an n-gram with a held-out question or answer; the counts are the
    manifest's `decontamination` section (and the data card's)."""
    r = tools.recipe
    cfg = r.decontaminate
    sources = heldout_sources(r)
    if not cfg.enabled or not sources:
        return Outcome(records)
    with tools.timed(STAGE):
        index = heldout_index(sources, cfg.n, r.train.eval.knowledge)
        kept, dropped = decontaminate(records, index)
    by_heldout = Counter(x.meta["drop_reason"].removeprefix(REASON_PREFIX) for x in dropped)
    section = {
        "n": cfg.n,
        "sources": sources,
        "heldout_texts": index.texts,
        "checked": len(records),
        "dropped": len(dropped),
        "by_heldout": dict(by_heldout.most_common()),
    }
    log().info(
        "decontaminate: %d of %d records share a %d-gram with %d held-out texts (%s)",
        len(dropped),
        len(records),
        cfg.n,
        index.texts,
        ", ".join(sources),
    )
    steps = [Step(STAGE, len(records), kept, dropped)]
    return Outcome(kept, steps, manifest={"decontamination": section})
