"""Reading-comprehension tasks mined from corpus passages by rules (after AdaptLLM, Cheng et al.
2023, who follow raw domain text with tasks mined from it). No LLM is involved, and every answer
is the corpus's own text, so training on these rows teaches what the passages say.

    continue   first sentence(s) as input -> the rest of the passage       "Continue the text."
    keyword    "What does the text say about <term>?" -> the sentences that mention the term
    cause      a sentence split at a causal connective: "Explain why <A>." -> "Because <B>."
    effect     "<A>. What is the result?" -> "<B>" (leads to, results in, therefore, ...)
    summary    the passage as input -> its first sentence                    "Summarize ..."
    blank      "Fill in the blank: <a sentence with one fact as ____>" -> the fact (opt-in)

`blank` is a short-answer task: the blanked fact is a number with its % or unit word ("37 genes",
"25%"; the number alone before a function word or verb: "7 to 10") where the sentence has one,
else one of the passage's key terms as the sentence writes it; sentences opening with a pronoun
are skipped (they need the sentence before). It is not in the default kinds (`ALL_KINDS` lists
it): a recipe asks for it under `reading.kinds`.

Terms for `keyword` are a passage's longest recurring content words (or, failing that, its
longest ones), preferring those of the first sentence, which usually names the topic. Sentences are
split at ., ! or ? followed by a space and a capital or a digit; abbreviations like "e.g." end a
sentence early, which costs a task, not a wrong one (the mined answer is still corpus text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

from generators.corpus import Passage
from generators.records import Record
from generators.text import content_words

Kind = Literal["continue", "keyword", "cause", "effect", "summary", "blank"]
ALL_KINDS: tuple[str, ...] = get_args(Kind)
KINDS = ALL_KINDS[:-1]  # the default: every kind but the opt-in blank
BLANK = "____"
BLANK_TERMS = 3  # key terms a sentence without a number may have blanked
# a whole number ("3,500", "30.5"; not "1980s", "51-amino"), its % or lowercase word after it
_NUMBER = re.compile(
    r"(?<![\w.\-])(?P<number>\d+(?:[.,]\d+)*)(?P<unit>%|\s[a-z]+(?![\w\-]))?(?![\w\-])"
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_TERM_CHARS = 7  # a keyword term has at least this many characters
PRONOUNS = frozenset("it its they their them this these those that he she such".split())
MIN_CLAUSE_WORDS = 5  # words before a causal connective for a cause/effect task
# "A because B": the cause follows the connective
_CAUSE = re.compile(r"^(?P<a>.{12,}?),?\s+(?P<c>because|due to|as a result of)\s+(?P<b>.{8,})$")
# "A leads to B" / "A; therefore B": the effect follows the connective
_EFFECT = re.compile(
    r"^(?P<a>.{12,}?)(?:,|;)?\s+(?P<c>leads to|lead to|results in|result in|causes|cause|"
    r"triggers|so that|and therefore|; therefore|, therefore|and thus|, thus)\s+(?P<b>.{8,})$"
)


def sentences(text: str) -> list[str]:
    """'A b. C d? E.' -> ['A b.', 'C d?', 'E.'] (whitespace collapsed)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _lower_first(text: str) -> str:
    """'The cell' -> 'the cell'; 'ATP is' and 'DNA' keep their capitals (an acronym)."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


_DANGLING = re.compile(r"(?:,?\s+(?:and|or|but|which|that|so|while|then))+$", re.IGNORECASE)


def _clause(text: str) -> str:
    """'x; a claim, and' -> 'a claim': the last clause, without a dangling conjunction."""
    text = text.rsplit(";", 1)[-1]
    return _DANGLING.sub("", text.strip().rstrip(".;:,").strip()).strip().rstrip(",")


def key_terms(text: str, limit: int) -> list[str]:
    """Up to `limit` terms for keyword tasks: recurring long content words first, those in the
    first sentence before others, longer before shorter, then by first position (deterministic)."""
    sents = sentences(text)
    if not sents:
        return []
    first = content_words(sents[0])
    counts: dict[str, int] = {}
    position: dict[str, int] = {}
    for i, sentence in enumerate(sents):
        for word in content_words(sentence):
            if len(word) >= _TERM_CHARS and not word.isdigit():
                counts[word] = counts.get(word, 0) + 1
                position.setdefault(word, i)
    ranked = sorted(
        counts, key=lambda w: (-min(counts[w], 2), w not in first, -len(w), position[w], w)
    )
    return ranked[:limit]


def _mentions(sentence: str, term: str) -> bool:
    return term in content_words(sentence)


def _pronoun_led(text: str) -> bool:
    """'It is ...' needs the sentence before it."""
    return text.split(" ", 1)[0].lower() in PRONOUNS


def written(text: str, term: str) -> re.Match[str] | None:
    """The first word of the text that is the term, as written: ('Two Proteins bind.',
    'protein') -> the match of 'Proteins'; None when no word is."""
    return next((m for m in _WORD.finditer(text) if content_words(m[0]) == {term}), None)


def surface(text: str, term: str) -> str:
    """The term as the text first writes it: ('Two proteins bind.', 'protein') -> 'proteins'."""
    m = written(text, term)
    if m is None:
        return term
    return m[0] if m[0][:2].isupper() else m[0].lower()


def blank_target(sentence: str, terms: list[str]) -> tuple[int, int] | None:
    """Where the fact to blank is in a sentence: its first number (with a % or the word after
    it), else the first of `terms` it mentions, as written there; None for a short or
    pronoun-led sentence."""
    if len(sentence.split()) < MIN_CLAUSE_WORDS or _pronoun_led(sentence):
        return None
    if m := _NUMBER.search(sentence):
        unit = (m["unit"] or "").strip()
        if unit.isalpha() and (not content_words(unit) or unit.endswith(("ing", "ed"))):
            return m.span("number")  # "7 to 10", "1958 using": the number alone
        return m.span()
    return next((m.span() for term in terms if (m := written(sentence, term))), None)


def blanks(text: str, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (sentence with its fact as ____, fact), in sentence order."""
    terms = key_terms(text, BLANK_TERMS)
    out = []
    for sentence in sentences(text):
        if len(out) == limit:
            break
        if span := blank_target(sentence, terms):
            start, end = span
            out.append((sentence[:start] + BLANK + sentence[end:], sentence[start:end]))
    return out


