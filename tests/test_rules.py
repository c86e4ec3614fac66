"""Ledger rules: roll-over without drift, reset, change, enforcement, and replay of the history."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from budgetctl.core import events as events_module
from budgetctl.core import rules
from budgetctl.core.periods import UTC, parse_duration, parse_utc
from budgetctl.core.rules import CAP, KEEP, Budget
from budgetctl.errors import (
    BudgetExceededError,
    InvalidAmountError,
    InvalidNameError,
    InvalidTimeError,
    NotFoundError,
    RequestIdConflictError,
    UserExistsError,
)
from budgetctl.ledger import Ledger


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def make(duration: str | None, now: datetime, **kwargs: Any) -> Budget:
    return rules.new_budget("alice", Decimal(10), now, duration=parse_duration(duration), **kwargs)


# --- roll-over ----------------------------------------------------------------------------------


def test_roll_over_catches_up_many_periods_on_the_grid() -> None:
    budget = rules.charge(make("daily", utc(2026, 1, 1, 10)), Decimal(5), "gpt-4o")
    assert (budget.period_start, budget.next_reset_at) == (utc(2026, 1, 1), utc(2026, 1, 2))
    late = utc(2026, 3, 15, 13, 37, 21)  # cron did not run for 73 days
    rolled, closed = rules.roll_over(budget, late)
    assert closed is not None
    # the closed period is the one that held the spend; the new one starts on the grid
    assert (closed.start, closed.end, closed.spent) == (utc(2026, 1, 1), utc(2026, 1, 2), 5)
    assert closed.budget == 10 and closed.reason == "rollover"
    assert (rolled.period_start, rolled.next_reset_at) == (utc(2026, 3, 15), utc(2026, 3, 16))
    assert rolled.current_cost == 0 and dict(rolled.model_cost) == {}
    assert rolled.last_updated_at == utc(2026, 3, 15)  # not the moment the job ran
    assert rolled.recent_periods[0] == closed
    # one step: running it again at the same time (or a minute later) changes nothing
    assert rules.roll_over(rolled, late) == (rolled, None)
    assert rules.roll_over(rolled, late + timedelta(minutes=1)) == (rolled, None)


def test_roll_over_exactly_at_the_boundary() -> None:
    budget = make("weekly", utc(2026, 1, 7, 12))  # a Wednesday
    assert budget.next_reset_at == utc(2026, 1, 12)  # Monday
    assert rules.roll_over(budget, utc(2026, 1, 11, 23, 59, 59))[1] is None
    rolled, closed = rules.roll_over(budget, utc(2026, 1, 12))
    assert closed is not None and rolled.period_start == utc(2026, 1, 12)


@pytest.mark.parametrize(
    ("duration", "start", "late", "expected"),
    [
        # counted durations are anchored at creation time: 5 days from 2026-01-01 10:00
        ("5d", None, utc(2026, 2, 3, 8), (utc(2026, 1, 31, 10), utc(2026, 2, 5, 10))),
        ("7h", None, utc(2026, 1, 3, 0), (utc(2026, 1, 2, 21), utc(2026, 1, 3, 4))),
        # an explicit start anchors the grid; month-end clamping survives any number of steps
        ("monthly", utc(2025, 1, 31), utc(2026, 3, 5), (utc(2026, 2, 28), utc(2026, 3, 31))),
        ("monthly", utc(2025, 1, 31), utc(2026, 4, 1), (utc(2026, 3, 31), utc(2026, 4, 30))),
        ("yearly", None, utc(2031, 7, 1), (utc(2031, 1, 1), utc(2032, 1, 1))),
    ],
)
def test_roll_over_without_drift(
    duration: str, start: datetime | None, late: datetime, expected: tuple[datetime, datetime]
) -> None:
    budget = rules.charge(make(duration, utc(2026, 1, 1, 10), start=start), Decimal(1), None)
    rolled, closed = rules.roll_over(budget, late)
    assert closed is not None and closed.spent == 1
    assert (rolled.period_start, rolled.next_reset_at) == expected
    # stepping through every boundary one at a time lands on the same grid
    stepped = budget
    while stepped.next_reset_at is not None and stepped.next_reset_at <= late:
        stepped, _ = rules.roll_over(stepped, stepped.next_reset_at)
    assert (stepped.period_start, stepped.next_reset_at) == expected


def test_lifetime_budget_never_rolls_over() -> None:
    budget = rules.charge(make(None, utc(2026, 1, 1)), Decimal(3), None)
    assert budget.next_reset_at is None
    assert rules.roll_over(budget, utc(2099, 1, 1)) == (budget, None)
    assert not rules.is_due(budget, utc(2099, 1, 1))


def test_roll_over_in_a_dst_zone_stays_at_local_midnight() -> None:
    budget = make("daily", utc(2026, 3, 1), timezone="Europe/London")
    rolled, _ = rules.roll_over(budget, utc(2026, 7, 1, 12))  # summer time: midnight is 23:00 UTC
    assert (rolled.period_start, rolled.next_reset_at) == (
        utc(2026, 6, 30, 23),
        utc(2026, 7, 1, 23),
    )


# --- reset, change, charge ----------------------------------------------------------------------


def test_reset_keeps_the_boundaries() -> None:
    budget = rules.charge(make("monthly", utc(2026, 1, 3)), Decimal("2.5"), "m")
    moment = utc(2026, 1, 20, 8, 30, 15)
    after, closed = rules.reset(budget, moment)
    assert after.current_cost == 0 and dict(after.model_cost) == {}
    assert after.next_reset_at == budget.next_reset_at == utc(2026, 2, 1)
    assert after.period_start == moment
    assert (closed.start, closed.end, closed.spent, closed.reason) == (
        utc(2026, 1, 1),
        moment,
        Decimal("2.5"),
        "reset",
    )
    # the next roll-over still happens on the grid
    rolled, _ = rules.roll_over(after, utc(2026, 2, 1, 0, 0, 1))
    assert rolled.period_start == utc(2026, 2, 1)


def test_reset_after_the_period_ended_rolls_over_first() -> None:
    budget = rules.charge(make("daily", utc(2026, 1, 1, 6)), Decimal(4), None)
    after, closed = rules.reset(budget, utc(2026, 1, 5, 12))
    assert closed.spent == 0 and closed.start == utc(2026, 1, 5)  # the 4 went with the roll-over
    assert after.recent_periods[1].spent == 4 and after.recent_periods[1].reason == "rollover"
    assert after.next_reset_at == utc(2026, 1, 6)


def test_change_keeps_the_spend() -> None:
    budget = rules.charge(make("monthly", utc(2026, 1, 3)), Decimal(7), "m")
    now = utc(2026, 1, 20)
    bigger = rules.change(budget, now, rules.Changes(total_budget=Decimal(50)))
    assert (bigger.current_cost, bigger.total_budget) == (7, 50)
    assert (bigger.period_start, bigger.next_reset_at) == (
        budget.period_start,
        budget.next_reset_at,
    )
    weekly = rules.change(budget, now, rules.Changes(duration=parse_duration("weekly")))
    assert weekly.current_cost == 7 and dict(weekly.model_cost) == {"m": 7}
    assert (weekly.period_start, weekly.next_reset_at) == (utc(2026, 1, 19), utc(2026, 1, 26))
    paris = rules.change(budget, now, rules.Changes(timezone="Europe/Paris"))
    assert paris.current_cost == 7 and paris.next_reset_at == utc(2026, 1, 31, 23)
    lifetime = rules.change(budget, now, rules.Changes(duration=None))
    assert lifetime.current_cost == 7 and lifetime.next_reset_at is None
    alerting = rules.change(budget, now, rules.Changes(alert_at=Decimal(50)))
    assert alerting.alert_at == (50,) and alerting.alerting  # 7 of 10 is past 50%
    with pytest.raises(InvalidTimeError):
        rules.change(budget, now, rules.Changes(timezone="Nowhere/Land"))
    with pytest.raises(InvalidAmountError):
        rules.change(budget, now, rules.Changes(total_budget=Decimal(-1)))


def test_charge_records_past_the_budget_and_would_exceed() -> None:
    budget = make(None, utc(2026, 1, 1))
    assert not rules.would_exceed(budget, Decimal(10))  # exactly the budget fits
    assert rules.would_exceed(budget, Decimal("10.000001"))
    budget = rules.charge(budget, Decimal(8), "a")
    assert rules.would_exceed(budget, Decimal("2.01")) and not rules.would_exceed(
        budget, Decimal(2)
    )
    budget = rules.charge(budget, Decimal(5), "b")  # the money is spent: it records
    assert budget.current_cost == 13 and budget.over_budget and budget.remaining == 0
    assert dict(budget.model_cost) == {"a": 8, "b": 5}
    with pytest.raises(InvalidAmountError):
        rules.charge(budget, Decimal(-1), None)
    with pytest.raises(InvalidAmountError):
        rules.charge(budget, Decimal("NaN"), None)


def test_alerting() -> None:
    budget = make(None, utc(2026, 1, 1), alert_at=Decimal(80))
    assert not rules.charge(budget, Decimal("7.99"), None).alerting
    assert rules.charge(budget, Decimal(8), None).alerting
    assert not rules.charge(budget, Decimal(11), None).alerting  # over budget is not "alerting"
    for bad in (Decimal(0), Decimal(1001), Decimal(-5)):
        with pytest.raises(InvalidAmountError):
            make(None, utc(2026, 1, 1), alert_at=bad)


def test_new_budget_takes_the_time_it_is_given() -> None:
    first = make("daily", utc(2026, 1, 1, 9, 0, 0, 250000))
    second = make("daily", utc(2026, 1, 1, 9, 0, 0, 350000))
    # to the microsecond, as LiteLLM's float created_at: budgets 0.1 s apart are in order
    assert first.created_at == utc(2026, 1, 1, 9, 0, 0, 250000)
    assert second.created_at > first.created_at
    with pytest.raises(InvalidTimeError):
        make("daily", utc(2026, 1, 1), timezone="Mars/Base")


@pytest.mark.parametrize("name", ["default", "a", "A.b-c_9", "x" * 64, "_x", "-x"])
def test_project_names_accepted(name: str) -> None:
    assert rules.check_project_name(name) == name


@pytest.mark.parametrize(
    "name", ["", ".hidden", "..", "a/b", "../x", "x" * 65, "a b", "é", "a\\b", "a\x00", 5, None]
)
def test_project_names_rejected(name: Any) -> None:
    with pytest.raises(InvalidNameError):
        rules.check_project_name(name)


@pytest.mark.parametrize("user", ["", "x" * 257, "tab\there", "nl\n", "\x7f", 5, None])
def test_user_names_rejected(user: Any) -> None:
    with pytest.raises(InvalidNameError):
        rules.check_user_name(user)


@pytest.mark.parametrize("user", ["a", "x" * 256, "alice@example.com", "../../etc", "团队 A"])
def test_user_names_are_keys_not_paths(user: str) -> None:
    assert rules.check_user_name(user) == user


# --- replay ---------------------------------------------------------------------------------------


def test_replay_events() -> None:
    t, d = datetime(2026, 1, 1, tzinfo=timezone.utc), Decimal
    ev = events_module
    history = [
        ev.Create(t, "a", d(10), None, d(0)),
        ev.Charge(t, "a", d("0.1")),
        ev.CapSet(t, d(100), None, "UTC", d(0)),
        ev.Charge(t, "a", d("0.2")),
        ev.Create(t, "b", d(10), None, d("1.5")),  # imported spend
        ev.Charge(t, "b", d(1)),
        ev.PeriodClosed(t, "a", t, t, d("0.3"), d(10)),
        ev.Charge(t, "a", d("0.05")),
        ev.CapSet(t, d(100), None, "UTC", d("1.25")),  # a cap change carries the spend it keeps
        ev.Set(t, "a", d(10), None, "UTC"),
        ev.HoldPlaced(t, "h_" + "0" * 24, "a", d(5), t),  # holds change no spend
        ev.Delete(t, "b"),
    ]
    assert rules.replay(history) == {"a": Decimal("0.05"), CAP: Decimal("1.25")}
    # a cap moved onto a new grid carries its period's spend, counted anew from the history
    assert rules.replay([*history, ev.CapSet(t, d(1), None, "UTC", d("0.05"))])[CAP] == d("0.05")
    assert rules.replay([*history, ev.PeriodClosed(t, None, t, t, d(1), d(1))])[CAP] == 0
    assert CAP not in rules.replay([*history, ev.CapClear(t)])
    commit = ev.Commit(t, "a", d(2), None, 0, 0, 0, None, False, "h_" + "0" * 24, d(5))
    assert rules.replay([*history, commit]) == {"a": d("2.05"), CAP: d("3.25")}


def test_spent_since_counts_every_charge_from_the_start_on() -> None:
    ev, at = events_module, parse_utc
    history = [
        ev.Charge(at("2026-03-09T23:59:59.999999Z"), "a", Decimal(1)),
        ev.Charge(at("2026-03-10T00:00:00Z"), "a", Decimal("0.25")),
        ev.PeriodClosed(
            at("2026-03-10T01:00:00Z"),
            "a",
            at("2026-03-01T00:00:00Z"),
            at("2026-03-10T01:00:00Z"),
            Decimal("1.25"),
            Decimal(10),
            "reset",
        ),
        ev.Charge(at("2026-03-10T02:00:00.5Z"), "gone", Decimal("0.5")),
        ev.Delete(at("2026-03-10T03:00:00Z"), "gone"),
    ]
    start = datetime(2026, 3, 10, tzinfo=timezone.utc)
    assert rules.spent_since(history, start) == Decimal("0.75")  # a reset or a delete unspends none


def test_crossed_alert_is_true_only_for_the_charge_that_crosses() -> None:
    now = datetime(2026, 3, 10, tzinfo=timezone.utc)
    budget = rules.new_budget("a", Decimal(10), now, alert_at=Decimal(80))
    crossing = rules.charge(rules.charge(budget, Decimal("7.99"), None), Decimal("0.01"), None)
    assert rules.crossed_alert(crossing, Decimal("0.01"))
    assert not rules.crossed_alert(rules.charge(crossing, Decimal("0.5"), None), Decimal("0.5"))
    over = rules.charge(budget, Decimal(11), None)
    assert not rules.crossed_alert(over, Decimal(11))  # over budget: a warning of its own
    assert not rules.crossed_alert(budget._replace(alert_at=()), Decimal(0))


# --- replay against the real store: a random sequence of ledger operations ------------------------

USERS = ["alice", "bob", "carol"]
DURATIONS = [None, "daily", "weekly", "monthly", "yearly", "3h", "2d", "1mo"]
ZONES = ["UTC", "America/New_York", "Australia/Lord_Howe"]
costs = st.decimals(min_value=0, max_value=5, places=6).map(lambda d: str(d))
budgets = st.decimals(min_value=0, max_value=20, places=2).map(lambda d: str(d))


class LedgerMachine(RuleBasedStateMachine):
    """Drives a Ledger on a JsonStore; after every step the balances equal the history's replay."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="budgetctl-replay-"))
        self.now = utc(2026, 1, 30, 22, 15)
        self.ledger = Ledger("replay", self.dir, clock=lambda: self.now, lock_timeout=5)
        self.charged = Decimal(0)  # every non-duplicate charge that returned, summed
        self.ids: dict[str, tuple[datetime, str, Decimal]] = {}  # id -> when, user, cost
        self.ledger.create("alice", "10", duration="daily", timezone="America/New_York")
        self.ledger.create("bob", "3", duration="2d")

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _existing(self) -> list[str]:
        return self.ledger.users() if self.ledger.exists() else []

    @rule(seconds=st.integers(min_value=0, max_value=45 * 86400))
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(
        user=st.sampled_from(USERS),
        total=budgets,
        duration=st.sampled_from(DURATIONS),
        tz=st.sampled_from(ZONES),
        replace=st.booleans(),
    )
    def create(self, user: str, total: str, duration: str | None, tz: str, replace: bool) -> None:
        exists = user in self._existing()
        try:
            self.ledger.create(user, total, duration=duration, timezone=tz, replace=replace)
        except UserExistsError:
            assert exists and not replace
        else:
            assert replace or not exists

    @rule(
        charges=st.lists(
            st.tuples(
                st.sampled_from(USERS),
                costs,
                st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3", "r4"])),
                st.booleans(),
            ),
            min_size=1,
            max_size=6,
        ),
        step=st.integers(min_value=0, max_value=6 * 3600),
    )
    def charge(self, charges: list[tuple[str, str, str | None, bool]], step: int) -> None:
        for user, cost, rid, enforce in charges:
            self.now += timedelta(seconds=step)
            self._charge(user, cost, rid, enforce)

    def _charge(self, user: str, cost: str, rid: str | None, enforce: bool) -> None:
        seen = self.ids.get(rid) if rid else None
        remembered = seen is not None and self.now - seen[0] < timedelta(days=89)
        try:
            result = self.ledger.charge_cost(user, cost, model="m", request_id=rid, enforce=enforce)
        except NotFoundError:
            assert user not in self._existing()
            return
        except BudgetExceededError:
            assert enforce
            return
        except RequestIdConflictError as conflict:
            assert seen is not None and (user, Decimal(cost)) != seen[1:], "a false conflict"
            assert (conflict.user, conflict.cost) == seen[1:]
            return
        if remembered:
            assert seen is not None and (user, Decimal(cost)) == seen[1:]
            assert result.duplicate, f"request id {rid} charged twice"
        if not result.duplicate:
            self.charged += Decimal(cost)
            if rid:
                self.ids[rid] = (self.now, user, Decimal(cost))

    @rule(user=st.one_of(st.none(), st.sampled_from(USERS)))
    def reset(self, user: str | None) -> None:
        if not self.ledger.exists():
            return
        try:
            self.ledger.reset(None if user is None else [user])
        except NotFoundError:  # unknown user, or no project yet
            assert user not in self._existing()

    @rule()
    def reset_due(self) -> None:
        if not self.ledger.exists():
            return
        first = self.ledger.reset_due()
        assert self.ledger.reset_due().reset == ()  # idempotent
        for user, closed in first.reset:
            assert closed.end <= self.now, user

    @rule(user=st.sampled_from(USERS))
    def delete(self, user: str) -> None:
        if not self.ledger.exists():
            return
        try:
            self.ledger.delete([user])
        except NotFoundError:  # unknown user, or no project yet
            assert user not in self._existing()

    @rule(total=st.one_of(st.none(), budgets), duration=st.sampled_from([*DURATIONS, KEEP]))
    def set_cap(self, total: str | None, duration: str | None) -> None:
        had_cap = self.ledger.cap() is not None
        try:
            self.ledger.set_cap(total, duration=duration)
        except InvalidAmountError:
            raise
        except Exception as exc:  # no cap yet and no amount: a usage error
            assert total is None and not had_cap, exc

    @rule()
    def clear_cap(self) -> None:
        if self.ledger.exists():
            self.ledger.clear_cap()

    @rule(user=st.sampled_from(USERS), total=budgets, duration=st.sampled_from([*DURATIONS, KEEP]))
    def change(self, user: str, total: str, duration: str | None) -> None:
        try:
            self.ledger.set(user, budget=total, duration=duration)
        except NotFoundError:  # unknown user, or no project yet
            assert user not in self._existing()

    @invariant()
    def balances_equal_replay(self) -> None:
        if not self.ledger.exists():
            return
        state = json.loads(self.ledger.store.path.read_bytes())  # type: ignore[attr-defined]
        events = list(reversed(self.ledger.history()))  # history() is newest first
        replayed = rules.replay(events)
        stored = {user: Decimal(rec["current_cost"]) for user, rec in state["users"].items()}
        if state.get("cap") is not None:
            stored[CAP] = Decimal(state["cap"]["current_cost"])
        assert stored == replayed
        recorded = sum((e.cost for e in events if e.type == "charge"), Decimal(0))
        assert recorded == self.charged
        # what a reader sees now equals the stored balance once due periods are rolled
        for user in stored:
            if user != CAP:
                seen = self.ledger.get(user)
                assert seen.current_cost in (stored[user], Decimal(0))


LedgerMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40, deadline=None)
test_ledger_replay = LedgerMachine.TestCase


def test_several_thresholds_are_sorted_once_each_and_bounded() -> None:
    assert rules.check_alerts([Decimal(100), Decimal(50), Decimal("80"), Decimal("50.0")]) == (
        50,
        80,
        100,
    )
    assert rules.check_alerts(None) == () and rules.check_alerts(Decimal(80)) == (80,)
    with pytest.raises(InvalidAmountError):
        rules.check_alerts([Decimal(n) for n in range(1, 13)])


def test_crossed_thresholds_are_those_between_the_spend_before_and_after() -> None:
    now = utc(2026, 1, 1)
    budget = rules.new_budget(
        "a", Decimal(10), now, alert_at=[Decimal(50), Decimal(80), Decimal(100)]
    )
    after = rules.charge(budget, Decimal(9), None)
    assert rules.crossed_thresholds(Decimal(0), after) == (50, 80)
    assert rules.crossed_thresholds(Decimal(5), after) == (80,)  # 50% was reached before
    assert rules.crossed_thresholds(Decimal(9), after) == ()
    full = rules.charge(after, Decimal(1), None)  # exactly the budget: 100% reached, not over
    assert rules.crossed_thresholds(Decimal(9), full) == (100,)
    assert not rules.went_over(Decimal(9), full)
    assert rules.went_over(Decimal(10), rules.charge(full, Decimal("0.000001"), None))
    assert not rules.went_over(Decimal(11), rules.charge(full, Decimal(2), None))  # over before
