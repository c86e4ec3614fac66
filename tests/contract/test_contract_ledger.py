"""The store contract case by case: idempotency, periods, the project cap, the replay invariant.

Every test runs on every store in tests/contract/conftest.py (``store_factory``), except those that
read the history: they run on the stores that keep one (``history_store_factory``; the hosted
store's LiteLLM protocol keeps none). Times are fixed UTC moments; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from budgetctl.core import rules
from budgetctl.core.periods import parse_duration
from budgetctl.core.rules import CAP, ClosedPeriod
from budgetctl.errors import (
    BudgetExceededError,
    RequestIdConflictError,
    UnknownUserError,
)
from budgetctl.store.interface import ChargeRequest, Store

if TYPE_CHECKING:
    from tests.contract.conftest import Replayed, StoreFactory

DAY1 = datetime(2026, 1, 15, tzinfo=timezone.utc)  # midnight: a daily boundary
T0 = DAY1 + timedelta(hours=12)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
D = Decimal


def create(store: Store, user: str, total: str, now: datetime, duration: str | None = None) -> None:
    store.create(rules.new_budget(user, D(total), now, duration=parse_duration(duration)))


def spend(store: Store, now: datetime) -> dict[str, Decimal]:
    view = store.view(now)
    shown = {budget.user: budget.current_cost for budget in view.users}
    if view.cap is not None:
        shown[CAP] = view.cap.current_cost
    return shown


# --- idempotency ----------------------------------------------------------------------------------

FIRST = ChargeRequest("alice", D("0.5"), "gpt-4o", 10, 20, 3, request_id="call-1")


@pytest.fixture
def charged(store_factory: StoreFactory) -> Store:
    """alice (budget 1) and bob, a cap of 10, and FIRST charged."""
    store = store_factory()
    create(store, "alice", "1", T0, "daily")
    create(store, "bob", "1", T0, "daily")
    store.set_cap(T0, D(10))
    store.charge(FIRST, T0)
    return store


def test_the_same_charge_again_is_a_duplicate_and_changes_nothing(charged: Store) -> None:
    before = spend(charged, T0 + HOUR)
    again = charged.charge(FIRST._replace(cost=D("0.50")), T0 + HOUR)  # 0.50 is 0.5
    assert again.duplicate
    assert again.budget.current_cost == D("0.5") and again.cap is not None
    assert again.cap.current_cost == D("0.5")
    assert spend(charged, T0 + HOUR) == before


def test_a_duplicate_is_not_refused_by_enforcement(charged: Store) -> None:
    """The retry of a charge that spent the budget to the cent is that charge, not a new one."""
    full = ChargeRequest("bob", D(1), request_id="call-2")
    assert not charged.charge(full, T0, enforce=True).duplicate
    assert charged.charge(full, T0 + HOUR, enforce=True).duplicate
    assert spend(charged, T0 + HOUR)["bob"] == D(1)


@pytest.mark.parametrize(
    "change",
    [
        {"user": "bob"},
        {"cost": D("0.51")},
        {"model": "gpt-4o-mini"},
        {"model": None},
        {"prompt_tokens": 11},
        {"completion_tokens": 21},
        {"cached_tokens": 0},
    ],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items()),
)
def test_the_same_id_with_another_charge_is_a_conflict_and_changes_nothing(
    charged: Store, change: dict[str, Any]
) -> None:
    before = spend(charged, T0 + HOUR)
    with pytest.raises(RequestIdConflictError) as conflict:
        charged.charge(FIRST._replace(**change), T0 + HOUR, enforce=True)
    facts = conflict.value
    assert (facts.request_id, facts.user, facts.cost, facts.model) == (
        "call-1",
        "alice",
        D("0.5"),
        "gpt-4o",
    )
    assert (facts.prompt_tokens, facts.completion_tokens, facts.cached_tokens) == (10, 20, 3)
    assert spend(charged, T0 + HOUR) == before


def test_history_is_unchanged_by_a_duplicate_or_a_conflict(
    history_store_factory: StoreFactory, history_of: Callable[[Store], Replayed]
) -> None:
    store = history_store_factory()
    create(store, "alice", "1", T0)
    store.charge(FIRST, T0)
    before = store.history()
    assert store.charge(FIRST, T0 + HOUR).duplicate
    with pytest.raises(RequestIdConflictError):
        store.charge(FIRST._replace(cost=D(2)), T0 + HOUR)
    assert store.history() == before
    assert history_of(store).charged == D("0.5")


def test_an_id_is_spent_only_by_a_charge_that_was_made(store_factory: StoreFactory) -> None:
    """A refused charge (enforce) and a dry run leave the id unused; a deleted user's charge
    keeps it (the money was spent under it)."""
    store = store_factory()
    create(store, "alice", "1", T0)
    refused = ChargeRequest("alice", D(2), request_id="r")
    with pytest.raises(BudgetExceededError):
        store.charge(refused, T0, enforce=True)
    assert not store.charge(refused._replace(cost=D(1)), T0, dry_run=True).duplicate
    assert not store.charge(refused._replace(cost=D("0.25")), T0).duplicate
    assert spend(store, T0) == {"alice": D("0.25")}
    store.delete(["alice"], T0)
    create(store, "alice", "1", T0 + HOUR)
    assert store.charge(refused._replace(cost=D("0.25")), T0 + HOUR).duplicate
    with pytest.raises(RequestIdConflictError):
        store.charge(refused._replace(cost=D("0.5")), T0 + HOUR)
    assert spend(store, T0 + HOUR) == {"alice": D(0)}


# --- periods --------------------------------------------------------------------------------------


def test_a_charge_after_a_boundary_rolls_the_period_over_first(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "5", T0, "daily")
    store.set_cap(T0, D(8), parse_duration("daily"))
    store.charge(ChargeRequest("alice", D(5)), DAY1 + 23 * HOUR, enforce=True)
    # Exactly at the boundary the old period is over: the full budget is there again.
    outcome = store.charge(ChargeRequest("alice", D(5)), DAY1 + DAY, enforce=True)
    assert not outcome.duplicate
    assert outcome.budget.current_cost == D(5) and outcome.budget.period_start == DAY1 + DAY
    assert outcome.budget.next_reset_at == DAY1 + 2 * DAY
    assert outcome.cap is not None and outcome.cap.current_cost == D(5)
    assert outcome.cap.period_start == DAY1 + DAY
    # Nothing is left to close at this boundary: the charge closed both periods.
    done = store.reset_due(DAY1 + DAY)
    assert (done.checked, done.reset, done.cap) == (1, (), None)


def test_the_closed_period_is_in_the_history(
    history_store_factory: StoreFactory, history_of: Callable[[Store], Replayed]
) -> None:
    store = history_store_factory()
    create(store, "alice", "5", T0, "daily")
    store.set_cap(T0, D(8), parse_duration("daily"))
    store.charge(ChargeRequest("alice", D(3)), DAY1 + 23 * HOUR)
    store.charge(ChargeRequest("alice", D(1)), DAY1 + DAY + HOUR)
    closed = history_of(store).closed
    assert closed == [
        ("alice", ClosedPeriod(DAY1, DAY1 + DAY, D(3), D(5), "rollover")),
        (CAP, ClosedPeriod(DAY1, DAY1 + DAY, D(3), D(8), "rollover")),
    ]
    assert store.get("alice", DAY1 + DAY + HOUR).recent_periods == (closed[0][1],)


def test_reset_due_closes_each_ended_period_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "5", T0, "daily")
    create(store, "bob", "5", T0, "1h")  # its grid starts at its creation, 12:00
    create(store, "carol", "5", T0)  # a lifetime budget never rolls over
    store.set_cap(T0, D(20), parse_duration("2d"))
    for user in ("alice", "bob", "carol"):
        store.charge(ChargeRequest(user, D(1)), T0 + HOUR / 2)
    # Two days and a half later: each budget closes its period once (the idle ones between are
    # not archived one by one), and the spend of the new periods is 0.
    later = T0 + 2 * DAY + 12 * HOUR
    first = store.reset_due(later)
    assert first.checked == 3
    assert dict(first.reset) == {
        "alice": ClosedPeriod(DAY1, DAY1 + DAY, D(1), D(5), "rollover"),
        "bob": ClosedPeriod(T0, T0 + HOUR, D(1), D(5), "rollover"),
    }
    assert first.cap == ClosedPeriod(T0, T0 + 2 * DAY, D(3), D(20), "rollover")
    assert spend(store, later) == {"alice": D(0), "bob": D(0), "carol": D(1), CAP: D(0)}
    again = store.reset_due(later)
    assert (again.checked, again.reset, again.cap) == (3, (), None)
    assert store.get("alice", later).period_start == later == DAY1 + 3 * DAY
    # bob's next boundary, exactly: his period is closed then, once.
    boundary = later + HOUR
    assert store.reset_due(boundary - timedelta(seconds=1)).reset == ()
    closing = store.reset_due(boundary)
    assert closing.reset == (("bob", ClosedPeriod(later, boundary, D(0), D(5), "rollover")),)
    assert store.reset_due(boundary).reset == ()


def test_reset_due_for_some_users_closes_only_theirs(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "5", T0, "daily")
    create(store, "bob", "5", T0, "daily")
    later = T0 + DAY
    with pytest.raises(UnknownUserError):
        store.reset_due(later, users=["alice", "nobody"])
    assert [user for user, _ in store.reset_due(later, users=["bob"]).reset] == ["bob"]
    assert [user for user, _ in store.reset_due(later).reset] == ["alice"]


def test_setting_the_cap_rolls_no_budget_over(store_factory: StoreFactory) -> None:
    """Only what an operation touches rolls over: a user's period that ended stays open until a
    charge, change or reset of that user, or reset_due, closes it (and reset_due reports it)."""
    store = store_factory()
    create(store, "alice", "5", T0, "1h")
    store.set_cap(T0 + HOUR, D(10))
    done = store.reset_due(T0 + HOUR)
    assert [user for user, _ in done.reset] == ["alice"]


# --- the project cap ------------------------------------------------------------------------------


def test_a_new_cap_never_counts_charges_made_before_its_period(store_factory: StoreFactory) -> None:
    """alice's budget moves onto a daily grid after a charge: the spend so far moves with it, into
    a period that begins after the charge. A daily cap set then starts with nothing spent in its
    period (a store without history may count less than was spent, never more)."""
    store = store_factory()
    create(store, "alice", "5", T0, "2d")
    store.charge(ChargeRequest("alice", D(1)), T0 + HOUR)
    later = T0 + DAY  # 2026-01-16 12:00
    store.change("alice", later, rules.Changes(duration=parse_duration("daily")))
    assert store.get("alice", later).period_start == DAY1 + DAY
    cap = store.set_cap(later, D(10), parse_duration("daily"))
    assert cap.period_start == DAY1 + DAY
    assert cap.current_cost == 0


def test_a_new_cap_counts_the_charges_already_made_in_its_period(
    history_store_factory: StoreFactory,
) -> None:
    """Exactly, deleted users' charges too (the money was spent): a store with a history can."""
    store = history_store_factory()
    create(store, "alice", "5", T0, "daily")
    create(store, "bob", "5", T0)
    store.charge(ChargeRequest("alice", D(1)), T0 - 11 * HOUR)  # 01:00 today
    store.charge(ChargeRequest("bob", D("0.25")), T0)
    store.charge(ChargeRequest("alice", D(2)), T0 - DAY)  # yesterday: not in the cap's period
    store.delete(["bob"], T0)
    cap = store.set_cap(T0 + HOUR, D(10), parse_duration("daily"))
    assert cap.period_start == DAY1 and cap.current_cost == D("1.25")


