"""The store contract for moving a project: every store that keeps a history exports a project
that every such store restores as the same project (same budgets, cap, holds, history, and the
same request ids remembered); the hosted store, which keeps no history, refuses both."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from budgetctl.core import rules
from budgetctl.core.periods import parse_duration
from budgetctl.errors import NotSupportedError, RequestIdConflictError
from budgetctl.store.interface import ChargeRequest, Store

if TYPE_CHECKING:
    from tests.contract.conftest import StoreFactory

T0 = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
DAY = timedelta(days=1)
D = Decimal


def _project(store: Store) -> datetime:
    """A project with periods closed, a cap, a hold, a deleted user and request ids; its time."""
    store.create(rules.new_budget("alice", D(5), T0, duration=parse_duration("daily")))
    store.create(rules.new_budget("bob", D(2), T0, timezone="Europe/Paris"))
    store.set_cap(T0, D(20), parse_duration("monthly"))
    store.charge(ChargeRequest("alice", D("1.25"), "gpt-4o", 100, 20, 3, "r-1"), T0)
    store.charge(ChargeRequest("bob", D("0.5")), T0)
    store.charge(ChargeRequest("alice", D("0.75"), request_id="r-2"), T0 + DAY)  # rolls over
    store.reset(["bob"], T0 + DAY)
    store.reserve("h_" + "1" * 24, "alice", D(1), timedelta(hours=1), T0 + DAY)
    store.create(rules.new_budget("carol", D(1), T0 + DAY))
    store.delete(["carol"], T0 + DAY)
    return T0 + DAY


def _seen(store: Store, now: datetime) -> tuple[object, ...]:
    view = store.view(now)
    return (
        view.users,
        view.cap,
        view.holds,
        [e.to_json() for e in store.history()],
        store.standing("alice", now).budget.recent_periods,
    )


def test_every_history_store_restores_every_export(
    all_store_factories: dict[str, StoreFactory],
) -> None:
    stores = {n: f for n, f in all_store_factories.items() if f.has_history}
    assert len(stores) >= 2, "a move needs two kinds of store"
    for source_name, source_factory in stores.items():
        source = source_factory()
        now = _project(source)
        exported = source.export()
        expected = _seen(source, now)
        for target_name, target_factory in stores.items():
            target = target_factory()
            assert target.restore(exported, now) is False
            assert _seen(target, now) == expected, (source_name, target_name)
            assert target.export() == exported._replace(project=target.project)
            # the request ids came along: a retry is a duplicate, another charge a conflict
            again = ChargeRequest("alice", D("0.75"), request_id="r-2")
            assert target.charge(again, now).duplicate
            with pytest.raises(RequestIdConflictError):
                target.charge(again._replace(cost=D(1)), now)


def test_a_store_without_history_refuses_to_move(
    all_store_factories: dict[str, StoreFactory],
) -> None:
    """A dump without the history would lose the request ids: the hosted store refuses."""
    without = [f for f in all_store_factories.values() if not f.has_history]
    assert without, "the hosted store keeps no history"
    for factory in without:
        store = factory()
        store.create(rules.new_budget("alice", D(5), T0))
        with pytest.raises(NotSupportedError):
            store.export()
