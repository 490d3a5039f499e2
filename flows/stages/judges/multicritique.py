"""MultiCritique: critics, a meta-critique, aggregated critiques (export/critique_sft.jsonl) and
revisions judged against the original (export/dpo.jsonl); the model rounds are in
critique_rounds.py. Calibrated on its pairwise judge: of (correct, corrupted), positions hashed,
the answer it prefers counts as judged correct, the other as wrong."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, model_validator

from filters import multicritique as mc
from filters.multicritique import CRITIQUE_MAX_TOKENS, PERSONAS
from filters.multicritique import JUDGE_MAX_TOKENS as MC_JUDGE_MAX_TOKENS
from filters.multicritique_targets import critique_sft_row
from flows.stages.base import REPETITION_PENALTY, Judge, Outcome, Step, Strict, Tools, log
from flows.stages.judges import critique_rounds as cr
from flows.stages.judges.critique_rounds import MULTI, critic_names
from generators.llm import Sampling
from generators.records import Record
from generators.seeds import Seed


class CriticConfig(Strict):
    persona: str = Field(description="a key of filters.multicritique.PERSONAS")
    model: str | None = Field(None, description="None: the recipe's model")
    seed: int = 0


class MultiCritiqueConfig(Strict):
    """MultiCritique critics, meta-critique, aggregation and preference pairs."""

    enabled: bool = False
    critics: list[CriticConfig] = Field(
        default_factory=lambda: [
            CriticConfig(persona="accuracy", seed=1),
            CriticConfig(persona="completeness", seed=2),
            CriticConfig(persona="clarity", seed=3),
        ],
        min_length=1,
    )
    max_tokens: int = Field(CRITIQUE_MAX_TOKENS, ge=16, description="critiques and revisions")
    judge_max_tokens: int = Field(
        MC_JUDGE_MAX_TOKENS, ge=16, description="meta-critiques and comparisons"
    )

    @model_validator(mode="after")
    def _known_personas(self) -> MultiCritiqueConfig:
        for critic in self.critics:
            if critic.persona not in PERSONAS:
                raise ValueError(
                    f"unknown critic persona {critic.persona!r}: choose one of "
                    + ", ".join(PERSONAS)
                )
        return self


def multicritique_stage(
    tools: Tools,
    records: list[Record],
    seeds: list[Seed] = (),
    skipped: str | None = None,
    scorer: str | None = None,  # no scorers: the model's verdict only
) -> Outcome:
    """Critiques -> meta-critique -> aggregated critique targets; revisions -> DPO pairs.

    Its datasets: {"critique_sft": rows, "dpo": pairs}; `skipped`: why the comparison judge is not
    used (calibration): it could not tell which is better, so no revisions, no pairs.
    """
    cfg = tools.recipe.multicritique
    names = critic_names(cfg.critics)
    sampling = Sampling(max_tokens=cfg.max_tokens, repetition_penalty=REPETITION_PENALTY)
    with tools.timed("multicritique"):
        items = cr.critique_round(tools, records, names)
        units = cr.meta_critique_round(tools, items, names)
        revisions = [] if skipped else cr.revision_round(tools, items, names, sampling)
        cr.compare_round(tools, revisions)
        out = [
            replace(i.record, meta={**i.record.meta, "multicritique": i.meta(skipped)})
            for i in items
        ]
        sft = [critique_sft_row(i.record, i.summary["aggregated"]) for i in items if i.critiqued]
        dpo = [pair for i in items for pair in i.pairs]
    log().info(
        "multicritique: %d critique units, %d valid, %d revisions, %d preference pairs",
        len(units),
        sum(len(i.summary["valid_units"]) for i in items),
        len(revisions),
        len(dpo),
    )
    steps = [Step("multicritique", len(records), out, [])]
    return Outcome(out, steps, datasets={"critique_sft": sft, "dpo": dpo})


def comparison_verdicts(tools: Tools, items: list) -> list[bool | None]:
    """Calibration: pairs (gold, corrupted) in check-set order; the preferred answer is judged
    correct, the other wrong; a tie judges both wrong."""
    pairs = [(items[k], items[k + 1]) for k in range(0, len(items), 2)]
    prompts, gold_first = [], []
    for gold, wrong in pairs:
        flip = mc.revision_first(gold.id, "calibration")
        a, b = (wrong.answer, gold.answer) if flip else (gold.answer, wrong.answer)
        gold_first.append(not flip)
        prompts.append(mc.comparison_prompt(gold.question, "", a, b))
    sampling = mc.judge_sampling(mc.COMPARE_SCHEMA, tools.recipe.multicritique.judge_max_tokens)
    replies = tools.llm("calibrate-comparison", prompts, sampling, code=MULTI)
    verdicts: list[bool | None] = []
    for (reply,), a_is_gold in zip(replies, gold_first, strict=True):
        better = mc.parse_comparison(reply)
        if better not in ("A", "B", "tie"):
            verdicts += [None, None]
        elif better == "tie":
            verdicts += [False, False]
        else:
            picked_gold = (better == "A") == a_is_gold
            verdicts += [picked_gold, not picked_gold]
    return verdicts


JUDGE = Judge("multicritique", MultiCritiqueConfig, ("multicritique",),
              switched_on=lambda cfg: cfg.enabled, apply=multicritique_stage,
              verdict="comparison", verdicts=comparison_verdicts)  # fmt: skip
