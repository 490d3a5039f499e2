"""MultiCritique's model rounds, run in this order by `multicritique.py`:

    critique_round       every critic critiques every record          -> Judged.critiques
    meta_critique_round  the meta-critic judges every critique unit   -> Judged.summary
    revision_round       each critic's valid units revise a response  -> Revision
    compare_round        a judge compares each revision with its original
                                                                  -> Judged.comparisons, .pairs

A `Judged` carries one record through the rounds; a `Unit` or a `Revision` points at its
`Judged`, so no list is matched to another by position. Batches keep one order: units critic by
critic, revisions record by record. Prompts and parsing are the pure functions of
`filters/multicritique*.py`; every model call goes through `Tools.llm` (the run's cached batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from filters import multicritique as mc
from filters.multicritique_parse import (
    parse_comparison,
    parse_critique,
    parse_meta_verdict,
    parse_revision,
)
from filters.multicritique_targets import preference_pair, summary
from flows.stages.base import Tools
from generators.llm import Sampling
from generators.records import Record

# The modules whose source keys MultiCritique's cached LLM batches (see flows.tasks.code_version).
MULTI = (
    "filters.multicritique",
    "filters.multicritique_parse",
    "filters.multicritique_targets",
    "filters.judge_io",
)


@dataclass
class Judged:
    """One record on its way through the rounds."""

    record: Record
    critiques: dict[str, list[dict] | str] = field(default_factory=dict)  # critic -> units/reason
    verdicts: list[bool | str] = field(default_factory=list)  # per unit, critic by critic
    summary: dict[str, Any] = field(default_factory=dict)  # filters.multicritique_targets.summary
    comparisons: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)

    @property
    def critiqued(self) -> bool:
        """Whether any critic's reply could be read (then it gets a critique-SFT row)."""
        return any(isinstance(units, list) for units in self.critiques.values())

    def meta(self, comparison_skipped: str | None) -> dict[str, Any]:
        """meta["multicritique"]: the summary, then comparisons and the number of pairs."""
        meta = {**self.summary, "comparisons": self.comparisons, "pairs": len(self.pairs)}
        if comparison_skipped:
            meta["comparison_skipped"] = comparison_skipped
        return meta


@dataclass(frozen=True)
class Unit:
    """One critique unit of one critic about `item`'s response."""

    item: Judged
    critic: str
    unit: dict


@dataclass(frozen=True)
class Revision:
    """`item`'s response revised with one critic's valid units; `first`: shown as response A."""

    item: Judged
    critic: str
    text: str
    first: bool


def critic_names(critics) -> list[str]:
    """Unique names: [accuracy, accuracy@m, accuracy] -> [accuracy, accuracy@m, accuracy-3]."""
    names: list[str] = []
    for i, critic in enumerate(critics):
        name = critic.persona + (f"@{critic.model}" if critic.model else "")
        names.append(name if name not in names else f"{name}-{i + 1}")
    return names


def critique_round(tools: Tools, records: list[Record], names: list[str]) -> list[Judged]:
    """Each record with every critic's parsed critique (units, or the parser's reason)."""
    cfg = tools.recipe.multicritique
    items = [Judged(record) for record in records]
    for critic, name in zip(cfg.critics, names, strict=True):
        prompts = [
            mc.critique_prompt(r.instruction, r.input, r.output, critic.persona) for r in records
        ]
        sampling = mc.critique_sampling(critic.seed, cfg.max_tokens)
        replies = tools.llm(f"critique-{name}", prompts, sampling, model=critic.model, code=MULTI)
        for item, samples in zip(items, replies, strict=True):
            item.critiques[name] = parse_critique(samples[0])
    return items


def meta_critique_round(tools: Tools, items: list[Judged], names: list[str]) -> list[Unit]:
    """Every critique unit, judged valid or not; each item gets its verdicts and summary."""
    units = [
        Unit(item, name, unit)
        for name in names
        for item in items
        if isinstance(item.critiques[name], list)
        for unit in item.critiques[name]
    ]
    prompts = [
        mc.meta_critique_prompt(
            u.item.record.instruction, u.item.record.input, u.item.record.output, u.unit
        )
        for u in units
    ]
    sampling = mc.judge_sampling(mc.META_SCHEMA, tools.recipe.multicritique.judge_max_tokens)
    replies = tools.llm("meta-critique", prompts, sampling, code=MULTI)
    for unit, samples in zip(units, replies, strict=True):
        unit.item.verdicts.append(parse_meta_verdict(samples[0]))
    for item in items:
        item.summary = summary(item.critiques, item.verdicts)
    return units


def revision_round(
    tools: Tools, items: list[Judged], names: list[str], sampling: Sampling
) -> list[Revision]:
    """Each response revised once per critic with valid units; empty revisions are left out."""
    jobs = [
        (item, name, units)
        for item in items
        for name in names
        if (units := [u for u in item.summary["valid_units"] if u["critic"] == name])
    ]
    prompts = [
        mc.revision_prompt(item.record.instruction, item.record.input, item.record.output, units)
        for item, _, units in jobs
    ]
    replies = tools.llm("revise", prompts, sampling, code=MULTI)
    revisions = []
    for (item, name, _), samples in zip(jobs, replies, strict=True):
        if text := parse_revision(samples[0]):
            revisions.append(Revision(item, name, text, mc.revision_first(item.record.id, name)))
    return revisions


def compare_round(tools: Tools, revisions: list[Revision]) -> None:
    """A judge compares each revision with its original (in a fixed random order); each item
    gets the comparisons and the preference pairs their verdicts give."""
    prompts = []
    for rev in revisions:
        r = rev.item.record
        a, b = (rev.text, r.output) if rev.first else (r.output, rev.text)
        prompts.append(mc.comparison_prompt(r.instruction, r.input, a, b))
    sampling = mc.judge_sampling(mc.COMPARE_SCHEMA, tools.recipe.multicritique.judge_max_tokens)
    replies = tools.llm("compare", prompts, sampling, code=MULTI)
    for rev, samples in zip(revisions, replies, strict=True):
        r, verdict = rev.item.record, parse_comparison(samples[0])
        rev.item.comparisons.append(
            {"critic": rev.critic, "verdict": verdict, "revision": rev.text}
        )
        pair = preference_pair(r, r.output, rev.text, verdict, rev.first, rev.critic)
        if pair is not None:
            rev.item.pairs.append(pair)
