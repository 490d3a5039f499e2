"""Closed-book fact rows: a passage's atomic facts, found by rules (no LLM), each restated in
several forms with no passage in the prompt, so that a model trained on them answers from what it
stored, not from what it can copy (knowledge, not reading).

Why: facts are learned when a pretraining set restates them in varied forms (Allen-Zhu & Li,
Physics of Language Models 3.1); relations between a document's entities teach more of it than
the document alone (EntiGraph, Yang et al. 2024, synthetic continued pretraining); and a passage in
the prompt lets the model copy instead of store ("contextual shadowing").

A fact is one span of one sentence (at most one per sentence, pronoun-led and short sentences
skipped, as reading's blank does), by the first rule that finds one:
    number      the first quantity: "7 to 10 nanometers", "3.5 to 5.0 mmol/L", "25%", a year after
                "in"; not a number inside a name ("CYP2C19", "COVID-19") or after a noun
                ("chromosome 9", "type 2"), and a bare number only before punctuation or a
                function word ("a score of 13 to 15,")
    definition  "X is/are a/an/the Y" at the sentence start (X at most 6 words) -> X
    term        a capitalised multi-word name that is not the sentence's first word ("Singer and
                Nicolson"), else the first of the passage's key terms the sentence mentions

Forms (`FORMS`): question (wh-questions made by rules, answer + "."), statement ("State one fact
about <topic>." -> the sentence), cloze (reading's blank for the fact's span), notes (one per
passage: its fact sentences as a bulleted list, seeded order unlike the passage's), relation
("How are <A> and <B> related?" -> the sentences naming both key terms), passage (one per passage:
"Write a short passage on <topic>." -> the passage whole: the facts in their context, as continued
pretraining reads them; the passage is the answer, never in the prompt).

Questions: in-situ (the span as "how many <unit>", "what percentage", "in what year", "what
value" for a bare number, "what" for a term), then fronted ("Who or what <rest>?" for a subject
term, else "Which figure/year/term completes this statement: <sentence with ____>?").

Not handled: facts spanning sentences, numbers written as words, question inversion ("did ...";
in-situ questions keep the statement's word order), who/what choice by entity type, part of
speech (a key term that is a modifier or verb, "blood what", can still slip through).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, get_args

from generators import reading
from generators.corpus import Passage
from generators.records import Record
from generators.text import content_words

Form = Literal["question", "statement", "cloze", "notes", "relation", "passage"]
FORMS: tuple[str, ...] = get_args(Form)
DEFAULT_FORMS = FORMS[:4]  # relation and passage are opt-in
FACT_TERMS = 3  # key terms a term fact may be (as reading's BLANK_TERMS)
RELATION_TERMS = 4  # key terms paired for relation rows
TOPIC_TERMS = 8  # key terms a statement's topic may be
RELATION_SENTENCES = 2  # sentences answering one relation question
NOTES_MIN_FACTS = 2  # a notes row needs facts to reorder
DEFINITION_WORDS = 6  # the longest "X" of "X is a Y"
YEARS = range(1500, 2100)  # a bare 4-digit number after "in" in this range is a year
_NUM = r"\d+(?:[.,]\d+)*"
# reading._NUMBER widened: "7 to 10"/"5-10" ranges, units with a capital or slash ("mmHg",
# "mg/dL"); not after a letter, digit, sign or "*" ("CYP2C19", "COVID-19", "+20", "HLA-B*57")
_QUANTITY = re.compile(
    rf"(?<![\w.\-+/'*:^−])(?P<number>{_NUM}(?:(?:\s+to\s+|[-–]){_NUM})?)"
    r"(?:(?P<percent>%)|\s(?P<unit>amino acids|base pairs|live births|[A-Za-zµ]+(?:/[A-Za-z]+)*))?"
    r"(?![\w\-'/^*:%])"
)
SHORT_UNITS = frozenset("g kg mg mL L dL ms nm fL mm cm mmHg Hz MHz kDa mSv IU U".split())
# words seen after a number in the demo corpus that are verbs, not units ("a score of 8 predicts")
NOT_UNITS = frozenset("means predicts indicates suggests converts calls specify minus plus".split())
# a bare number ("13 to 15") counts only before one of these or punctuation
BARE_FOLLOWERS = frozenset("and or at on for with by is are was were per of than".split())
BARE_ENDS = ("", ", ", ". ", ".", "; ", ")")  # what may follow a bare number: not "47,XXY"
# verbs before a count: a number after any other content word names something ("chromosome 9")
QUANTITY_VERBS = frozenset(
    "around exceeds exceed contains contain encodes encode lasts last takes take adds "
    "affects affect reaches reach totals equals".split()
)
# endings of adjectives and verb forms, which make poor topics ("ventricular", "secreting")
NOT_NOUN_ENDINGS = ("ed", "ing", "al", "ar", "ary", "ic", "ous", "ive", "ory", "ly")
GENERIC_HEADS = frozenset("best main most first key only usual major commonest classic".split())
OPENERS = frozenset("when if although because while as since after before once".split())
_DEFINITION = re.compile(
    rf"^(?:(?:The|A|An) )?(?P<x>[^\s,;:()]+(?: [^\s,;:()]+){{0,{DEFINITION_WORDS - 1}}}?) "
    r"(?:is|are) (?P<article>a|an|the) "
)
# two or more capitalised words, joined by spaces or "and": "Singer and Nicolson", "Nobel Prize"
_NAME = re.compile(r"(?<![\w\-])[A-Z][a-z]+(?:(?: and | )[A-Z][a-z]+)+\b(?!['\-])")
# a genus and species: "Streptococcus pyogenes", "Escherichia coli"
_BINOMIAL = re.compile(r"(?<![\w\-])[A-Z][a-z]{3,} [a-z]{3,}(?:ae|ii|i|is|us|um|es|a)\b")


@dataclass(frozen=True)
class Fact:
    """One fact: `answer` is `sentence[start:end]` as the corpus writes it."""

    id: str  # f"{passage_id}-f{index}", index from 0 in extraction order
    passage_id: str
    sentence: str
    answer: str
    kind: str  # "number" | "term" | "definition"
    start: int
    end: int


def _is_year(before: str, answer: str) -> bool:
    """('described in ', '1972') -> True; ('the ', '2020'), ('in ', '1972 patients') -> False."""
    return answer.isdigit() and int(answer) in YEARS and before.split()[-1:] in (["in"], ["In"])


def _names_something(sentence: str, start: int, counted: bool) -> bool:
    """'on chromosome 9' -> True (a name's part); 'roughly 7', 'encodes 37' -> False; after a
    past participle only a `counted` number (one with a unit) is a quantity: 'killed 40 people'."""
    before = sentence[:start].split()
    word = before[-1].lower().strip("(,") if before else ""
    if word.endswith("ly") or word in QUANTITY_VERBS or (counted and word.endswith("ed")):
        return False
    return bool(content_words(word))


def _unit(word: str | None) -> bool:
    """'nanometers', 'mg', 'mmol/L' -> True; 'to', 'using', 'predicts', 'Nobel' -> False."""
    if not word:
        return False
    if "/" in word or word in SHORT_UNITS:
        return True
    if not word.islower() or word in NOT_UNITS or word.endswith(("ing", "ed")):
        return False
    return bool(content_words(word))


def number_span(sentence: str) -> tuple[int, int] | None:
    """The first quantity with its % or unit: 'about 7 to 10 nanometers thick' -> the span of
    '7 to 10 nanometers'; a bare number before a verb, a year not after 'in' -> the next one."""
    for m in _QUANTITY.finditer(sentence):
        counted = bool(m["percent"] or _unit(m["unit"]))
        if counted and _is_year("in", m["number"]) and not m["unit"].endswith("s"):
            continue  # a year as a modifier: "a 1976 outbreak", not a count
        if _names_something(sentence, m.start(), counted):
            continue
        if counted:
            return m.span()
        if _is_year(sentence[: m.start()], m["number"]):
            return m.span("number")
        after = sentence[m.end("number") :]
        follower = after.split(" ", 2)[1] if after.startswith(" ") else ""
        ends = after in BARE_ENDS or after.startswith(BARE_ENDS[1:])
        if not _is_year("in", m["number"]) and (ends or follower in BARE_FOLLOWERS):
            return m.span("number")  # not a year after another word: "the 2020 Nobel Prize"
    return None


def definition_span(sentence: str) -> tuple[int, int] | None:
    """'Mitochondria are double-membraned organelles ...' -> the span of 'Mitochondria'."""
    m = _DEFINITION.match(sentence)
    if not m or m["x"].split()[0].lower() in reading.PRONOUNS | OPENERS:
        return None
    if m.start("x") > 0 and (m["article"] == "the" or m["x"].split()[0] in GENERIC_HEADS):
        return None  # "The key measurement is the MIC": the general names the particular
    return m.span("x")


def term_span(sentence: str, terms: list[str]) -> tuple[int, int] | None:
    """A capitalised name after the first word ('... by Singer and Nicolson'), else the first of
    `terms` the sentence mentions, as written there."""
    for pattern in (_NAME, _BINOMIAL):
        if m := next((m for m in pattern.finditer(sentence) if m.start() > 0), None):
            return m.span()
    return next(
        (m.span() for t in terms if (m := reading.written(sentence, t)) and _noun(sentence, m)),
        None,
    )


def _noun(sentence: str, m: re.Match[str]) -> bool:
    """Whether a term as written stands alone: not a verb form ('infected'), a modifier
    ('mitochondrial matrix') or part of a named acronym ('Severe combined immunodeficiency
    (SCID)', 'Vitamin D')."""
    after = sentence[m.end() :]
    following = after.split(" ", 2)[1] if after.startswith(" ") else ""
    if m[0].endswith(("ed", "ing")) or following[:1] == "(" or following[:1].isupper():
        return False
    return not (following.islower() and content_words(following))


def noun_terms(text: str, limit: int) -> list[str]:
    """reading.key_terms that read as nouns: not 'ventricular' or 'secreting', and standing alone
    somewhere in the text (not only as 'messenger' of 'messenger rna')."""
    sents = reading.sentences(text)
    return [
        t
        for t in reading.key_terms(text, limit * 3)
        if not t.endswith(NOT_NOUN_ENDINGS)
        and any((m := reading.written(s, t)) and _noun(s, m) for s in sents)
    ][:limit]


def extract(passage: Passage, limit: int) -> list[Fact]:
    """Up to `limit` facts, at most one per sentence, in sentence order."""
    terms = reading.key_terms(passage.text, FACT_TERMS)
    facts: list[Fact] = []
    for sentence in reading.sentences(passage.text):
        if len(facts) >= limit:
            break
        if len(sentence.split()) < reading.MIN_CLAUSE_WORDS or reading._pronoun_led(sentence):
            continue
        for kind, span in (
            ("number", number_span(sentence)),
            ("definition", definition_span(sentence)),
            ("term", term_span(sentence, terms)),
        ):
            if span:
                start, end = span
                answer, fact_id = sentence[start:end], f"{passage.id}-f{len(facts)}"
                facts.append(Fact(fact_id, passage.id, sentence, answer, kind, start, end))
                break
    return facts


def _record(instruction: str, output: str, passage_id: str, fact_id: str, form: str) -> Record:
    meta = {"origin": "facts", "fact_id": fact_id, "fact_form": form, "source_passage": passage_id}
    return Record(instruction, "", output, (passage_id,), meta)


def _ask(text: str, tail: str = "?") -> str:
    """'It is 7 nm thick.' -> 'It is 7 nm thick?' (the final . ! or ? replaced by `tail`)."""
    return text.rstrip().rstrip(".!?") + tail


def _blanked(fact: Fact) -> str:
    return fact.sentence[: fact.start] + reading.BLANK + fact.sentence[fact.end :]


def _is_subject(fact: Fact) -> bool:
    """The span opens the sentence, or follows only a leading 'The'/'A'/'An'."""
    return fact.sentence[: fact.start] in ("", "The ", "A ", "An ")


def _year_fact(fact: Fact) -> bool:
    return fact.kind == "number" and _is_year(fact.sentence[: fact.start], fact.answer)


def wh_phrase(fact: Fact) -> str:
    """The question words for a fact: '7 to 10 nanometers' -> 'how many nanometers', '25%' ->
    'what percentage', a year -> 'what year', '13 to 15' -> 'what value', a term -> 'what'."""
    if fact.kind != "number":
        return "what"
    if fact.answer.endswith("%"):
        return "what percentage"
    if _year_fact(fact):
        return "what year"
    m = _QUANTITY.fullmatch(fact.answer)
    if m and m["unit"]:
        return f"how many {m['unit']}"
    return "how many" if fact.sentence[fact.end :].startswith(" of ") else "what value"


def in_situ(fact: Fact) -> str:
    """The sentence with its fact as the question words: '... roughly how many nanometers
    thick?'; 'In 1928, Fleming ...' -> 'Fleming ... in what year?'."""
    s, wh = fact.sentence, wh_phrase(fact)
    if (
        wh == "what year" and fact.start == 3
    ):  # "In 1928, Fleming ..." -> "Fleming ... in what year?"
        return _ask(reading._upper_first(s[fact.end :].lstrip(", ")), " in what year?")
    if _is_subject(fact):
        return _ask(reading._upper_first(wh) + s[fact.end :])
    return _ask(s[: fact.start] + wh + s[fact.end :])


def fronted(fact: Fact) -> str:
    """'Who or what <the rest>?' for a subject term, else 'Which figure/year/term completes this
    statement: <the sentence with ____>?'."""
    if fact.kind != "number" and _is_subject(fact):
        return _ask("Who or what" + fact.sentence[fact.end :])
    label = "term" if fact.kind != "number" else "year" if _year_fact(fact) else "figure"
    return f"Which {label} completes this statement: {_ask(_blanked(fact))}"


def question_records(fact: Fact, phrasings: int = 2) -> list[Record]:
    """Up to `phrasings` distinct wh-questions (in-situ, then fronted) -> the answer."""
    asked = list(dict.fromkeys((in_situ(fact), fronted(fact))))[:phrasings]
    return [_record(q, f"{fact.answer}.", fact.passage_id, fact.id, "question") for q in asked]


def cloze_record(fact: Fact) -> Record:
    """Reading's blank for the fact: 'Fill in the blank: <sentence with ____>' -> answer."""
    instruction = f"Fill in the blank: {_blanked(fact)}"
    return _record(instruction, f"{fact.answer}.", fact.passage_id, fact.id, "cloze")


def topics(facts: list[Fact], text: str) -> list[str | None]:
    """A statement topic per fact: a key term of its sentence other than its answer, as the
    sentence writes it, not one an earlier fact took (a repeat would repeat the instruction);
    else the passage's first key term once; None when every candidate is taken."""
    terms = noun_terms(text, TOPIC_TERMS)
    taken: set[str] = set()
    out: list[str | None] = []
    for fact in facts:
        avoid = content_words(fact.answer)
        mentioned = [t for t in terms if reading._mentions(fact.sentence, t) and t not in avoid]
        options = [reading.surface(fact.sentence, t) for t in mentioned]
        options += [reading.surface(text, t) for t in terms[:1]]
        topic = next((t for t in options if t.lower() not in taken), None)
        if topic:
            taken.add(topic.lower())
        out.append(topic)
    return out


def statement_record(fact: Fact, topic: str) -> Record:
    """'State one fact about <topic>.' -> the fact's sentence."""
    instruction = f"State one fact about {topic}."
    return _record(instruction, fact.sentence, fact.passage_id, fact.id, "statement")


def _common(term: str) -> str:
    """'Lung cancer' -> 'lung cancer'; names keep their capitals: 'Tay-Sachs disease',
    'Pneumocystis jirovecii', 'ATP'."""
    return term if re.search(r"[A-Z]", term[1:]) or _BINOMIAL.fullmatch(term) else term.lower()


def passage_topic(passage: Passage, facts: list[Fact]) -> str | None:
    """The first definition's term, else the passage's first noun key term, else None."""
    defined = [_common(f.answer) for f in facts if f.kind == "definition"]
    terms = defined[:1] or [reading.surface(passage.text, t) for t in noun_terms(passage.text, 1)]
    return terms[0] if terms else None


def notes_record(passage: Passage, facts: list[Fact], seed: int = 0) -> Record | None:
    """'Write study notes on <topic>.' -> '- <fact sentence>' lines, in a seeded order other than
    the passage's (topic: `passage_topic`); None below NOTES_MIN_FACTS facts or without a topic."""
    topic = passage_topic(passage, facts)
    if len(facts) < NOTES_MIN_FACTS or not topic:
        return None
    lines = [f"- {fact.sentence}" for fact in facts]
    order = lines[:]
    random.Random(f"notes:{seed}:{passage.id}").shuffle(order)
    if order == lines:  # restated, not copied: never the passage's own order
        order = order[1:] + order[:1]
    instruction = f"Write study notes on {topic}."
    return _record(instruction, "\n".join(order), passage.id, f"{passage.id}-notes", "notes")


def passage_record(passage: Passage, facts: list[Fact]) -> Record | None:
    """'Write a short passage on <topic>.' -> the passage's text (topic: `passage_topic`); None
    without a topic."""
    topic = passage_topic(passage, facts)
    if not topic:
        return None
    instruction = f"Write a short passage on {topic}."
    fact_id = f"{passage.id}-passage"
    return _record(instruction, passage.text.strip(), passage.id, fact_id, "passage")


def relation_records(passage: Passage, limit: int) -> list[Record]:
    """'How are <A> and <B> related?' -> the (at most 2) sentences naming both, for up to
    `limit` pairs of the passage's noun key terms (EntiGraph-like)."""
    text = passage.text
    sents = [s for s in reading.sentences(text) if not reading._pronoun_led(s)]
    out: list[Record] = []
    for a, b in combinations(noun_terms(text, RELATION_TERMS), 2):
        both = [s for s in sents if reading._mentions(s, a) and reading._mentions(s, b)]
        if both and len(out) < limit:
            asked = f"How are {reading.surface(text, a)} and {reading.surface(text, b)} related?"
            answer = " ".join(both[:RELATION_SENTENCES])
            out.append(_record(asked, answer, passage.id, f"{passage.id}-r{len(out)}", "relation"))
    return out


def fact_records(
    passage: Passage,
    forms: Iterable[str] = DEFAULT_FORMS,
    limit: int = 6,
    phrasings: int = 2,
    seed: int = 0,
) -> list[Record]:
    """Closed-book records for one passage's facts, in the order of `FORMS`."""
    wanted = set(forms)
    if unknown := wanted - set(FORMS):
        raise ValueError(f"unknown fact forms {sorted(unknown)}; known: {FORMS}")
    facts = extract(passage, limit)
    out: list[Record] = []
    if "question" in wanted:
        out += [r for fact in facts for r in question_records(fact, phrasings)]
    if "statement" in wanted:
        chosen = topics(facts, passage.text)
        out += [statement_record(f, t) for f, t in zip(facts, chosen, strict=True) if t]
    if "cloze" in wanted:
        out += [cloze_record(fact) for fact in facts]
    if "notes" in wanted and (notes := notes_record(passage, facts, seed)):
        out.append(notes)
    if "relation" in wanted:
        out += relation_records(passage, limit)
    if "passage" in wanted and (whole := passage_record(passage, facts)):
        out.append(whole)
    return out


def facts_corpus(
    passages: Iterable[Passage],
    forms: Iterable[str] = DEFAULT_FORMS,
    limit: int = 6,
    phrasings: int = 2,
    seed: int = 0,
) -> list[Record]:
    """`fact_records` over passages, in order; records with the same id kept once."""
    forms, kept = tuple(forms), {}
    for passage in passages:
        for record in fact_records(passage, forms, limit, phrasings, seed):
            kept.setdefault(record.id, record)
    return list(kept.values())
