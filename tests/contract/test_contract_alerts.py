"""The store contract for alerts (issue 13): every store records the same alert and overrun
events, once per threshold, period and budget, with the charge that crossed them, and queues
the same hook deliveries in the same atomic step."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from budgetctl.core import events as ev
from budgetctl.core import hooks, rules
from budgetctl.core.periods import parse_duration
from budgetctl.errors import BudgetExceededError
from budgetctl.store.interface import ChargeRequest, HookStore, Store

if TYPE_CHECKING:
    from tests.contract.conftest import StoreFactory

T0 = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
DAY1 = datetime(2026, 1, 15, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
D = Decimal
LEVELS = [D(50), D(80), D(100)]


def _store(factory: StoreFactory) -> Store:
    store = factory()
    store.create(
        rules.new_budget("alice", D(10), T0, duration=parse_duration("daily"), alert_at=LEVELS)
    )
    store.create(rules.new_budget("bob", D(10), T0, duration=parse_duration("daily")))
    return store


def _seen(alerts: tuple[ev.Alert | ev.Over, ...]) -> list[tuple[str, str | None, Decimal | None]]:
    return [(a.type, a.user, getattr(a, "threshold", None)) for a in alerts]


def test_several_thresholds_are_kept_and_a_single_one_stays_one(
    store_factory: StoreFactory,
) -> None:
    store = _store(store_factory)
    assert store.get("alice", T0).alert_at == (50, 80, 100)
    store.change("bob", T0, rules.Changes(alert_at=D(75)))
    assert store.get("bob", T0).alert_at == (75,)
    store.change("bob", T0, rules.Changes(alert_at=None))
    assert store.get("bob", T0).alert_at == ()


def test_each_threshold_is_crossed_once_per_period(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    costs = ["4", "2", "3", "0.5", "0.5", "0.000001", "2"]
    seen = [_seen(store.charge(ChargeRequest("alice", D(c)), T0 + HOUR).alerts) for c in costs]
    assert seen == [
        [],
        [("alert", "alice", 50)],
        [("alert", "alice", 80)],
        [],
        [("alert", "alice", 100)],  # 10 of 10: reached, not over
        [("over", "alice", None)],
        [],
    ]
    # the next day is a new period: its thresholds alert again
    again = store.charge(ChargeRequest("alice", D(9)), T0 + 24 * HOUR)
    assert _seen(again.alerts) == [("alert", "alice", 50), ("alert", "alice", 80)]
    assert again.alerts[0].period_start == DAY1 + 24 * HOUR
    # bob has no thresholds: only his overrun is recorded
    assert _seen(store.charge(ChargeRequest("bob", D(11)), T0).alerts) == [("over", "bob", None)]


def test_a_duplicate_or_a_refused_charge_records_no_alert(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    first = ChargeRequest("alice", D(6), request_id="r-1")
    assert _seen(store.charge(first, T0).alerts) == [("alert", "alice", 50)]
    assert store.charge(first, T0 + HOUR).alerts == ()
    with contextlib.suppress(BudgetExceededError):
        store.charge(ChargeRequest("alice", D(5)), T0, enforce=True)
    assert _seen(store.charge(ChargeRequest("alice", D(2)), T0).alerts) == [("alert", "alice", 80)]


def test_the_cap_alerts_on_its_own_thresholds(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    store.set_cap(T0, D(20), alert_at=[D(25), D(90)])
    assert store.cap(T0) is not None and store.cap(T0).alert_at == (25, 90)  # type: ignore[union-attr]
    first = store.charge(ChargeRequest("bob", D(5)), T0)
    assert _seen(first.alerts) == [("alert", None, 25)]
    both = store.charge(ChargeRequest("alice", D(8)), T0)
    assert _seen(both.alerts) == [("alert", "alice", 50), ("alert", "alice", 80)]
    last = store.charge(ChargeRequest("bob", D(6)), T0)
    assert _seen(last.alerts) == [("alert", None, 90), ("over", None, None)] or _seen(
        last.alerts
    ) == [("over", "bob", None), ("alert", None, 90)]


def test_a_commit_that_crosses_records_the_alert(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    hold = "h_" + "0" * 24
    store.reserve(hold, "alice", D(9), timedelta(minutes=5), T0)
    done = store.commit_hold(hold, ChargeRequest("alice", D(8.5)), T0)
    assert _seen(done.charge.alerts) == [("alert", "alice", 50), ("alert", "alice", 80)]


def test_alerts_are_in_the_history_with_their_charge(history_store_factory: StoreFactory) -> None:
    store = _store(history_store_factory)
    store.charge(ChargeRequest("alice", D(9)), T0)
    store.charge(ChargeRequest("alice", D(2)), T0 + HOUR)
    kinds = [e.type for e in reversed(store.history("alice"))]
    assert kinds == ["create", "charge", "alert", "alert", "charge", "alert", "over"]
    alerts = [e for e in store.history() if isinstance(e, ev.Alert)]
    assert sorted(a.threshold for a in alerts) == [50, 80, 100]
    assert all(a.period_start == DAY1 and a.budget == 10 for a in alerts)


def test_hook_deliveries_are_queued_with_the_charge(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    keeper: HookStore = store  # type: ignore[assignment]
    hook = hooks.Hook(hooks.hook_id_from(b"a"), "true", None, ("alert",))
    keeper.add_hook(hook, T0)
    other = hooks.Hook(hooks.hook_id_from(b"b"), None, "http://127.0.0.1:9/x", ("over", "reset"))
    keeper.add_hook(other, T0)
    assert sorted(h.hook_id for h in keeper.hooks()) == sorted([hook.hook_id, other.hook_id])
    outcome = store.charge(ChargeRequest("alice", D(6)), T0)
    assert outcome.queued == 1
    pending = keeper.pending()
    assert [(d.hook_id, d.payload["event"], d.payload["threshold"]) for d in pending] == [
        (hook.hook_id, "alert", "50")
    ]
    assert pending[0].event_id == hooks.event_id(store.project, outcome.alerts[0])
    assert store.charge(ChargeRequest("alice", D(6)), T0).queued == 3  # 80, 100, and over
    # a rollover is a reset for the hooks that are for resets
    store.charge(ChargeRequest("alice", D(1)), T0 + 24 * HOUR)
    kinds = sorted(d.payload["event"] for d in keeper.pending())
    assert kinds == ["alert", "alert", "alert", "over", "reset"]
    keeper.delivered([d.key for d in keeper.pending() if d.hook_id == hook.hook_id], T0)
    assert sorted(d.payload["event"] for d in keeper.pending()) == ["over", "reset"]
    assert keeper.remove_hook(other.hook_id, T0) and not keeper.remove_hook(other.hook_id, T0)
    assert keeper.pending() == [] and [h.hook_id for h in keeper.hooks()] == [hook.hook_id]


def test_a_dry_run_queues_nothing(store_factory: StoreFactory) -> None:
    store = _store(store_factory)
    keeper: HookStore = store  # type: ignore[assignment]
    keeper.add_hook(hooks.Hook(hooks.hook_id_from(b"a"), "true", None), T0)
    assert store.charge(ChargeRequest("alice", D(6)), T0, dry_run=True).alerts
    assert keeper.pending() == []
