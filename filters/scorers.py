"""Scorers: a judge's verdict computed from text overlap or the model's likelihoods, not asked of
the model, so that a judge still works where the model is too small to grade answers.

    s3ft "f1"       the candidate is equivalent to the gold when their token F1 (SQuAD
                    normalisation) is >= `min_f1` and `facts_agree` holds
    s3ft "cosine"   ... when the embedder's cosine of the two is >= `min_cosine` and `facts_agree`
    "passage_gain"  an answer is correct when its own passages make it likelier than unrelated
                    ones do: the mean per-token log-likelihood gain (answer after its passages +
                    question, against after another question's passages + question) is
                    >= `min_gain` nats and no token loses more than `max_drop` (a number or a
                    polarity the passage contradicts is a token it makes less likely). Against
                    unrelated passages rather than none, so that text of the domain in the
                    prompt, which makes any answer of the domain likelier, does not count
    "ifd"           the question makes the answer likelier (instruction-following difficulty,
                    loss with the question / loss alone) < `max_ifd`
    support guard   SELF's refinement replaces an answer only where the share of its words its
                    passages back (filters/support.py) does not fall

`facts_agree` is the part of equivalence that overlap cannot see: every number of the candidate
is one of the gold's (and it keeps at least one when the gold has any), and both say the same
polarity (as many negations, modulo 2, and no direction word whose opposite the other uses:
"increases" against "decreases"). Calibration (flows/stages/calibrate.py) measures each scorer
beside the model's verdict on the labelled check set and picks the one that agrees best.

Not handled: numbers written as words ("four"), units that make two numbers equal (1 g, 1000 mg),
negation by a prefix ("unaffected"), and direction words outside `OPPOSITES`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence

from filters.s3ft import normalize_answer, numbers

SCORERS = ("f1", "cosine", "passage_gain", "ifd")
MIN_F1 = 0.5
MIN_COSINE = 0.85
# Chosen on the biomedical dev check set (benchmarks/RESULTS.md, judges): 0.5 nats a token, 3.0
MIN_GAIN = 0.5  # nats per answer token its own passages add over unrelated ones
MAX_DROP = 3.0  # nats: the most one answer token may lose to its own passages
MAX_IFD = 1.0

NEGATORS = frozenset({"not", "no", "never", "cannot", "none", "neither", "nor", "without"})
# Direction words, each with its opposite; a word and its opposite in the two texts disagree.
_PAIRS = (
    ("increase", "decrease"), ("increases", "decreases"), ("increased", "decreased"),
    ("raise", "lower"), ("raises", "lowers"), ("raised", "lowered"), ("rise", "fall"),
    ("rises", "falls"), ("higher", "lower"), ("more", "less"), ("activate", "inhibit"),
    ("activates", "inhibits"), ("stimulates", "inhibits"), ("stimulate", "inhibit"),
    ("induces", "suppresses"), ("positive", "negative"), ("gain", "loss"), ("gains", "loses"),
    ("retains", "loses"), ("has", "lacks"), ("plus", "minus"), ("reversibly", "irreversibly"),
    ("agonist", "antagonist"), ("excess", "deficiency"), ("upregulates", "downregulates"),
    ("dominant", "recessive"), ("aerobic", "anaerobic"),
)  # fmt: skip
OPPOSITES: dict[str, frozenset[str]] = {}
for _a, _b in _PAIRS:
    OPPOSITES[_a] = OPPOSITES.get(_a, frozenset()) | {_b}
    OPPOSITES[_b] = OPPOSITES.get(_b, frozenset()) | {_a}
_WORD_RE = re.compile(r"[a-z]+n't|[a-z]+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def negations(text: str) -> int:
    """Negation words: 'It does not bind, and cannot.' -> 2; "isn't" counts as one."""
    return sum(w in NEGATORS or w.endswith("n't") for w in _words(text))


def numbers_agree(candidate: str, gold: str) -> bool:
    """Every number of the candidate is one of the gold's, and one of the gold's is kept:
    ('37 genes', '37 genes (13 proteins)') -> True; ('75 genes', '37 genes') -> False."""
    want = {round(x, 6) for x in numbers(gold)}
    have = {round(x, 6) for x in numbers(candidate)}
    if not want:
        return not have
    return bool(have) and have <= want


def polarity_agrees(candidate: str, gold: str) -> bool:
    """Same negations modulo 2 and no direction word against its opposite:
    ('it is not', 'it is') -> False; ('insulin lowers glucose', 'it lowers glucose') -> True;
    ('increases', 'decreases') -> False."""
    if negations(candidate) % 2 != negations(gold) % 2:
        return False
    a, b = set(_words(candidate)), set(_words(gold))
    return not any(OPPOSITES.get(w, frozenset()) & (b - a) for w in a - b)


def facts_agree(candidate: str, gold: str) -> bool:
    """`numbers_agree` and `polarity_agrees`."""
    return numbers_agree(candidate, gold) and polarity_agrees(candidate, gold)


def token_f1(candidate: str, gold: str) -> float:
    """Bag-of-words F1 after SQuAD normalisation: ('the cat sat', 'cat sat down') -> 0.8."""
    pred, ref = normalize_answer(candidate).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum(min(pred.count(w), ref.count(w)) for w in set(pred) & set(ref))
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return round(2 * precision * recall / (precision + recall), 4)


def f1_equivalent(candidate: str, gold: str, min_f1: float = MIN_F1) -> dict:
    """{"equivalent", "f1"}: F1 >= min_f1 and the facts agree; a blank candidate never is."""
    f1 = token_f1(candidate, gold)
    ok = bool(candidate.strip()) and f1 >= min_f1 and facts_agree(candidate, gold)
    return {"judge": "f1", "equivalent": ok, "f1": f1}


def cosine_equivalent(
    candidate: str, gold: str, cosine: float, min_cosine: float = MIN_COSINE
) -> dict:
    """{"equivalent", "cosine"}: cosine >= min_cosine and the facts agree."""
    ok = bool(candidate.strip()) and cosine >= min_cosine and facts_agree(candidate, gold)
    return {"judge": "cosine", "equivalent": ok, "cosine": round(float(cosine), 4)}


def passage_gain(with_passages: Sequence[float], alone: Sequence[float]) -> dict:
    """Per-token NLLs of one answer after its passages and after the control (unrelated
    passages, or none) -> {"gain": mean nats gained per token, "worst": the largest loss of one
    token (>= 0)}: ([0.5, 1.0], [2.0, 1.5]) -> {'gain': 1.0, 'worst': 0.0}."""
    if not alone or not with_passages:
        return {"gain": 0.0, "worst": 0.0}
    if len(with_passages) != len(alone):  # the answer tokenized apart: compare the means only
        gain = sum(alone) / len(alone) - sum(with_passages) / len(with_passages)
        return {"gain": round(gain, 4), "worst": 0.0}
    diffs = [a - w for w, a in zip(with_passages, alone, strict=True)]
    return {"gain": round(sum(diffs) / len(diffs), 4), "worst": round(max(0.0, -min(diffs)), 4)}


def gain_verdict(score: dict, min_gain: float = MIN_GAIN, max_drop: float = MAX_DROP) -> bool:
    """Correct when the passages help on average and contradict no token:
    ({'gain': 0.8, 'worst': 0.3}) -> True; ({'gain': 0.8, 'worst': 4.1}) -> False."""
    return score["gain"] >= min_gain and score["worst"] <= max_drop


def control_order(keys: Sequence[str], seed: int = 0) -> list[int | None]:
    """For each item, the index of an item with another key whose passages serve as its
    control (a seeded cycle over the distinct keys), or None when all share one key:
    ['q1', 'q1', 'q2'] -> [2, 2, 0]."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) < 2:
        return [None] * len(keys)
    cycle = distinct[:]
    random.Random(seed).shuffle(cycle)
    following = {k: cycle[(i + 1) % len(cycle)] for i, k in enumerate(cycle)}
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    return [first[following[key]] for key in keys]


def ifd_verdict(ifd: float | None, max_ifd: float = MAX_IFD) -> bool:
    """Correct when the question helps predict the answer: 0.7 -> True, 1.2 -> False."""
    return ifd is not None and math.isfinite(ifd) and ifd < max_ifd


def support_holds(before: float, after: float) -> bool:
    """A refinement is kept when its support is no lower than the answer it replaces."""
    return after >= before
