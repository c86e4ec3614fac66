"""The store contract for a range of history (``export``, ``report``): ``history(user, limit,
since, until)`` is the events recorded at ``since`` or later and before ``until``, newest first,
the same on every store that keeps a history. Times are fixed UTC moments, some with microseconds
(a range's bounds fall inside a second as well as on one)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from budgetctl.core import events as ev
from budgetctl.core import rules
from budgetctl.core.periods import parse_duration
from budgetctl.store.interface import ChargeRequest, Store

if TYPE_CHECKING:
    from tests.contract.conftest import StoreFactory

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)
HALF = timedelta(microseconds=500_000)
D = Decimal


def _charges(store: Store) -> list[datetime]:
    """alice and bob; alice charged at T0, T0+0.5s, T0+1s, T0+1.5s, T0+2s; bob at T0+1s."""
    budget = rules.new_budget("alice", D(100), T0 - SECOND, duration=parse_duration("monthly"))
    store.create(budget)
    store.create(budget._replace(user="bob"))
    times = [T0 + k * HALF for k in range(5)]
    for number, moment in enumerate(times):
        store.charge(ChargeRequest("alice", D("0.1") * (number + 1), "gpt-4o"), moment)
    store.charge(ChargeRequest("bob", D("0.01"), "gpt-4o-mini"), T0 + SECOND)
    return times


def _times(found: list[ev.Event]) -> list[datetime | None]:
    return [event.time for event in found]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, [0, 1, 2, 3, 4]),
        (T0 + SECOND, None, [2, 3, 4]),  # since is inclusive, on a whole second
        (T0 + HALF, None, [1, 2, 3, 4]),  # and inside one
        (None, T0 + SECOND, [0, 1]),  # until is exclusive
        (None, T0 + 3 * HALF, [0, 1, 2]),
        (T0 + HALF, T0 + 3 * HALF, [1, 2]),
        (T0 + 2 * SECOND + timedelta(microseconds=1), None, []),
        (T0, T0, []),
    ],
)
def test_a_range_is_since_inclusive_until_exclusive(
    history_store_factory: StoreFactory,
    since: datetime | None,
    until: datetime | None,
    expected: list[int],
) -> None:
    store = history_store_factory()
    times = _charges(store)
    found = [e for e in store.history("alice", since=since, until=until) if ev.spend(e)]
    assert _times(found) == [times[k] for k in reversed(expected)]


def test_a_range_of_the_whole_project_with_a_limit(history_store_factory: StoreFactory) -> None:
    store = history_store_factory()
    _charges(store)
    found = store.history(since=T0 + SECOND, until=T0 + 2 * SECOND)
    assert sorted((e.time, getattr(e, "user", None)) for e in found if ev.spend(e)) == [
        (T0 + SECOND, "alice"),
        (T0 + SECOND, "bob"),
        (T0 + 3 * HALF, "alice"),
    ]
    assert sum(ev.spend(e) or 0 for e in found) == D("0.3") + D("0.4") + D("0.01")
    newest = store.history(limit=2, since=T0 - SECOND)
    assert len(newest) == 2 and newest == store.history(limit=2)
    assert store.history(since=T0 - SECOND) == [
        e for e in store.history() if e.time is not None and e.time >= T0 - SECOND
    ]
