from filters.base import split
from generators.records import Record


def test_split_keeps_order_and_records_reasons():
    records = [Record(instruction=t) for t in ("short", "a long enough instruction", "tiny")]
    kept, dropped = split(
        records, "length", lambda r: "too_short" if len(r.instruction) < 10 else None
    )
    assert [r.instruction for r in kept] == ["a long enough instruction"]
    assert [(r.instruction, r.meta["dropped_by"], r.meta["drop_reason"]) for r in dropped] == [
        ("short", "length", "too_short"),
        ("tiny", "length", "too_short"),
    ]
