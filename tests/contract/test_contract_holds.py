"""The store contract for holds: reserve, commit, release, expiry, on every store.

Each test runs on every store (``store_factory``); those that read the history on the stores that
keep one. The differential test runs one sequence of holds on every store at once and compares
every outcome: a store that decided a hold's fit itself would differ from the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from budgetctl.core import rules
from budgetctl.core.periods import parse_duration
from budgetctl.core.rules import CAP
from budgetctl.errors import (
    BudgetctlError,
    HoldCommittedError,
    RequestIdConflictError,
    UnknownHoldError,
)
from budgetctl.store.interface import ChargeRequest, Store

if TYPE_CHECKING:
    from tests.contract.conftest import Replayed, StoreFactory

T0 = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
TTL = timedelta(minutes=15)
D = Decimal


def hold_id(n: int) -> str:
    return f"h_{n:024x}"


def create(store: Store, user: str, total: str, duration: str | None = "daily") -> None:
    store.create(rules.new_budget(user, D(total), T0, duration=parse_duration(duration)))


def reserved(store: Store, user: str, now: datetime) -> tuple[Decimal, Decimal, Decimal]:
    """(spent, reserved, available) of ``user`` at ``now``."""
    found = store.standing(user, now)
    return found.budget.current_cost, found.reserved, found.available


def test_a_hold_fits_exactly_to_the_budget_and_not_a_cent_more(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    create(store, "alice", "1")
    store.charge(ChargeRequest("alice", D("0.25")), T0)
    first = store.reserve(hold_id(1), "alice", D("0.5"), TTL, T0)
    assert first.hold is not None and first.reserved == D("0.5")
    refused = store.reserve(hold_id(2), "alice", D("0.26"), TTL, T0)
    assert refused.hold is None and refused.blocked_by == "user"
    exact = store.reserve(hold_id(3), "alice", D("0.25"), TTL, T0)
    assert exact.hold is not None  # 0.25 spent + 0.75 held = the budget, exactly
    assert reserved(store, "alice", T0) == (D("0.25"), D("0.75"), D(0))
    assert [h.hold_id for h in store.holds(T0)] == [hold_id(1), hold_id(3)]
    with pytest.raises(BudgetctlError):  # enforce counts open holds too
        store.charge(ChargeRequest("alice", D("0.01")), T0, enforce=True)


def test_holds_count_against_the_project_cap(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "10")
    create(store, "bob", "10")
    store.set_cap(T0, D(1), parse_duration("daily"))
    assert store.reserve(hold_id(1), "alice", D("0.6"), TTL, T0).hold is not None
    refused = store.reserve(hold_id(2), "bob", D("0.41"), TTL, T0)
    assert refused.hold is None and refused.blocked_by == "project"
    assert refused.cap_reserved == D("0.6")
    assert store.reserve(hold_id(3), "bob", D("0.4"), TTL, T0).hold is not None


def test_a_commit_replaces_the_hold_by_the_actual_cost(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "1")
    store.reserve(hold_id(1), "alice", D("0.5"), TTL, T0)
    done = store.commit_hold(hold_id(1), ChargeRequest("alice", D("0.3"), "gpt-4o"), T0 + MINUTE)
    assert done.held == D("0.5") and not done.charge.duplicate and done.over_hold is None
    assert reserved(store, "alice", T0 + MINUTE) == (D("0.3"), D(0), D("0.7"))
    assert store.holds(T0 + MINUTE) == []
    # again, the same charge: a duplicate; another charge: a conflict; nothing changes
    again = store.commit_hold(hold_id(1), ChargeRequest("alice", D("0.3"), "gpt-4o"), T0 + MINUTE)
    assert again.charge.duplicate
    with pytest.raises(RequestIdConflictError):
        store.commit_hold(hold_id(1), ChargeRequest("alice", D("0.4"), "gpt-4o"), T0 + MINUTE)
    assert reserved(store, "alice", T0 + MINUTE) == (D("0.3"), D(0), D("0.7"))
    with pytest.raises(HoldCommittedError):
        store.release([hold_id(1)], T0 + MINUTE)


def test_a_commit_is_never_refused(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "1")
    store.reserve(hold_id(1), "alice", D("0.5"), TTL, T0)
    over = store.commit_hold(hold_id(1), ChargeRequest("alice", D("1.5")), T0)
    assert over.over_hold == D(1) and over.charge.budget.current_cost == D("1.5")
    # a hold that expired (or never existed): the charge is recorded, held is None
    store.reserve(hold_id(2), "alice", D(0), TTL, T0)
    late = store.commit_hold(hold_id(2), ChargeRequest("alice", D("0.1")), T0 + TTL)
    assert late.held is None and late.charge.budget.current_cost == D("1.6")
    unknown = store.commit_hold(hold_id(3), ChargeRequest("alice", D("0.1")), T0 + TTL)
    assert unknown.held is None and unknown.charge.budget.current_cost == D("1.7")


def test_release_frees_the_hold_and_refuses_what_it_cannot(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "1")
    store.reserve(hold_id(1), "alice", D("0.9"), TTL, T0)
    with pytest.raises(UnknownHoldError) as caught:
        store.release([hold_id(1), hold_id(9)], T0)
    assert caught.value.exit_code == 4
    assert [h.hold_id for h in store.holds(T0)] == [hold_id(1)]  # nothing changed
    assert [h.amount for h in store.release([hold_id(1)], T0)] == [D("0.9")]
    assert reserved(store, "alice", T0) == (D(0), D(0), D(1))
    with pytest.raises(UnknownHoldError):
        store.release([hold_id(1)], T0)


def test_a_hold_stops_counting_at_its_expiry_by_itself(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "1")
    store.reserve(hold_id(1), "alice", D("0.9"), timedelta(seconds=30), T0)
    assert reserved(store, "alice", T0 + timedelta(seconds=29))[1] == D("0.9")
    assert reserved(store, "alice", T0 + timedelta(seconds=30)) == (D(0), D(0), D(1))
    assert store.holds(T0 + timedelta(seconds=30)) == []
    assert store.reserve(hold_id(2), "alice", D(1), TTL, T0 + timedelta(seconds=30)).hold
    done = store.reset_due(T0 + timedelta(hours=1))
    # hold 1 was archived by the reserve that came after its expiry; hold 2 expired since
    assert [hold.hold_id for hold in done.expired] == [hold_id(2)]


def test_reset_due_archives_expired_holds(history_store_factory: StoreFactory) -> None:
    store = history_store_factory()
    create(store, "alice", "1")
    store.reserve(hold_id(1), "alice", D("0.2"), TTL, T0)
    store.reserve(hold_id(2), "alice", D("0.2"), 2 * TTL, T0)
    done = store.reset_due(T0 + TTL)
    assert [h.hold_id for h in done.expired] == [hold_id(1)]
    assert [h.hold_id for h in store.holds(T0 + TTL)] == [hold_id(2)]
    kinds = [(e.type, getattr(e, "hold_id", None)) for e in store.history()]
    assert kinds[0] == ("expire", hold_id(1))


def test_deleting_a_user_releases_its_holds(store_factory: StoreFactory) -> None:
    store = store_factory()
    create(store, "alice", "1")
    create(store, "bob", "1")
    store.set_cap(T0, D(1))
    store.reserve(hold_id(1), "alice", D("0.5"), TTL, T0)
    store.reserve(hold_id(2), "bob", D("0.25"), TTL, T0)
    assert store.reserve(hold_id(3), "bob", D("0.5"), TTL, T0).blocked_by == "project"
    store.delete(["alice"], T0)
    assert [h.hold_id for h in store.holds(T0)] == [hold_id(2)]
    assert store.reserve(hold_id(3), "bob", D("0.5"), TTL, T0).hold is not None


def test_holds_and_their_history_replay_to_every_balance(
    history_store_factory: StoreFactory, history_of: Any
) -> None:
    store = history_store_factory()
    create(store, "alice", "2")
    store.set_cap(T0, D(5))
    store.reserve(hold_id(1), "alice", D("0.5"), TTL, T0)
    store.commit_hold(hold_id(1), ChargeRequest("alice", D("0.4"), request_id="r1"), T0)
    store.reserve(hold_id(2), "alice", D("0.5"), TTL, T0)
    store.release([hold_id(2)], T0)
    store.reserve(hold_id(3), "alice", D("0.5"), TTL, T0)
    store.charge(ChargeRequest("alice", D("0.1")), T0 + TTL)  # archives hold 3 as expired
    replayed: Replayed = history_of(store)
    view = store.view(T0 + TTL)
    assert replayed.balances == {"alice": D("0.5"), CAP: D("0.5")}
    assert {b.user: b.current_cost for b in view.users} == {"alice": D("0.5")}
    assert replayed.charged == D("0.5")
    kinds = [e.type for e in reversed(store.history())]
    assert kinds == [
        "create", "cap", "hold", "commit", "hold", "release", "hold", "expire", "charge",
    ]  # fmt: skip
    # the commit is remembered under the request id too
    with pytest.raises(RequestIdConflictError):
        store.charge(ChargeRequest("alice", D(1), request_id="r1"), T0 + TTL)


SEQUENCE: list[tuple[str, tuple[Any, ...]]] = [
    ("reserve", (1, "alice", "0.6", 15)),
    ("reserve", (2, "alice", "0.4", 15)),  # exactly the budget
    ("reserve", (3, "alice", "0.01", 15)),  # a cent more: refused by the user budget
    ("reserve", (4, "bob", "0.5", 15)),
    ("reserve", (5, "bob", "0.51", 15)),  # the cap (2): 1.5 held, 0.51 more does not fit
    ("commit", (1, "alice", "0.7")),  # above its hold: recorded
    ("release", (2,)),
    ("reserve", (6, "alice", "0.3", 1)),
    ("commit", (6, "alice", "0.3")),
    ("commit", (6, "alice", "0.3")),  # a duplicate
    ("commit", (6, "alice", "0.31")),  # a conflict
    ("release", (6,)),  # committed
    ("release", (7,)),  # unknown
    ("reserve", (8, "bob", "0.5", 1)),
]


def _run(store: Store) -> list[Any]:
    create(store, "alice", "1")
    create(store, "bob", "10")
    store.set_cap(T0, D(2), parse_duration("daily"))
    outcomes: list[Any] = []
    for step, (name, args) in enumerate(SEQUENCE):
        now = T0 + step * MINUTE
        try:
            if name == "reserve":
                n, user, amount, minutes = args
                got = store.reserve(hold_id(n), user, D(amount), minutes * MINUTE, now)
                outcomes.append((got.hold is not None, got.blocked_by, got.reserved))
            elif name == "commit":
                n, user, cost = args
                done = store.commit_hold(hold_id(n), ChargeRequest(user, D(cost)), now)
                outcomes.append((done.held, done.charge.duplicate, done.charge.budget.current_cost))
            else:
                outcomes.append([h.amount for h in store.release([hold_id(args[0])], now)])
        except BudgetctlError as exc:
            outcomes.append((type(exc).__name__, exc.exit_code))
        outcomes.append(
            [(h.hold_id, h.amount) for h in store.holds(now)]
            + [store.standing(u, now)[2:] for u in ("alice", "bob")]
        )
    return outcomes


def test_every_store_decides_holds_alike(all_store_factories: dict[str, StoreFactory]) -> None:
    """One sequence of holds on every store: the same outcomes, step by step. A store that
    decided whether a hold fits (or how a commit settles it) itself would differ here."""
    results = {name: _run(factory()) for name, factory in all_store_factories.items()}
    first, *others = results.values()
    for name, got in results.items():
        assert got == first, name
    assert others is not None
    assert first[4] == (False, "user", D(1))  # the cent more
    assert first[8] == (False, "project", D("0.5"))  # the cap
