"""The ledger's operations, decided once for every store.

Each function here is one ledger operation (charge, reserve, commit, release, create, set, reset,
reset-due, delete, cap) written against :class:`State`: the values of one project inside one
transaction. A store opens the transaction (a lock and a document, a database transaction with row
locks, ...), hands its state to the operation, and makes what the operation did atomic and durable.
The operation decides everything about money, periods, holds and idempotency, by the pure rules of
:mod:`budgetctl.core.rules`, and records what it did as typed :mod:`~budgetctl.core.events`. So two
stores cannot disagree on a charge: neither decides it (docs/library.md, "Writing a store").

Nothing here reads a clock, a file or the environment: ``state.now`` is the transaction's time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from budgetctl.core import events, rules
from budgetctl.core import hooks as core_hooks
from budgetctl.core.money import add, check_amount, subtract
from budgetctl.core.periods import Duration
from budgetctl.core.record import Record
from budgetctl.core.rules import CAP, KEEP, Budget, ChargeRequest, ClosedPeriod, Hold, Keep
from budgetctl.core.rules import RememberedCharge as Remembered
from budgetctl.errors import (
    BudgetExceededError,
    HoldCommittedError,
    UnknownHoldError,
    UnknownUserError,
    UsageError,
    UserExistsError,
)


class State(Protocol):
    """One project's values inside one transaction, as a store provides them.

    Reads return what is stored (budgets not rolled over: the operations do that, and record it);
    writes change the transaction's copy, which the store makes durable, with every recorded event,
    when the operation returns, or not at all.
    """

    project: str
    now: datetime

    def budget(self, user: str) -> Budget | None: ...

    def users(self) -> Collection[str]: ...

    def put(self, budget: Budget) -> None: ...

    def remove(self, user: str) -> None: ...

    def cap(self) -> Budget | None: ...

    def put_cap(self, cap: Budget | None) -> None: ...

    def holds(self) -> Sequence[Hold]: ...

    def put_hold(self, hold: Hold) -> None: ...

    def drop_hold(self, hold_id: str) -> None: ...

    def remembered(self, key: str) -> Remembered | None:
        """What idempotency key ``key`` was charged for, if it was (and is not forgotten)."""

    def remember(self, key: str, charge: Remembered) -> None:
        """Note that this transaction charged ``key`` (a store that indexes its history's
        ``charge``/``commit`` events by their keys may do nothing here)."""

    def spent_since(self, start: datetime) -> Decimal:
        """What the project's charges add up to from ``start`` on (its history's charges)."""

    def due(self, users: Sequence[str] | None) -> Iterable[str]:
        """Of ``users`` (every user when None), those whose period may have ended by ``now``: a
        shortcut past idle budgets; the operation checks each one it is given."""

    def record(self, event: events.Event) -> None: ...

    def hooks(self) -> Sequence[core_hooks.Hook]:
        """The project's hooks (read only when an event a hook may be for is recorded)."""

    def queue(self, delivery: core_hooks.Delivery) -> None:
        """Put ``delivery`` in the outbox, durable with this transaction's events."""

    def outbox_size(self) -> int:
        """How many deliveries wait in the outbox (queued by this transaction too)."""

    def queued(self) -> int:
        """How many deliveries this transaction queued so far."""


Notice = events.Alert | events.Over


class ChargeOutcome(Record):
    """The budget after a charge; ``duplicate`` when the request id was charged before.
    ``alerts``: the thresholds it crossed and the overruns it caused (the user's, then the
    cap's), recorded with it; ``queued``: hook deliveries its transaction queued."""

    budget: Budget
    cap: Budget | None
    duplicate: bool
    closed: tuple[ClosedPeriod, ...] = ()
    alerts: tuple[Notice, ...] = ()
    queued: int = 0


class ReserveOutcome(Record):
    """A hold placed (``hold``), or refused (``hold`` None, ``blocked_by`` "user" or "project");
    ``reserved``/``cap_reserved``: what open holds reserve, this one included when placed."""

    hold: Hold | None
    budget: Budget
    cap: Budget | None
    reserved: Decimal
    cap_reserved: Decimal
    blocked_by: str | None


