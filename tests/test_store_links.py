"""Closed periods live in the history, linked from each record; the state file does not grow."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl import Ledger
from budgetctl.core.rules import RECENT_PERIODS
from budgetctl.errors import CorruptStateError
from budgetctl.store import history
from tests.helpers import T0, Clock


def ledger(data_dir: Path, clock: Clock) -> Ledger:
    return Ledger("links", data_dir, clock=clock)


def state(data_dir: Path) -> dict:
    return json.loads((data_dir / "links.json").read_bytes())


def test_periods_are_read_back_from_the_history_newest_first(data_dir: Path) -> None:
    clock = Clock(T0)
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    book.create("bob", "10", duration="daily")
    sizes = []
    for day in range(20):
        book.charge_cost("alice", Decimal(day) / 100)
        book.charge_cost("bob", "1")
        clock.now += timedelta(days=1)
        book.reset_due()
        sizes.append((data_dir / "links.json").stat().st_size)
    # 20 roll-overs each, and the state file is the size it was after the first
    assert max(sizes) - min(sizes) <= 16, sizes
    assert "periods" not in state(data_dir)["users"]["alice"]
    periods = book.get("alice").recent_periods
    assert len(periods) == RECENT_PERIODS
    assert [p.spent for p in periods] == [Decimal(d) / 100 for d in range(19, 7, -1)]
    older_newer = zip(periods[1:], periods[:-1], strict=True)  # newest first, one after another
    assert all(older.end == newer.start for older, newer in older_newer)
    assert all(p.spent == 1 for p in book.get("bob").recent_periods)


def test_a_charge_keeps_the_link_and_a_replace_starts_afresh(data_dir: Path) -> None:
    clock = Clock(T0)
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    book.charge_cost("alice", "2")
    book.reset(["alice"])
    link = state(data_dir)["users"]["alice"]["last_period"]
    book.charge_cost("alice", "1")
    book.set("alice", budget="20")
    assert state(data_dir)["users"]["alice"]["last_period"] == link
    assert [p.spent for p in book.get("alice").recent_periods] == [Decimal(2)]
    book.create("alice", "5", replace=True)
    assert "last_period" not in state(data_dir)["users"]["alice"]
    assert book.get("alice").recent_periods == ()


def test_a_period_shown_rolled_over_comes_first(data_dir: Path) -> None:
    clock = Clock(T0)
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    book.charge_cost("alice", "3")
    clock.now += timedelta(days=1)
    book.reset_due()
    book.charge_cost("alice", "4")
    clock.now += timedelta(days=1)  # ended, not yet rolled over on disk
    spent = [p.spent for p in book.get("alice").recent_periods]
    assert spent == [Decimal(4), Decimal(3)]


def test_the_cap_is_linked_too(data_dir: Path) -> None:
    clock = Clock(T0)
    book = ledger(data_dir, clock)
    book.create("alice", "10")
    book.set_cap("100", duration="daily")
    for _ in range(3):
        book.charge_cost("alice", "1.5")
        clock.now += timedelta(days=1)
        book.reset_due()
    cap = book.cap()
    assert cap is not None
    assert [p.spent for p in cap.recent_periods] == [Decimal("1.5")] * 3


@pytest.mark.parametrize("link", [10**9, -1, "7", 0])
def test_a_broken_link_is_reported_not_followed(data_dir: Path, link: object) -> None:
    clock = Clock(T0)
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    clock.now += timedelta(days=1)
    book.reset_due()
    doc = state(data_dir)
    doc["users"]["alice"]["last_period"] = link  # 0 is the 'create' event, not a period
    (data_dir / "links.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptStateError):
        book.get("alice")


def _event(user: str, time: str | None, prev: object, spent: str = "1.5") -> dict[str, object]:
    return {
        "type": "period",
        "time": time,
        "user": user,
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-02-01T00:00:00Z",
        "spent": spent,
        "budget": "10",
        "reason": "rollover",
        "prev": prev,
    }


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(min_size=1),
    time=st.none() | st.text(),
    prev=st.none() | st.integers(min_value=0) | st.booleans() | st.floats(allow_nan=False),
    spent=st.text(),
)
def test_a_closed_periods_line_is_what_the_general_encoder_writes(
    user: str, time: str | None, prev: object, spent: str
) -> None:
    """A reset-due writes one ``period`` line per due budget on a path of its own
    (history._period_line): byte for byte what ENCODER writes, whatever the values."""
    event = _event(user, time, prev, spent)
    fast = history._period_line(dict(event))
    general = history.ENCODER.encode(event) + "\n"
    assert fast in (None, general)
    if prev is None or type(prev) is int:
        assert fast == general


def test_period_lines_are_linked_by_byte_offsets() -> None:
    """Each line's ``prev`` is its budget's previous period, and each record's link the byte
    offset of its new line (a user named outside ASCII takes more bytes than characters)."""
    doc = {"users": {"zoë": {"last_period": 7}, "ann": {}}}
    events = [_event("zoë", None, None), _event("ann", None, None), _event("zoë", None, None)]
    data = history.link_and_encode(events, doc, 100)
    lines = data.splitlines(keepends=True)
    assert [json.loads(line)["prev"] for line in lines] == [7, None, 100]
    assert doc["users"]["ann"]["last_period"] == 100 + len(lines[0])
    assert doc["users"]["zoë"]["last_period"] == 100 + len(lines[0]) + len(lines[1])
    assert len(lines[0]) > len(lines[0].decode())
