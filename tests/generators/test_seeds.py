import json
import re
from pathlib import Path

import pytest

from generators.errors import SelfAlignError
from generators.seeds import Seed, load_seeds

ROOT = Path(__file__).resolve().parents[2]
SELF_INSTRUCT = ROOT.parent / "shared" / "external" / "self-instruct" / "seed_tasks.jsonl"
BIOMED = ROOT / "data" / "biomed" / "seeds.jsonl"


@pytest.mark.skipif(not SELF_INSTRUCT.is_file(), reason="self-instruct seed file not present")
def test_self_instruct_seed_tasks_load_unchanged():
    seeds = load_seeds(SELF_INSTRUCT)
    raw = [json.loads(line) for line in SELF_INSTRUCT.read_text(encoding="utf-8").splitlines()]
    assert len(seeds) == 175
    expected = [
        Seed(
            r["id"],
            r["instruction"],
            tuple((i["input"], i["output"]) for i in r["instances"]),
            r["is_classification"],
        )
        for r in raw
    ]
    assert seeds == expected
    assert seeds[0].id == "seed_task_0"


def test_biomed_seeds_load():
    seeds = load_seeds(BIOMED)
    assert [s.id for s in seeds] == [f"bio_seed_{i}" for i in range(48)]
    assert sum(s.is_classification for s in seeds) == 10
    assert sum(any(inp for inp, _ in s.instances) for s in seeds) == 25
    assert seeds[0].instruction.startswith("Explain how proton pump inhibitors")


def test_alpaca_list(tmp_path):
    path = tmp_path / "alpaca.json"
    items = [
        {"instruction": "Add.", "input": "2 + 2", "output": "4", "text": "ignored"},
        {"instruction": "Say hi."},
    ]
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    assert load_seeds(path) == [
        Seed("alpaca_0", "Add.", (("2 + 2", "4"),)),
        Seed("alpaca_1", "Say hi.", ()),
    ]


def test_own_schema_defaults_ids_to_line_numbers(tmp_path):
    path = tmp_path / "own.jsonl"
    lines = [
        {"instruction": "Name a vitamin.", "output": "Vitamin C"},
        {"instruction": "Is it benign?", "input": "a mole", "id": "x", "is_classification": True},
    ]
    path.write_text(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n")
    assert load_seeds(path) == [
        Seed("seed_1", "Name a vitamin.", (("", "Vitamin C"),)),
        Seed("x", "Is it benign?", (("a mole", ""),), is_classification=True),
    ]


def test_mixed_lines_pick_format_per_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    si = {"id": "t", "name": "n", "instruction": "Do.", "instances": [], "is_classification": False}
    path.write_text(json.dumps(si) + "\n" + json.dumps({"instruction": "Also."}) + "\n")
    assert load_seeds(path) == [Seed("t", "Do.", ()), Seed("seed_2", "Also.", ())]


@pytest.mark.parametrize(
    "name, body",
    [
        ("s.jsonl", '{"instruction": "A\u00e9."}\r\n{"instruction": "B."}\r\n'),
        ("s.json", '[\r\n{"instruction": "A\u00e9."},\r\n{"instruction": "B."}\r\n]\r\n'),
    ],
)
def test_bom_and_crlf_accepted(tmp_path, name, body):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    assert [s.instruction for s in load_seeds(path)] == ["A\u00e9.", "B."]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("s.jsonl", b'{"instruction": "a"}\n{"instruction": \n', r":2: malformed JSON"),
        ("s.jsonl", b'{"instruction": "a"}\n"text"\n', r":2: expected a JSON object, got string"),
        ("s.jsonl", b'{"input": "x"}\n', r":1: 'instruction' must be a non-empty string"),
        ("s.jsonl", b'{"instruction": 3}\n', r":1: 'instruction' must be a non-empty string"),
        ("s.jsonl", b'{"instruction": "  "}\n', r":1: 'instruction' must be a non-empty"),
        (
            "s.jsonl",
            b'{"instruction": "a", "input": 1}\n',
            r":1: 'input' must be a string, got number",
        ),
        (
            "s.jsonl",
            b'{"instruction": "a", "output": null}\n',
            r":1: 'output' must be a string, got null",
        ),
        (
            "s.jsonl",
            b'{"instruction": "a", "is_classification": "no"}\n',
            r":1: 'is_classification' must be true or false",
        ),
        ("s.jsonl", b'{"instruction": "a", "id": ""}\n', r":1: 'id' must be a non-empty string"),
        ("s.jsonl", b'{"instruction": "a", "ouput": "b"}\n', r":1: unknown key 'ouput'"),
        (
            "s.jsonl",
            b'{"instruction": "a", "instances": {}}\n',
            r":1: 'instances' must be a list, got object",
        ),
        (
            "s.jsonl",
            b'{"instruction": "a", "instances": ["x"]}\n',
            r":1: 'instances\[0\]' must be an object",
        ),
        (
            "s.jsonl",
            b'{"instruction": "a", "instances": [{"input": "", "output": 2}]}\n',
            r":1: 'instances\[0\].output' must be a string",
        ),
        ("s.jsonl", b'{"instruction": "a"}\n{"instruction": "\xff"}\n', r":2: not valid UTF-8"),
        ("s.jsonl", b"\n \n", r": empty file$"),
        ("s.jsonl", b'[{"instruction": "a"}]\n', r":1: expected a JSON object, got list"),
        ("s.jsonl", b'[\n{"instruction": "a"}\n]\n', r":1: malformed JSON .*one object per line"),
        (
            "s.jsonl",
            b'{"id": "a", "instruction": "x"}\n\n{"id": "a", "instruction": "y"}\n',
            r":3: duplicate id 'a' \(first on line 1\)",
        ),
        ("s.json", b'{"instruction": "a"}', r": expected a JSON list of seed objects, got object"),
        ("s.json", b"[]", r": empty list"),
        ("s.json", b"", r": empty file"),
        ("s.json", b'[\n{"instruction": "a"},\n{"instruction": \n', r":4: malformed JSON"),
        ("s.json", b'[\n{"instruction": "a"},\n{"instruction": "\xff"}]', r":3: not valid UTF-8"),
        ("s.json", b'[{"instruction": "a"}, 5]', r": item 1: expected a JSON object, got number"),
        ("s.json", b'[{"instruction": "a"}, {"output": "b"}]', r": item 1: 'instruction' must be"),
        (
            "s.json",
            b'[{"instruction": "a", "input": ["b"]}]',
            r": item 0: 'input' must be a string, got list",
        ),
        ("s.csv", b"instruction\na\n", r": unknown seed file extension '.csv'"),
    ],
)
def test_bad_seed_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SelfAlignError, match=re.escape(str(path)) + message) as info:
        load_seeds(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SelfAlignError, match=r"nope.jsonl: no such file"):
        load_seeds(tmp_path / "nope.jsonl")
    with pytest.raises(SelfAlignError, match=r"is a directory"):
        load_seeds(tmp_path)


def test_a_seed_field_over_the_limit_names_its_line_and_the_limit(tmp_path):
    path = tmp_path / "s.jsonl"
    rows = [{"instruction": "Explain ATP."}, {"instruction": "Say.", "output": "x" * 30}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_seeds(path, max_chars=30)) == 2
    with pytest.raises(SelfAlignError, match=r"s\.jsonl:2: 'instances\[0\]\.output' is 30 "):
        load_seeds(path, max_chars=29)
