"""Seed tasks: the handful of human-written tasks that generation bootstraps from.

Three formats, picked by extension and, for .jsonl, per line:

- Self-Instruct JSONL (a line with "instances"), as in self-instruct's `seed_tasks.jsonl`:
  `{"id", "name", "instruction", "instances": [{"input", "output"}], "is_classification"}`.
  `name` and other keys are ignored; `id` defaults to "seed_<line>".
- Our own JSONL schema, one object per line, unknown keys are errors (a typo must not drop data):
  `{"instruction": str (required, non-empty), "input": str?, "output": str?, "id": str?,
  "is_classification": bool?}`; `id` defaults to "seed_<line>" (1-based line number); a non-empty
  input or output becomes the seed's one instance.
- Alpaca-style .json: one JSON list of `{"instruction", "input"?, "output"?}`; ids are
  "alpaca_<index>" (0-based); other keys are ignored (Alpaca derivatives add their own).

Every problem is a `SelfAlignError` naming the file and line (`seeds.jsonl:7: ...`) or list item
(`seeds.json: item 3: ...`), a control character other than tab and newline in a field included
(a JSON escape such as "\\u0000" too). UTF-8 with or without BOM, LF or CRLF.
Not handled: YAML/CSV seeds, JSON lists inside .jsonl, gzip, several instances in our own schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.errors import SelfAlignError
from generators.io import decode_utf8, iter_jsonl_objects, json_type, refuse_control_chars

OWN_KEYS = frozenset({"id", "instruction", "input", "output", "is_classification"})


@dataclass(frozen=True)
class Seed:
    """One seed task; `instances` are (input, output) pairs and may be empty."""

    id: str
    instruction: str
    instances: tuple[tuple[str, str], ...]
    is_classification: bool = False


def _fail(where: str, message: str) -> SelfAlignError:
    return SelfAlignError(f"{where}: {message}")


def _instruction(obj: dict[str, Any], where: str) -> str:
    value = obj.get("instruction")
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "'instruction' must be a non-empty string")
    return value


def _text(obj: dict[str, Any], key: str, where: str, label: str = "") -> str:
    """Optional string field (default ''): `_text({"input": 1}, "input", w)` raises."""
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise _fail(where, f"'{label or key}' must be a string, got {json_type(value)}")
    return value


def _id(obj: dict[str, Any], where: str, default: str) -> str:
    value = obj.get("id", default)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "'id' must be a non-empty string")
    return value


def _is_classification(obj: dict[str, Any], where: str) -> bool:
    value = obj.get("is_classification", False)
    if not isinstance(value, bool):
        raise _fail(where, f"'is_classification' must be true or false, got {json_type(value)}")
    return value


def _one_instance(obj: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    """`input`/`output` fields as one instance, or none when both are empty."""
    pair = (_text(obj, "input", where), _text(obj, "output", where))
    return (pair,) if any(pair) else ()


def _self_instruct_seed(obj: dict[str, Any], where: str, default_id: str) -> Seed:
    instances = obj["instances"]
    if not isinstance(instances, list):
        raise _fail(where, f"'instances' must be a list, got {json_type(instances)}")
    pairs = []
    for i, inst in enumerate(instances):
        label = f"instances[{i}]"
        if not isinstance(inst, dict):
            raise _fail(where, f"'{label}' must be an object, got {json_type(inst)}")
        input_text = _text(inst, "input", where, f"{label}.input")
        pairs.append((input_text, _text(inst, "output", where, f"{label}.output")))
    return Seed(
        _id(obj, where, default_id),
        _instruction(obj, where),
        tuple(pairs),
        _is_classification(obj, where),
    )


def _own_seed(obj: dict[str, Any], where: str, default_id: str) -> Seed:
    unknown = sorted(set(obj) - OWN_KEYS)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (expected {', '.join(sorted(OWN_KEYS))})")
    return Seed(
        _id(obj, where, default_id),
        _instruction(obj, where),
        _one_instance(obj, where),
        _is_classification(obj, where),
    )


def _within(seed: Seed, where: str, max_chars: int | None) -> Seed:
    """The seed, or an error naming the first field with a control character (other than tab
    and newline) or longer than `max_chars` characters."""
    refuse_control_chars(seed.id, where, "id")
    fields = [("instruction", seed.instruction)]
    for n, (inp, out) in enumerate(seed.instances):
        fields += [(f"instances[{n}].input", inp), (f"instances[{n}].output", out)]
    for name, text in fields:
        refuse_control_chars(text, where, name)
        if max_chars is not None and len(text) > max_chars:
            raise _fail(
                where,
                f"'{name}' is {len(text):,} characters, over the limit of {max_chars:,} "
                "(recipe key seeds_max_chars)",
            )
    return seed


def _load_jsonl(path: Path, max_chars: int | None) -> list[Seed]:
    """Self-Instruct or own-schema lines; ids must be unique."""
    seeds: list[Seed] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl_objects(path):
        where = f"{path}:{lineno}"
        parse = _self_instruct_seed if "instances" in obj else _own_seed
        seed = _within(parse(obj, where, f"seed_{lineno}"), where, max_chars)
        if seed.id in first_line:
            raise _fail(where, f"duplicate id {seed.id!r} (first on line {first_line[seed.id]})")
        first_line[seed.id] = lineno
        seeds.append(seed)
    if not seeds:
        raise SelfAlignError(f"{path}: empty file")
    return seeds


def _load_json_list(path: Path, max_chars: int | None) -> list[Seed]:
    """An Alpaca-style JSON list of {instruction, input?, output?} objects."""
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise SelfAlignError(f"{path}: empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SelfAlignError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise SelfAlignError(f"{path}: expected a JSON list of seed objects, got {json_type(data)}")
    if not data:
        raise SelfAlignError(f"{path}: empty list, no seeds")
    seeds = []
    for i, item in enumerate(data):
        where = f"{path}: item {i}"
        if not isinstance(item, dict):
            raise _fail(where, f"expected a JSON object, got {json_type(item)}")
        seed = Seed(f"alpaca_{i}", _instruction(item, where), _one_instance(item, where))
        seeds.append(_within(seed, where, max_chars))
    return seeds


def load_seeds(path: str | Path, max_chars: int | None = None) -> list[Seed]:
    """Seeds from a .jsonl (Self-Instruct or own schema) or .json (Alpaca list) file, in order;
    a field longer than `max_chars` characters is an error naming its file and line."""
    path = Path(path)
    if not path.exists():
        raise SelfAlignError(f"{path}: no such file")
    if path.is_dir():
        raise SelfAlignError(f"{path}: is a directory, expected a .jsonl or .json seed file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _load_jsonl(path, max_chars)
    if suffix == ".json":
        return _load_json_list(path, max_chars)
    raise SelfAlignError(
        f"{path}: unknown seed file extension {suffix!r} (expected .jsonl or .json)"
    )