class CommitOutcome(Record):
    """A hold settled by its actual cost. ``held``: what the hold reserved, None when it was no
    longer open (expired, released or unknown: the cost is recorded all the same)."""

    charge: ChargeOutcome
    hold_id: str
    held: Decimal | None
    cost: Decimal

    @property
    def over_hold(self) -> Decimal | None:
        """How far the actual cost went past the hold, when it did."""
        if self.held is None or self.charge.duplicate or self.cost <= self.held:
            return None
        return subtract(self.cost, self.held)


class ProjectView(Record):
    """Every budget of a project as of ``now`` (periods that ended shown as rolled over), and the
    holds open then."""

    project: str
    users: tuple[Budget, ...]
    cap: Budget | None
    holds: tuple[Hold, ...] = ()


class ResetDue(Record):
    """What one ``reset-due`` did (or would do, in a dry run)."""

    project: str
    checked: int
    reset: tuple[tuple[str, ClosedPeriod], ...]
    cap: ClosedPeriod | None = None
    expired: tuple[Hold, ...] = ()
    delivered: int = 0  # hook events delivered after the resets (by the Ledger)
    undelivered: int = 0  # and those that failed again
    outbox: int = 0  # hook events waiting in the outbox after the resets


# --- reading inside a transaction -------------------------------------------------------------


def _closed_event(now: datetime, user: str | None, closed: ClosedPeriod) -> events.PeriodClosed:
    return events.PeriodClosed(now, user, *closed)


def notify(state: State, event: events.Event) -> None:
    """Record ``event`` and queue it for the hooks that are for its kind, in the same step."""
    state.record(event)
    if core_hooks.kind_of(event) is not None:
        hooks = state.hooks()
        if hooks:  # (most projects have none: a reset-due records an event per due budget)
            for delivery in core_hooks.deliveries(state.project, event, hooks, state.now):
                state.queue(delivery)


def _notices(state: State, user: str | None, before: Decimal, after: Budget) -> list[Notice]:
    """Record the thresholds a charge crossed and the overrun it caused, for one budget."""
    found: list[Notice] = [
        events.Alert(
            state.now, user, threshold, after.current_cost, after.total_budget, after.period_start
        )
        for threshold in rules.crossed_thresholds(before, after)
    ]
    if rules.went_over(before, after):
        found.append(
            events.Over(state.now, user, after.current_cost, after.total_budget, after.period_start)
        )
    for notice in found:
        notify(state, notice)
    return found


def _alerts(
    state: State,
    before: tuple[Budget, Budget | None],
    after: tuple[Budget, Budget | None],
) -> tuple[Notice, ...]:
    found = _notices(state, before[0].user, before[0].current_cost, after[0])
    if before[1] is not None and after[1] is not None:
        found += _notices(state, None, before[1].current_cost, after[1])
    return tuple(found)


def user_budget(state: State, user: str) -> Budget:
    """``user``'s budget rolled over to ``now`` (a period that ended is closed and recorded)."""
    budget = state.budget(user)
    if budget is None:
        raise UnknownUserError(user, state.project, state.users())
    rolled, closed = rules.roll_over(budget, state.now)
    if closed is not None:
        state.put(rolled)
        notify(state, _closed_event(state.now, user, closed))
    return rolled


def cap_budget(state: State) -> Budget | None:
    """The project cap rolled over to ``now``, or None."""
    cap = state.cap()
    if cap is None:
        return None
    rolled, closed = rules.roll_over(cap, state.now)
    if closed is not None:
        state.put_cap(rolled)
        notify(state, _closed_event(state.now, None, closed))
    return rolled


def open_holds(state: State) -> list[Hold]:
    """The holds open at ``now``; those that expired are archived (``expire``) on the way."""
    found = []
    for hold in list(state.holds()):
        if hold.is_open(state.now):
            found.append(hold)
        else:
            state.drop_hold(hold.hold_id)
            state.record(
                events.HoldReleased(state.now, hold.hold_id, hold.user, hold.amount, expired=True)
            )
    return found