# --- the replay invariant -------------------------------------------------------------------------


def test_the_history_replays_to_every_balance(
    history_store_factory: StoreFactory, check_replay: Callable[[Store, datetime], None]
) -> None:
    """After each operation of a sequence that uses every kind of event, and at later moments
    when periods have ended without anything rolling them over yet."""
    store = history_store_factory()
    now = T0
    steps: list[Callable[[], object]] = [
        lambda: create(store, "alice", "5", now, "daily"),
        lambda: store.create(rules.new_budget("bob", D(3), now, current_cost=D("1.5"))),
        lambda: store.charge(ChargeRequest("alice", D("0.75"), "gpt-4o"), now),
        lambda: store.charge(ChargeRequest("bob", D("0.25"), request_id="b1"), now),
        lambda: store.charge(ChargeRequest("bob", D("0.25"), request_id="b1"), now),
        lambda: store.set_cap(now, D(10), parse_duration("daily")),
        lambda: store.charge(ChargeRequest("alice", D(1)), now),
        lambda: store.change("alice", now, rules.Changes(total_budget=D(6))),
        lambda: store.change("bob", now, rules.Changes(duration=parse_duration("6h"))),
        lambda: store.reset(["alice"], now),
        lambda: store.charge(ChargeRequest("alice", D("0.5")), now),
        lambda: store.set_cap(now, None, parse_duration("1h")),
        lambda: store.charge(ChargeRequest("bob", D("0.125")), now),
        lambda: store.reset_due(now),
        lambda: store.delete(["bob"], now),
        lambda: store.charge(ChargeRequest("alice", D(2)), now),
        lambda: store.create(rules.new_budget("bob", D(3), now), replace=True),
        lambda: store.charge(ChargeRequest("bob", D(1)), now),
        lambda: store.clear_cap(now),
        lambda: store.charge(ChargeRequest("alice", D("0.01")), now),
        lambda: store.set_cap(now, D(4)),
        lambda: store.charge(ChargeRequest("bob", D("0.5")), now),
        lambda: store.reset(None, now),
        lambda: store.charge(ChargeRequest("alice", D(3)), now),
    ]
    for step in steps:
        step()
        check_replay(store, now)
        check_replay(store, now + 7 * HOUR)  # bob's 6h and the cap's 1h periods ended since
        now += 5 * HOUR
