"""Words of a text as the support score and the rule-made origins count them, with no model.

A *content word* is a lowercased run of letters and digits (hyphens and apostrophes inside kept),
3 characters or more, not a stopword, with a plural "s"/"es" removed; numbers count whatever their
length. filters/support.py scores an answer by them; the backtranslation, reading and facts
generators use them to match an answer to its passage.
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_NUMBER_RE = re.compile(r"(?<![a-z0-9.])\d+(?:\.\d+)?(?![a-z0-9])")
MIN_WORD_CHARS = 3
STOPWORDS = frozenset(
    """
    about above after again against all also although among and any are aren't because been
    before being below between both but can cannot could did does doing done down during each
    either else etc even ever every few for from further had has have having her here hers
    herself him himself his how however into its itself just least less like made make many may
    might more most much must myself near neither nor not now off once one only onto other
    others our ours ourselves out over own per rather same she should since some such than that
    the their theirs them themselves then there therefore these they this those though through
    thus too under until upon very via was way we were what whatever when where whereas whether
    which while who whom whose why will with within without would yet you your yours yourself
    the first second third two three four five use used uses using well get gets also often
    usually called known include includes including
    """.split()
)


def stem(word: str) -> str:
    """'proteins' -> 'protein', 'classes' -> 'class', "cell's" -> 'cell'; short words unchanged."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Distinct stemmed content words: 'The cells divide.' -> {'cell', 'divide'}."""
    return {
        stem(w)
        for w in _WORD_RE.findall(text.lower())
        if len(w) >= MIN_WORD_CHARS and w not in STOPWORDS
    }


def support_words(text: str) -> set[str]:
    """Content words and numbers: '25% of 4 cells' -> {'25', '4', 'cell'}."""
    return content_words(text) | set(_NUMBER_RE.findall(text.lower()))
