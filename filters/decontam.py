"""Decontamination: drop records that share a 13-gram with a held-out question or answer.

Text is normalized as lm-evaluation-harness's decontamination janitor does (lowercase, delete
punctuation, split on whitespace), and a record is contaminated when any run of `N_GRAM` words of
its instruction, input or output is also a run of words of a held-out text. Each field is checked
on its own, so an n-gram that starts at the end of the instruction and ends in the output does not
count (those words are never next to each other in a held-out text either).

Not handled: a held-out text shorter than `N_GRAM` words has no n-gram and can never match;
paraphrases, translations and numbers written differently ("37" vs "thirty-seven") pass; there is
no stemming. Unlike the janitor, which cuts 200 characters around a match out of a training
document, the whole record is dropped. Non-ASCII punctuation (curly quotes, dashes) is deleted too,
where the janitor deletes `string.punctuation` only; both sides are normalized the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from filters.base import split
from generators.records import Record

# GPT-3 (Brown et al. 2020, appendix C) filtered its training data by 13-gram overlap with the
# benchmarks; lm-evaluation-harness's janitor (`Janitor(ngram_n=13)`) uses the same size.
N_GRAM = 13
STAGE = "decontaminate"
REASON_PREFIX = "contaminated_"  # + the held-out id, e.g. "contaminated_qa-001"
# Everything that is neither a word character nor whitespace, and "_" (punctuation for the janitor).
PUNCTUATION_RE = re.compile(r"[^\w\s]|_")


def normalize(text: str) -> list[str]:
    """Lowercase words without punctuation: `"Don't PANIC, e-mail!"` -> [dont, panic, email]."""
    return PUNCTUATION_RE.sub("", text.lower()).split()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    """Every run of n words: `[a, b, c], 2` -> {(a, b), (b, c)}; empty when len(words) < n."""
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class HeldoutIndex:
    """Every n-gram of the held-out texts, each mapped to the first held-out id that has it."""

    def __init__(self, n: int = N_GRAM) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.texts = 0  # held-out texts indexed (short ones included)
        self._first: dict[tuple[str, ...], str] = {}

    @classmethod
    def build(cls, texts: Iterable[tuple[str, str]], n: int = N_GRAM) -> HeldoutIndex:
        """Index `[(heldout_id, text), ...]`; on a shared n-gram the earlier id wins."""
        index = cls(n)
        for heldout_id, text in texts:
            index.texts += 1
            for gram in ngrams(normalize(text), n):
                index._first.setdefault(gram, heldout_id)
        return index

    def __len__(self) -> int:
        """Distinct n-grams indexed."""
        return len(self._first)

    def match(self, text: str) -> str | None:
        """The held-out id of the first n-gram of `text` (in its word order) that is indexed."""
        words = normalize(text)
        for i in range(len(words) - self.n + 1):
            heldout_id = self._first.get(tuple(words[i : i + self.n]))
            if heldout_id is not None:
                return heldout_id
        return None


def decontaminate(
    records: Iterable[Record], index: HeldoutIndex
) -> tuple[list[Record], list[Record]]:
    """(kept, dropped): drop a record whose instruction, input or output (in that order) shares an
    n-gram with the index, with reason "contaminated_<heldout id>"."""

    def verdict(record: Record) -> str | None:
        for text in (record.instruction, record.input, record.output):
            heldout_id = index.match(text)
            if heldout_id is not None:
                return REASON_PREFIX + heldout_id
        return None

    return split(records, STAGE, verdict)