# --- budgets ------------------------------------------------------------------------------------


def create(state: State, budgets: Sequence[Budget], *, replace: bool = False) -> list[Budget]:
    for budget in budgets:
        if not replace and state.budget(budget.user) is not None:
            raise UserExistsError(budget.user)
    for budget in budgets:
        state.put(budget)
        state.record(
            events.Create(
                budget.created_at,
                budget.user,
                budget.total_budget,
                budget.duration.text if budget.duration else None,
                budget.current_cost,
            )
        )
    return list(budgets)


def change(state: State, user: str, changes: rules.Changes) -> Budget:
    budget = rules.change(user_budget(state, user), state.now, changes)
    state.put(budget)
    state.record(
        events.Set(
            state.now,
            user,
            budget.total_budget,
            budget.duration.text if budget.duration else None,
            budget.timezone,
        )
    )
    return budget


def delete(state: State, users: Sequence[str]) -> list[str]:
    """Remove budgets (their open holds are released with them)."""
    for user in users:
        if state.budget(user) is None:
            raise UnknownUserError(user, state.project, state.users())
    gone = set(users)
    for hold in open_holds(state):
        if hold.user in gone:
            state.drop_hold(hold.hold_id)
            state.record(events.HoldReleased(state.now, hold.hold_id, hold.user, hold.amount))
    for user in users:
        state.remove(user)
        state.record(events.Delete(state.now, user))
    return list(users)


# --- charges ------------------------------------------------------------------------------------


def _duplicate(state: State, key: str | None, charge: Remembered) -> bool:
    return key is not None and rules.is_duplicate(key, state.remembered(key), charge)


def _apply(
    state: State, budget: Budget, cap: Budget | None, request: ChargeRequest
) -> tuple[Budget, Budget | None]:
    budget = rules.charge(budget, request.cost, request.model)
    state.put(budget)
    if cap is not None:
        cap = rules.charge(cap, request.cost, None)
        state.put_cap(cap)
    return budget, cap


def charge(state: State, request: ChargeRequest, *, enforce: bool = False) -> ChargeOutcome:
    """Record a cost (idempotent by request id). ``enforce``: refuse it (BudgetExceededError,
    nothing recorded) when it does not fit what the user's budget, then the cap, has left after
    their spend and open holds."""
    budget = user_budget(state, request.user)
    cap = cap_budget(state)
    holds = open_holds(state)
    this = Remembered.of(request)
    if _duplicate(state, request.request_id, this):
        return ChargeOutcome(budget, cap, duplicate=True)
    if enforce:
        _enforce(budget, cap, holds, request.cost, state.now)
    before = (budget, cap)
    budget, cap = _apply(state, budget, cap, request)
    state.record(events.Charge(state.now, *request))
    alerts = _alerts(state, before, (budget, cap))
    if request.request_id is not None:
        state.remember(request.request_id, this)
    return ChargeOutcome(budget, cap, duplicate=False, alerts=alerts, queued=state.queued())


def _enforce(
    budget: Budget, cap: Budget | None, holds: Sequence[Hold], cost: Decimal, now: datetime
) -> None:
    if not rules.fits(budget, rules.reserved(holds, now, budget.user), cost):
        raise BudgetExceededError(budget.current_cost, budget.total_budget)
    if cap is not None and not rules.fits(cap, rules.reserved(holds, now), cost):
        raise BudgetExceededError(cap.current_cost, cap.total_budget, scope="project")


# --- holds --------------------------------------------------------------------------------------


