"""How the JSON store reads its history file for ``history``, ``export`` and ``report``: one
parse of the whole file, lines that cannot match skipped before parsing, and the same events and
the same errors as a line-by-line read (a corrupt line is named by its number)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl.core import events as ev
from budgetctl.core import rules
from budgetctl.errors import CorruptStateError
from budgetctl.store import history
from budgetctl.store.interface import ChargeRequest
from budgetctl.store.json_store import JsonStore

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
USERS = ("alice", "bob", "zoë", 'q"uote')


def _store(tmp_path: Path) -> JsonStore:
    store = JsonStore("p", tmp_path, lock_timeout=5)
    for user in USERS:
        store.create(rules.new_budget(user, Decimal(100), T0 - timedelta(days=1)))
    for number in range(40):
        moment = T0 + timedelta(minutes=7 * number, microseconds=number * 1000)
        store.charge(ChargeRequest(USERS[number % 4], Decimal(number + 1).scaleb(-3)), moment)
    return store


def _slow(
    store: JsonStore, user: str | None, since: datetime | None, until: datetime | None
) -> list[ev.Event]:
    """What the store must return: every event, filtered one by one."""
    return [
        e
        for e in store.history()
        if (user is None or getattr(e, "user", None) == user)
        and (since is None or (e.time is not None and e.time >= since))
        and (until is None or (e.time is not None and e.time < until))
    ]


@pytest.mark.parametrize("user", [None, *USERS])
@pytest.mark.parametrize(
    ("since", "until"),
    [
        (None, None),
        (T0 + timedelta(minutes=70), None),
        (None, T0 + timedelta(minutes=70, microseconds=10_000)),
        (T0 + timedelta(minutes=7, microseconds=1000), T0 + timedelta(minutes=140)),
    ],
)
def test_a_filtered_read_is_the_events_filtered_one_by_one(
    tmp_path: Path, user: str | None, since: datetime | None, until: datetime | None
) -> None:
    store = _store(tmp_path)
    assert store.history(user, None, since, until) == _slow(store, user, since, until)
    limited = store.history(user, 3, since, until)
    assert limited == _slow(store, user, since, until)[:3]


def test_lines_written_with_spaces_are_read_too(tmp_path: Path) -> None:
    """A line written by another encoder (spaces after the colons, non-ASCII escaped) cannot be
    sieved by its text: it is kept and decided on its parsed value."""
    path = tmp_path / "h.jsonl"
    charges = [
        ev.Charge(T0 + timedelta(hours=k), ("zoë", "bob")[k % 2], Decimal(k)) for k in range(6)
    ]
    path.write_text("".join(json.dumps(c.to_json()) + "\n" for c in charges))
    size = path.stat().st_size
    found = history.read_events([path], size, "bob", None, T0 + timedelta(hours=2), None)
    assert [e["time"] for e in found] == ["2026-05-01T05:00:00Z", "2026-05-01T03:00:00Z"]
    found = history.read_events([path], size, "zoë", None, None, T0 + timedelta(hours=3))
    assert [e["time"] for e in found] == ["2026-05-01T02:00:00Z", "2026-05-01T00:00:00Z"]


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.history(),
        lambda s: s.history("alice"),
        lambda s: s.history(None, None, T0, None),
        lambda s: s.history("bob", 2),
    ],
)
def test_a_corrupt_line_is_named_whatever_the_read(tmp_path: Path, read: object) -> None:
    store = _store(tmp_path)
    path = store.history_path
    lines = path.read_bytes().splitlines(keepends=True)
    number = len(lines) - 2  # the line before last: every read reaches it
    lines[number - 1] = b"X" + lines[number - 1][1:]  # same size: the state still counts it all
    path.write_bytes(b"".join(lines))
    with pytest.raises(CorruptStateError, match=f"line {number} is not valid JSON"):
        read(store)  # type: ignore[operator]
