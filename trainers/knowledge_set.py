"""The hand-written knowledge set: multiple-choice items that each ask one fact of the corpus.

    covered     an item with a `passage_id`: its answer is stated in that corpus passage
    uncovered   `passage_id` null: a same-domain fact that no passage states; `absent_terms` are
                the answer's key terms, and none of them may occur anywhere in the corpus

    {"id": "kn-bio-001", "passage_id": "bio-001", "kind": "number",
     "question": "...?", "choices": ["...", "...", "...", "..."], "gold": 2}

Covered minus uncovered is what training on the corpus taught (a gain on both alike is style).
`check` validates a file (python -m trainers.knowledge_set check FILE --corpus CORPUS): fields,
kinds, four distinct choices, no run of COPY_RUN words of a question copied from the corpus, the
gold's words and numbers present in its passage, distractors of the gold's type (a number where
it has one) and length, gold positions balanced, and for the whole file at least one item per
passage and MIN_UNCOVERED uncovered items. `build` turns drafts ({"answer", "distractors": [3]}
in place of choices/gold) into the final form with the gold position balanced by a seeded hash.

Stdlib only (trainers.data is too): it runs before any dependency is installed. Not handled:
whether a distractor is really wrong (a person writes and reviews that), paraphrase detection
beyond exact word runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainers.data import DataError, control_char_problem

KINDS = ("number", "molecule", "organism", "gene", "person", "mechanism", "term", "place", "date")
N_CHOICES = 4
COPY_RUN = 8  # no run of 8 words of a question may appear in the corpus (the rule)
MIN_UNCOVERED = 80
GOLD_IN_PASSAGE = 0.75  # share of the gold's content words the passage must contain
LENGTH_RATIO = 2.5  # longest / shortest choice, for choices of >= SHORT characters
SHORT = 8  # below this, choices may differ by up to SHORT characters instead
EXTREME_SHARE = 0.4  # at most this share of items may have the gold as the longest choice
POSITION_SLACK = 0.1  # each gold position within n/4 +- max(2, 10% of n)
_WORD = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_STOP = frozenset(
    "the a an of and or in on at to for by with from as is are was were be been that this these "
    "those its it their than then into per about which what who how".split()
)


class KnowledgeSetError(DataError):
    """A bad item or file: the message names the file and line (a DataError, so the CLI prints
    it as one `error:` line)."""


def words(text: str) -> list[str]:
    """Lowercased word tokens: 'The 7-10 nm bilayer.' -> ['the', '7-10', 'nm', 'bilayer']."""
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def content(text: str) -> set[str]:
    """Content words (3+ letters, not stopwords, plural s off) and numbers of a text."""
    out = {_stem(w) for w in words(text) if len(w) >= 3 and w not in _STOP}
    return out | set(_NUMBER.findall(text))


def runs(tokens: list[str], n: int = COPY_RUN) -> set[tuple[str, ...]]:
    """Every run of n consecutive tokens."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _strings(value: Any, name: str = "") -> Iterator[tuple[str, str]]:
    """(field, text) of every string in a JSON value: {"choices": ["a"]} -> ('choices[0]', 'a')."""
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{name}[{i}]")


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; a bad line, or a string in it with a control
    character other than tab and newline, is an error naming file:line."""
    out = []
    # split("\n"), not splitlines(): that also splits at U+2028 and U+0085, which a JSON string
    # may hold raw, and would misnumber every later line
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise KnowledgeSetError(f"{path}:{no}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise KnowledgeSetError(f"{path}:{no}: not a JSON object")
        for field, text in _strings(obj):
            if problem := control_char_problem(text, field):
                raise KnowledgeSetError(f"{path}:{no}: {problem}")
        out.append((no, obj))
    return out


def answer_and_distractors(item: dict[str, Any]) -> tuple[str, list[str]]:
    """(gold text, the others) from either form (final: choices + gold; draft: answer +
    distractors)."""
    if "choices" in item:
        choices, gold = item["choices"], item["gold"]
        return choices[gold], [c for i, c in enumerate(choices) if i != gold]
    return item["answer"], list(item["distractors"])


def shape_problem(item: dict[str, Any]) -> str | None:
    """The first malformed field of an item, or None."""
    for key in ("id", "kind", "question"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return f"'{key}' must be a non-empty string"
    if item["kind"] not in KINDS:
        return f"kind {item['kind']!r} is not one of {', '.join(KINDS)}"
    if not item["question"].rstrip().endswith("?"):
        return "the question must end with '?'"
    pid = item.get("passage_id", "missing")
    if pid is not None and not isinstance(pid, str):
        return "'passage_id' must be a passage id or null"
    if "choices" in item:
        ch, gold = item["choices"], item.get("gold")
        if not isinstance(ch, list) or len(ch) != N_CHOICES:
            return f"'choices' must be a list of {N_CHOICES} strings"
        if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < N_CHOICES:
            return f"'gold' must be an index 0..{N_CHOICES - 1}"
    elif not isinstance(item.get("answer"), str) or not isinstance(item.get("distractors"), list):
        return "an item needs 'choices' + 'gold', or (a draft) 'answer' + 'distractors'"
    elif len(item["distractors"]) != N_CHOICES - 1:
        return f"a draft needs {N_CHOICES - 1} distractors"
    texts = [*answer_and_distractors(item)]
    texts = [texts[0], *texts[1]]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        return "every choice must be a non-empty string"
    if len({t.strip().lower() for t in texts}) != len(texts):
        return "the choices must differ from each other"
    if pid is None and not (
        isinstance(item.get("absent_terms"), list)
        and item["absent_terms"]
        and all(isinstance(t, str) and t.strip() for t in item["absent_terms"])
    ):
        return "an uncovered item (passage_id null) needs 'absent_terms', its answer's key terms"
    return None


def _length_problem(gold: str, others: list[str]) -> str | None:
    lengths = [len(gold), *map(len, others)]
    short, long = min(lengths), max(lengths)
    if long - short > SHORT and long > LENGTH_RATIO * short:
        return f"choice lengths {lengths} are unbalanced (longest > {LENGTH_RATIO}x the shortest)"
    if _NUMBER.search(gold) and not all(_NUMBER.search(o) for o in others):
        return "the gold has a number: every distractor needs one too"
    return None


def _term_in(term: str, text: str) -> bool:
    pattern = r"(?<![a-z0-9])" + re.escape(term.lower()) + r"(?![a-z0-9])"
    return re.search(pattern, text) is not None


def item_problem(
    item: dict[str, Any], corpus: dict[str, str], corpus_runs: set, corpus_lower: str
) -> str | None:
    """Why one item is bad, or None (shape, copied words, gold in passage, lengths)."""
    bad = shape_problem(item)
    if bad:
        return bad
    gold, others = answer_and_distractors(item)
    pid = item["passage_id"]
    copied = runs(words(item["question"])) & corpus_runs
    if copied:
        return f"the question copies {COPY_RUN} words of the corpus: {' '.join(min(copied))!r}"
    if pid is not None:
        if pid not in corpus:
            return f"passage_id {pid!r} is not in the corpus"
        need, have = content(gold), content(corpus[pid])
        if need and len(need & have) < GOLD_IN_PASSAGE * len(need):
            return f"the gold {gold!r} is not stated in {pid} (missing {sorted(need - have)})"
    else:
        found = [t for t in item["absent_terms"] if _term_in(t, corpus_lower)]
        if found:
            return f"uncovered, but the corpus has {found}"
    return _length_problem(gold, others)


def _set_problems(items: list[dict[str, Any]], corpus: dict[str, str], whole: bool) -> list[str]:
    """Problems of the file as a whole: gold position and length bias, coverage."""
    out = []
    final = [it for it in items if "choices" in it]
    if final:
        n, counts = len(final), Counter(it["gold"] for it in final)
        slack = max(2, POSITION_SLACK * n)
        off = {
            p: counts.get(p, 0) for p in range(N_CHOICES) if abs(counts.get(p, 0) - n / 4) > slack
        }
        if off:
            out.append(f"gold positions unbalanced: {dict(sorted(counts.items()))} of {n}")
    longest = sum(len(g) > max(map(len, o)) for g, o in map(answer_and_distractors, items))
    if items and longest > EXTREME_SHARE * len(items):
        out.append(f"the gold is the longest choice in {longest} of {len(items)} items")
    if whole:
        covered = {it.get("passage_id") for it in items}
        missing = sorted(set(corpus) - covered)
        if missing:
            out.append(f"{len(missing)} passages have no item: {missing[:5]}...")
        uncovered = sum(it.get("passage_id") is None for it in items)
        if uncovered < MIN_UNCOVERED:
            out.append(f"{uncovered} uncovered items, need at least {MIN_UNCOVERED}")
    return out


def check(path: Path, corpus_path: Path, whole: bool = True) -> list[str]:
    """Every problem of a knowledge-set file, each naming file:line (empty: the file is good)."""
    corpus = {obj["id"]: obj["text"] for _, obj in read_jsonl(corpus_path)}
    corpus_runs = set().union(*(runs(words(t)) for t in corpus.values()))
    corpus_lower = "\n".join(corpus.values()).lower()
    problems, seen, items = [], {}, []
    for no, item in read_jsonl(path):
        bad = item_problem(item, corpus, corpus_runs, corpus_lower)
        if bad is None and item["id"] in seen:
            bad = f"duplicate id {item['id']!r} (first on line {seen[item['id']]})"
        if bad:
            problems.append(f"{path}:{no}: {item.get('id', '?')}: {bad}")
            continue
        seen[item["id"]] = no
        items.append(item)
    return problems + [f"{path}: {p}" for p in _set_problems(items, corpus, whole)]


def gold_position(item_id: str, seed: int = 0) -> int:
    """A uniform, seeded position for the gold from the item id alone."""
    digest = hashlib.sha256(f"kn:{seed}:{item_id}".encode()).digest()
    return digest[0] % N_CHOICES


def build(drafts: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Drafts -> final items: the gold at a balanced position, distractors in written order.

    Positions cycle 0..3 over the items sorted by their hashed position key, so every position
    gets n/4 items (+-1) whatever the ids.
    """
    order = sorted(range(len(drafts)), key=lambda i: (gold_position(drafts[i]["id"], seed), i))
    slot = {i: rank % N_CHOICES for rank, i in enumerate(order)}
    out = []
    for i, draft in enumerate(drafts):
        choices = list(draft["distractors"])
        choices.insert(slot[i], draft["answer"])
        item = {k: v for k, v in draft.items() if k not in ("answer", "distractors")}
        out.append({**item, "choices": choices, "gold": slot[i]})
    return out


def split_items(items: list[dict[str, Any]], covered: bool | None = None) -> list[dict[str, Any]]:
    """The covered (True), uncovered (False) or all (None) items."""
    if covered is None:
        return list(items)
    return [it for it in items if (it.get("passage_id") is not None) == covered]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainers.knowledge_set")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate a knowledge-set (or draft) file")
    c.add_argument("file", type=Path)
    c.add_argument("--corpus", type=Path, required=True)
    c.add_argument("--part", action="store_true", help="a part: skip the whole-file coverage")
    b = sub.add_parser("build", help="drafts -> final items with balanced gold positions")
    b.add_argument("drafts", type=Path, nargs="+")
    b.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "check":
            problems = check(args.file, args.corpus, whole=not args.part)
            for p in problems:
                print(p)
            n = len(read_jsonl(args.file))
            print(f"{args.file}: {n} items, {len(problems)} problems", file=sys.stderr)
            return 1 if problems else 0
        drafts = [obj for path in args.drafts for _, obj in read_jsonl(path)]
        lines = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in build(drafts))
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(args.out)
        print(f"{args.out}: {len(drafts)} items")
        return 0
    except (OSError, KeyError, KnowledgeSetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
