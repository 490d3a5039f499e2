from generators.records import Record, content_id


def test_content_id_is_stable_and_length_prefixed():
    assert content_id("a", "b") == content_id("a", "b")
    assert content_id("ab", "c") != content_id("a", "bc")
    assert len(content_id("x")) == 16


def test_record_id_from_instruction_and_input():
    a = Record(instruction="Explain X.", input="", output="one")
    b = Record(instruction="Explain X.", input="", output="two")
    c = Record(instruction="Explain X.", input="ctx")
    assert a.id == b.id != c.id


def test_drop_keeps_lineage_and_does_not_mutate():
    rec = Record(instruction="Q", meta={"seed_ids": ["s1"]})
    dropped = rec.drop("heuristics", "too_short")
    assert not rec.dropped and dropped.dropped
    assert dropped.meta == {
        "seed_ids": ["s1"],
        "dropped_by": "heuristics",
        "drop_reason": "too_short",
    }
    assert rec.meta == {"seed_ids": ["s1"]}


def test_round_trip_through_dict():
    rec = Record(instruction="Q", input="I", output="O", passages=["p1", "p2"], meta={"score": 4})
    back = Record.from_dict(rec.to_dict())
    assert back == rec and back.passages == ("p1", "p2")
    assert '"passages": ["p1", "p2"]' in rec.to_json()