def reserve(
    state: State, hold_id: str, user: str, amount: Decimal, ttl: timedelta
) -> ReserveOutcome:
    """Hold ``amount`` of ``user``'s budget and of the cap for ``ttl`` if it fits what is left
    after spend and open holds; else hold nothing (``blocked_by`` says which budget)."""
    rules.check_hold_id(hold_id)
    amount = check_amount(amount, "amount to hold")
    rules.check_ttl(ttl)
    budget = user_budget(state, user)
    cap = cap_budget(state)
    holds = open_holds(state)
    if any(hold.hold_id == hold_id for hold in holds):
        raise UsageError(f"hold {hold_id} exists already")
    held, cap_held = rules.reserved(holds, state.now, user), rules.reserved(holds, state.now)
    blocked = None
    if not rules.fits(budget, held, amount):
        blocked = "user"
    elif cap is not None and not rules.fits(cap, cap_held, amount):
        blocked = "project"
    if blocked is not None:
        return ReserveOutcome(None, budget, cap, held, cap_held, blocked)
    hold = Hold(hold_id, user, amount, state.now, state.now + ttl)
    state.put_hold(hold)
    state.record(events.HoldPlaced(state.now, hold_id, user, amount, hold.expires_at))
    return ReserveOutcome(hold, budget, cap, add(held, amount), add(cap_held, amount), None)


def commit(state: State, hold_id: str, request: ChargeRequest) -> CommitOutcome:
    """Record the actual cost of the call a hold was for, and free the hold, in one step.

    Never refused: the money is spent. A cost above the hold is recorded (``over_hold`` says by
    how much); a hold no longer open (expired, released, unknown) is reported by ``held`` None.
    Committing a hold twice follows the request-id rule: the same charge again is a duplicate,
    another one a conflict (RequestIdConflictError).
    """
    rules.check_hold_id(hold_id)
    stored = next((hold for hold in state.holds() if hold.hold_id == hold_id), None)
    if stored is not None and stored.user != request.user:
        raise UsageError(f"hold {hold_id} is {stored.user!r}'s, not {request.user!r}'s")
    budget = user_budget(state, request.user)
    cap = cap_budget(state)
    this = Remembered.of(request)
    key = rules.hold_key(hold_id)
    if _duplicate(state, key, this) or _duplicate(state, request.request_id, this):
        return CommitOutcome(
            ChargeOutcome(budget, cap, duplicate=True), hold_id, None, request.cost
        )
    still_open = stored is not None and stored.is_open(state.now)
    open_holds(state)  # archives this hold too, if it expired
    if still_open:
        state.drop_hold(hold_id)
    before = (budget, cap)
    budget, cap = _apply(state, budget, cap, request)
    held = stored.amount if still_open and stored is not None else None
    state.record(events.Commit(state.now, *request, hold_id=hold_id, held=held))
    alerts = _alerts(state, before, (budget, cap))
    state.remember(key, this)
    if request.request_id is not None:
        state.remember(request.request_id, this)
    outcome = ChargeOutcome(budget, cap, duplicate=False, alerts=alerts, queued=state.queued())
    return CommitOutcome(outcome, hold_id, held, request.cost)


def release(state: State, hold_ids: Sequence[str]) -> list[Hold]:
    """Free holds whose call was not made. Unknown or expired: UnknownHoldError; committed
    already: HoldCommittedError; nothing changes then. Holds that expired are archived on the way,
    as by every write, so an expired hold is not open whether or not a write archived it first."""
    stored = {hold.hold_id: hold for hold in open_holds(state)}
    for hold_id in hold_ids:
        rules.check_hold_id(hold_id)
        if hold_id in stored:
            continue
        if state.remembered(rules.hold_key(hold_id)) is not None:
            raise HoldCommittedError(hold_id)
        raise UnknownHoldError(hold_id, state.project)
    released = []
    for hold_id in hold_ids:
        hold = stored[hold_id]
        state.drop_hold(hold_id)
        state.record(events.HoldReleased(state.now, hold_id, hold.user, hold.amount))
        released.append(hold)
    return released


# --- resets -------------------------------------------------------------------------------------


def reset(state: State, users: Sequence[str] | None) -> list[tuple[str, ClosedPeriod]]:
    """Zero the spend of ``users`` (every user when None) now; archived as closed periods."""
    done = []
    for user in list(state.users()) if users is None else users:
        budget, closed = rules.reset(user_budget(state, user), state.now)
        state.put(budget)
        notify(state, _closed_event(state.now, user, closed))
        done.append((user, closed))
    return done