def mine(passage: Passage, kinds: Iterable[str] = KINDS, per_kind: int = 1) -> list[Record]:
    """Reading-comprehension records for one passage: at most `per_kind` of each kind."""
    sents = sentences(passage.text)
    out: list[Record] = []

    def add(kind: str, instruction: str, output: str, input_text: str = "") -> None:
        out.append(
            Record(
                instruction=instruction,
                input=input_text,
                output=output,
                passages=(passage.id,),
                meta={"origin": "reading", "reading_kind": kind, "source_passage": passage.id},
            )
        )

    wanted = set(kinds)
    if "continue" in wanted and len(sents) >= 3:
        head = max(1, len(sents) // 3)
        add("continue", "Continue the text.", " ".join(sents[head:]), " ".join(sents[:head]))
    if "keyword" in wanted:
        for term in key_terms(passage.text, per_kind):
            said = [s for s in sents if _mentions(s, term)][:2]
            if said:
                question = f"Explain what is known about {surface(passage.text, term)}."
                add("keyword", question, " ".join(said))
    for kind, pattern in (("cause", _CAUSE), ("effect", _EFFECT)):
        if kind not in wanted:
            continue
        found = 0
        for sentence in sents:
            m = pattern.match(sentence)
            if not m or found >= per_kind:
                continue
            a, b, connective = _clause(m["a"]), _clause(m["b"]), m["c"].strip(" ,;")
            if len(a.split()) < MIN_CLAUSE_WORDS or len(b.split()) < 2:
                continue  # "Necrosis, by contrast, causes ..." has no claim before the connective
            if _pronoun_led(a):
                continue  # "it is 100% ..." needs the sentence before it
            if kind == "cause":
                lead = "Because" if connective == "because" else f"It is {connective}"
                add(kind, f"Explain why {_lower_first(a)}.", f"{lead} {b}.")
            else:
                add(kind, f"{_upper_first(a)}. What is the result?", f"{_upper_first(b)}.")
            found += 1
    if "summary" in wanted and len(sents) >= 3:
        add("summary", "Summarize the passage in one sentence.", sents[0], passage.text)
    if "blank" in wanted:
        for blanked, fact in blanks(passage.text, per_kind):
            add("blank", f"Fill in the blank: {blanked}", f"{fact}.")
    return out


def mine_corpus(
    passages: Iterable[Passage], kinds: Iterable[str] = KINDS, per_kind: int = 1
) -> list[Record]:
    """`mine` over passages, in order; records with the same (instruction, input) kept once."""
    seen: set[str] = set()
    out: list[Record] = []
    kinds = tuple(kinds)
    for passage in passages:
        for record in mine(passage, kinds, per_kind):
            if record.id not in seen:
                seen.add(record.id)
                out.append(record)
    return out
