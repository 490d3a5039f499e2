"""Recipe errors a user can act on: where the key is in the file, and what was probably meant.

    recipe.yaml:12:3: unknown key 'generate.temprature' (did you mean 'temperature'?)
    recipe.yaml:9:3: 'generate.prompts': Input should be greater than or equal to 1 (got -1)

Positions come from the YAML composer's marks (1-based line and column of the key); a key that
came from `--set` or a recipe given as a dict has none, and its error names the source alone.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def yaml_positions(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """(key path) -> (line, column) of every mapping key and list item of a YAML document.

    yaml_positions("a:\\n  b: 1\\n") == {("a",): (1, 1), ("a", "b"): (2, 3)}
    """
    import yaml

    positions: dict[tuple[str, ...], tuple[int, int]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            children = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
            items = [((*path, str(k.value)), k, v) for k, v in children]
        elif isinstance(node, yaml.SequenceNode):
            items = [((*path, str(i)), v, v) for i, v in enumerate(node.value)]
        else:
            return
        for child, at, value in items:
            positions[child] = (at.start_mark.line + 1, at.start_mark.column + 1)  # last wins
            walk(value, child)

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except yaml.YAMLError:  # the recipe loaded, so this does not happen; positions are optional
        return {}
    return positions


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (X, X | None, list[X]), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def known_keys(model: type[BaseModel], parents: tuple[str, ...]) -> list[str]:
    """The field names of the section at `parents` (list indices skipped); [] if none."""
    current: type[BaseModel] | None = model
    for part in parents:
        if part.isdigit():
            continue
        field = current.model_fields.get(part) if current else None
        current = _submodel(field.annotation) if field else None
    return list(current.model_fields) if current else []


def did_you_mean(model: type[BaseModel], loc: tuple[str, ...]) -> str:
    """The tail "(did you mean 'x'?)" for a misspelt key at `loc`, or an empty string."""
    close = difflib.get_close_matches(loc[-1], known_keys(model, loc[:-1]), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def format_error(
    source: str,
    err: ValidationError,
    model: type[BaseModel],
    positions: dict[tuple[str, ...], tuple[int, int]] | None = None,
) -> str:
    """The first validation error as one line: source[:line:col]: what is wrong with which key."""
    first = err.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    where = ".".join(loc) or "(top level)"
    positions = positions or {}
    # a missing key has no position of its own: its section's
    pos = positions.get(loc) or (positions.get(loc[:-1]) if first["type"] == "missing" else None)
    at = f"{source}:{pos[0]}:{pos[1]}" if pos else source
    if first["type"] == "extra_forbidden":
        return f"{at}: unknown key '{where}'{did_you_mean(model, loc)}"
    if first["type"] == "missing":
        return f"{at}: missing key '{where}'"
    if first["type"] == "value_error":  # our validators: the message says what is wrong
        return f"{at}: '{where}': {first['msg'].removeprefix('Value error, ')}"
    return f"{at}: '{where}': {first['msg']} (got {first.get('input')!r})"