def reset_due(state: State, users: Sequence[str] | None = None) -> ResetDue:
    """Close every period that ended (the cap's too) and archive expired holds. Idempotent."""
    if users is not None:
        for user in users:
            if state.budget(user) is None:
                raise UnknownUserError(user, state.project, state.users())
    checked = len(state.users()) if users is None else len(users)
    done = []
    now = state.now
    for user in list(state.due(users)):  # (every due budget of a project: kept lean)
        budget = state.budget(user)
        assert budget is not None
        rolled, closed = rules.roll_over(budget, now)
        if closed is not None:
            state.put(rolled)
            notify(state, events.PeriodClosed(now, user, *closed))
            done.append((user, closed))
    cap = state.cap()
    cap_closed = None
    if cap is not None:
        rolled_cap, cap_closed = rules.roll_over(cap, state.now)
        if cap_closed is not None:
            state.put_cap(rolled_cap)
            notify(state, _closed_event(state.now, None, cap_closed))
    before = list(state.holds())
    still = {hold.hold_id for hold in open_holds(state)}
    expired = tuple(hold for hold in before if hold.hold_id not in still)
    return ResetDue(
        state.project, checked, tuple(done), cap_closed, expired, outbox=state.outbox_size()
    )


# --- the project cap ----------------------------------------------------------------------------


def set_cap(
    state: State,
    total_budget: Decimal | None,
    duration: Duration | Keep | None = KEEP,
    timezone: str | None = None,
    alert_at: Sequence[Decimal] | Decimal | Keep | None = KEEP,
) -> Budget:
    """Set or change the project cap. A new cap, or one moved onto a new grid, counts the
    project's charges of its current period so far (from the history). ``alert_at``: the cap's
    alert thresholds (KEEP: unchanged; None: none)."""
    cap = cap_budget(state)
    if cap is None:
        if total_budget is None:
            raise UsageError("there is no project cap yet: give --budget AMOUNT to set one")
        cap = rules.new_budget(
            CAP,
            total_budget,
            state.now,
            duration=None if duration is KEEP else duration,
            timezone=timezone or "UTC",
            alert_at=None if alert_at is KEEP else alert_at,
        )
        cap = cap._replace(current_cost=state.spent_since(cap.period_start))
    else:
        changes = rules.Changes(
            total_budget=KEEP if total_budget is None else total_budget,
            duration=duration,
            timezone=KEEP if timezone is None else timezone,
            alert_at=alert_at,
        )
        moved = rules.change(cap, state.now, changes)
        if moved.period_start != cap.period_start:  # a new grid: count its period
            moved = moved._replace(current_cost=state.spent_since(moved.period_start))
        cap = moved
    state.put_cap(cap)
    state.record(
        events.CapSet(
            state.now,
            cap.total_budget,
            cap.duration.text if cap.duration else None,
            cap.timezone,
            cap.current_cost,
        )
    )
    return cap


def clear_cap(state: State) -> bool:
    if state.cap() is None:
        return False
    state.put_cap(None)
    state.record(events.CapClear(state.now))
    return True


# --- reading, outside a transaction ------------------------------------------------------------


class Standing(Record):
    """A user's budget, the cap, and what open holds reserve of each, as of one moment."""

    budget: Budget
    cap: Budget | None
    reserved: Decimal
    cap_reserved: Decimal

    @property
    def available(self) -> Decimal:
        return rules.available(self.budget, self.reserved)


def standing(budget: Budget, cap: Budget | None, holds: Iterable[Hold], now: datetime) -> Standing:
    """A snapshot's values as of ``now``: periods that ended shown rolled over, holds that
    expired not counted."""
    holds = list(holds)
    return Standing(
        rules.roll_over(budget, now)[0],
        None if cap is None else rules.roll_over(cap, now)[0],
        rules.reserved(holds, now, budget.user),
        rules.reserved(holds, now),
    )
