"""Ledger rules: budgets, charges, periods closing, and replay of the history.

Pure functions over frozen values, shared by every kind of store (the JSON store now, a database
store later): a store's job is to run one of these atomically and persist the result. Nothing here
reads a clock, a file or the environment.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from budgetctl.core import events, periods
from budgetctl.core.money import EXACT, ZERO, add, check_amount, subtract
from budgetctl.core.periods import Duration
from budgetctl.core.record import Record
from budgetctl.errors import (
    InvalidAmountError,
    InvalidNameError,
    RequestIdConflictError,
    UsageError,
)

RECENT_PERIODS = 12  # closed periods a single budget is read with (all are in the history)
MAX_TOKENS = 10**9  # more tokens than this in one call is a typo, not a call
REQUEST_ID_TTL = timedelta(days=90)  # a request id is remembered at least this long
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # fullmatch: '$' allows "\n"


def check_project_name(name: str) -> str:
    """``name`` if it is a valid project name: 1-64 of ``[A-Za-z0-9._-]``, not starting with '.'."""
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid project name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "not starting with '.'"
        )
    return name


def check_user_name(user: str) -> str:
    """``user`` if it is a valid user key: a non-empty string of at most 256 characters."""
    if not isinstance(user, str) or not user or len(user) > 256:
        raise InvalidNameError("a user must be a non-empty string of at most 256 characters")
    # (every control character is unprintable: the scan runs only for names that have one)
    if not user.isprintable() and any(ord(c) < 32 or c == "\x7f" for c in user):
        raise InvalidNameError(f"user {user!r} contains control characters")
    return check_text(user, "user")


def check_text(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text, which every file and output can hold.

    A name taken from argv holds lone surrogates where its bytes were not UTF-8 (Python's
    ``surrogateescape``), and JSON can spell them (``"\\ud800"``); neither can be written out.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(
            f"{what} {value!r} is not valid UTF-8 text (an undecodable byte or a lone surrogate)"
        ) from None
    return value


def check_tokens(value: int, what: str) -> int:
    """A token count: a whole number from 0 to 10**9."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be a whole number, not {value!r}")
    if value < 0 or value > MAX_TOKENS:
        raise UsageError(f"{what} must be between 0 and {MAX_TOKENS:,} (got {value:,})")
    return value


def check_alert(value: Decimal | None) -> Decimal | None:
    """An alert threshold in percent of the budget: 0 < value <= 1000, or None."""
    if value is None:
        return None
    value = check_amount(value, "alert threshold")
    if value == 0 or value > 1000:
        raise InvalidAmountError("alert threshold must be a percentage above 0 and at most 1000")
    return value


MAX_ALERTS = 10  # thresholds one budget may have


def check_alerts(values: Sequence[Decimal] | Decimal | None) -> tuple[Decimal, ...]:
    """Alert thresholds (percent of the budget), sorted, each once: ``()`` for none.

    One value (``80``) or several (``50, 80, 100``); each as :func:`check_alert` allows.
    """
    if values is None:
        return ()
    if isinstance(values, Decimal):
        values = (values,)
    checked: dict[Decimal, Decimal] = {}
    for value in values:
        threshold = check_alert(value)
        assert threshold is not None
        checked.setdefault(threshold.normalize(), threshold)
    if len(checked) > MAX_ALERTS:
        raise InvalidAmountError(f"at most {MAX_ALERTS} alert thresholds per budget")
    return tuple(sorted(checked.values()))


class ClosedPeriod(Record):
    """A period that ended (rolled over at its boundary) or was reset by hand."""

    start: datetime
    end: datetime
    spent: Decimal
    budget: Decimal
    reason: str = "rollover"  # "rollover" or "reset"


class Budget(Record):
    """One budget: a user's, or the project cap (``user`` is then ``CAP``).

    ``start`` is the explicit anchor (``--start``, ``created_at=``), or None for the default
    anchor of the duration (see :func:`periods.default_anchor`).
    """

    user: str
    total_budget: Decimal
    duration: Duration | None
    timezone: str
    start: datetime | None
    created_at: datetime
    period_start: datetime
    next_reset_at: datetime | None
    current_cost: Decimal = ZERO
    model_cost: Mapping[str, Decimal] = MappingProxyType({})
    alert_at: tuple[Decimal, ...] = ()  # thresholds in percent, ascending (check_alerts)
    recent_periods: tuple[ClosedPeriod, ...] = ()

    @property
    def last_updated_at(self) -> datetime:
        """When the spend last went back to zero: the period's start (LiteLLM's field)."""
        return self.period_start

    @property
    def remaining(self) -> Decimal:
        """What is left, never negative."""
        return max(subtract(self.total_budget, self.current_cost), ZERO)

    @property
    def over_budget(self) -> bool:
        return self.current_cost > self.total_budget

    @property
    def alerting(self) -> bool:
        """At or past its lowest alert threshold (and not over budget)."""
        if not self.alert_at or self.over_budget:
            return False
        return reached(self.current_cost, self.total_budget, self.alert_at[0])

    def anchor(self) -> datetime:
        if self.duration is None:
            return self.created_at
        if self.start is not None:
            return self.start
        return periods.default_anchor(
            self.duration, periods.parse_timezone(self.timezone), self.created_at
        )


# The cap's name where budgets are keyed by name (its Budget.user, replay's result). It holds a
# control character, which check_user_name refuses, so no user can be mistaken for it (a user
# named "*project cap*", the name budgetctl 0.1 used, made the replay count every charge twice).
CAP = "\x00project cap"


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC, to the microsecond: LiteLLM's ``created_at`` is a sub-second float, and
    two budgets created 0.1 s apart must not get the same creation time."""
    return moment.astimezone(periods.UTC)


def _grid(
    duration: Duration | None, anchor: datetime, tz_name: str, now: datetime
) -> tuple[datetime, datetime | None]:
    if duration is None:
        return anchor, None
    return periods.period_containing(duration, anchor, periods.parse_timezone(tz_name), now)


def current_period(
    duration: Duration, timezone: str, start: datetime | None, created_at: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The period containing ``now`` of a budget with these settings (see Budget.anchor)."""
    tz = periods.parse_timezone(timezone)
    anchor = start if start is not None else periods.default_anchor(duration, tz, created_at)
    return periods.period_containing(duration, anchor, tz, now)


def new_budget(
    user: str,
    total_budget: Decimal,
    now: datetime,
    duration: Duration | None = None,
    timezone: str = "UTC",
    start: datetime | None = None,
    alert_at: Sequence[Decimal] | Decimal | None = None,
    current_cost: Decimal = ZERO,
    model_cost: Mapping[str, Decimal] | None = None,
) -> Budget:
    """A fresh budget, in the period that contains ``now``."""
    periods.parse_timezone(timezone)
    created = _utc(now)
    start = _utc(start) if start is not None else None
    draft = Budget(
        user=user,
        total_budget=check_amount(total_budget, "budget"),
        duration=duration,
        timezone=timezone,
        start=start,
        created_at=created,
        period_start=created,
        next_reset_at=None,
        current_cost=check_amount(current_cost, "current cost"),
        model_cost=dict(model_cost or {}),
        alert_at=check_alerts(alert_at),
    )
    if duration is None:
        return draft._replace(period_start=start or created)
    period_start, next_reset = _grid(duration, draft.anchor(), timezone, now)
    return draft._replace(period_start=period_start, next_reset_at=next_reset)


def is_due(budget: Budget, now: datetime) -> bool:
    """True when the budget's period has ended at ``now``."""
    return budget.next_reset_at is not None and now >= budget.next_reset_at


def _close(
    budget: Budget, closed: ClosedPeriod, period_start: datetime, next_reset: datetime | None
) -> Budget:
    # The new budget built whole, in Budget's order: half the time of _replace with five
    # keywords, and reset-due closes every due budget of a project.
    user, total, duration, timezone, start, created_at, _, _, _, _, alert_at, recent = budget
    return Budget(
        user,
        total,
        duration,
        timezone,
        start,
        created_at,
        period_start,
        next_reset,
        ZERO,
        {},
        alert_at,
        (closed, *recent)[:RECENT_PERIODS],
    )


def roll_over(budget: Budget, now: datetime) -> tuple[Budget, ClosedPeriod | None]:
    """Close the budget's period if it ended, and start the one that contains ``now``.

    Missed boundaries are caught up in one step: the next period starts at the grid boundary, never
    at the time this ran, so late or skipped cron runs cause no drift. The idle periods in between
    held no spend (nothing can be charged to a period that has not been rolled into) and are not
    archived one by one.
    """
    if not is_due(budget, now):
        return budget, None
    assert budget.next_reset_at is not None and budget.duration is not None
    closed = ClosedPeriod(  # start, end, spent, budget (positional, as in _close)
        budget.period_start, budget.next_reset_at, budget.current_cost, budget.total_budget
    )
    period_start, next_reset = current_period(
        budget.duration, budget.timezone, budget.start, budget.created_at, now
    )
    return _close(budget, closed, period_start, next_reset), closed


def reset(budget: Budget, now: datetime) -> tuple[Budget, ClosedPeriod]:
    """Zero the spend now; the part of the period so far is archived. Boundaries are kept."""
    rolled, _ = roll_over(budget, now)
    moment = _utc(now)
    closed = ClosedPeriod(
        start=rolled.period_start,
        end=moment,
        spent=rolled.current_cost,
        budget=rolled.total_budget,
        reason="reset",
    )
    return _close(rolled, closed, moment, rolled.next_reset_at), closed


def charge(budget: Budget, cost: Decimal, model: str | None) -> Budget:
    """Add ``cost`` to the budget's current period (call :func:`roll_over` first)."""
    cost = check_amount(cost, "cost")
    model_cost = dict(budget.model_cost)
    if model:
        model_cost[model] = add(model_cost.get(model, ZERO), cost)
    return budget._replace(current_cost=add(budget.current_cost, cost), model_cost=model_cost)


def reached(spent: Decimal, total: Decimal, threshold: Decimal) -> bool:
    """Whether ``spent`` is at or past ``threshold`` percent of ``total`` (exactly)."""
    return EXACT.multiply(spent, 100) >= EXACT.multiply(total, threshold)


def crossed_thresholds(before: Decimal, after: Budget) -> tuple[Decimal, ...]:
    """The alert thresholds a charge crossed: those that ``after`` (the budget with the charge)
    has reached and its spend ``before`` the charge had not, in the same period.

    Within a period spend only grows, and a charge runs under the budget's lock, so each threshold
    is crossed by exactly one charge per period, however many processes race across it.
    """
    return tuple(
        threshold
        for threshold in after.alert_at
        if reached(after.current_cost, after.total_budget, threshold)
        and not reached(before, after.total_budget, threshold)
    )


def went_over(before: Decimal, after: Budget) -> bool:
    """Whether the charge that took the spend from ``before`` to ``after.current_cost`` took it
    past the budget (from at or under to over)."""
    return before <= after.total_budget < after.current_cost


def crossed_alert(budget: Budget, cost: Decimal) -> bool:
    """True when a charge of ``cost``, already in ``budget``, crossed one of its alert thresholds
    and left it not over budget (that is a warning of its own)."""
    if budget.over_budget:
        return False
    return bool(crossed_thresholds(max(subtract(budget.current_cost, cost), ZERO), budget))


def would_exceed(budget: Budget, cost: Decimal) -> bool:
    """True when spending ``cost`` more would take the budget past its total."""
    return add(budget.current_cost, cost) > budget.total_budget


def change(budget: Budget, now: datetime, changes: Changes) -> Budget:
    """The budget with some settings changed and its spend kept (``set``).

    A changed duration, time zone or start moves the budget onto the new grid: the current period
    becomes the one of the new grid that contains ``now``, and keeps the spend so far.
    """
    rolled, _ = roll_over(budget, now)
    updates: dict[str, Any] = {}
    if changes.total_budget is not KEEP:
        updates["total_budget"] = check_amount(changes.total_budget, "budget")
    if changes.alert_at is not KEEP:
        updates["alert_at"] = check_alerts(changes.alert_at)
    regrid = False
    if changes.duration is not KEEP:
        updates["duration"] = changes.duration
        regrid = True
    if changes.timezone is not KEEP:
        periods.parse_timezone(changes.timezone)
        updates["timezone"] = changes.timezone
        regrid = True
    if changes.start is not KEEP:
        updates["start"] = _utc(changes.start) if changes.start is not None else None
        regrid = True
    changed = rolled._replace(**updates)
    if regrid:
        if changed.duration is None:
            changed = changed._replace(next_reset_at=None)
        else:
            period_start, next_reset = _grid(
                changed.duration, changed.anchor(), changed.timezone, now
            )
            changed = changed._replace(period_start=period_start, next_reset_at=next_reset)
    return changed


# --- request ids ----------------------------------------------------------------------------


class ChargeRequest(Record):
    """One cost to record for a user (its first six fields are what idempotency compares)."""

    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    request_id: str | None = None
    estimated: bool = False


class RememberedCharge(Record):
    """What a request id was charged for: the fields that make a retry "the same charge".

    ``known`` is False for an id a 0.1 state remembered whose charge cannot be found any more
    (its details were never kept with it): such an id is a duplicate whatever comes with it.
    """

    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    known: bool = True

    @classmethod
    def of(cls, charge: ChargeRequest | Any) -> RememberedCharge:
        """The remembered part of a request, or of a ``Charge``/``Commit`` history event."""
        return cls(
            charge.user,
            charge.cost,
            charge.model,
            charge.prompt_tokens,
            charge.completion_tokens,
            charge.cached_tokens,
        )


def is_duplicate(request_id: str, first: RememberedCharge | None, again: RememberedCharge) -> bool:
    """Idempotency (docs/library.md, request_id=) of a charge ``again`` under ``request_id``.

    False when the id was never charged (``first`` is None): charge it. True when ``again`` is the
    charge the id was recorded for (same user, cost, model and token counts): a duplicate that
    changes nothing. Anything else under the same id is a conflict: RequestIdConflictError, and
    nothing changes either. Costs compare as numbers (``0.50`` is ``0.5``).
    """
    if first is None:
        return False
    if not first.known or first[:6] == again[:6]:
        return True
    raise RequestIdConflictError(request_id, *first[:6])


def request_id_horizon(now: datetime, wall_clock: datetime) -> datetime:
    """Request ids charged before this instant may be forgotten.

    :data:`REQUEST_ID_TTL` before the earlier of the ledger's ``now`` and the machine's wall clock:
    a time a user supplies (``reset-due --now`` in 2100, an import dated 2100, a clock set
    forward) can never make the ledger forget an id early, so a retried charge is never charged
    twice. A clock behind the wall clock (a test's, or a backfill's) keeps its own, earlier pace.
    """
    return min(now, wall_clock) - REQUEST_ID_TTL


def spent_since(history: Iterable[events.Event], start: datetime) -> Decimal:
    """What the project's charges in ``history`` add up to from ``start`` on: the spend a cap
    whose period starts there would have counted had it existed (deleted users' charges too: the
    money was spent)."""
    total = ZERO
    for event in history:
        cost = events.spend(event)
        if cost is not None and event.time is not None and event.time >= start:
            total = add(total, cost)
    return total


# --- replay ---------------------------------------------------------------------------------


def replay(history: Iterable[events.Event]) -> dict[str, Decimal]:
    """Each budget's current spend, recomputed from history events (oldest first) alone.

    ``create`` sets the spend it starts from, ``charge`` and ``commit`` add their cost, a closed
    ``period`` puts it back to 0, ``delete`` drops the budget. The project cap is replayed under
    the key :data:`CAP`: every charge counts toward it once it exists, ``cap`` sets what its
    period counts, ``cap-period`` closes it. Holds change no spend. Every store's balances must
    always equal this (the store contract suite checks it).
    """
    spend: dict[str, Decimal] = {}
    for event in history:
        if isinstance(event, events.Create):
            spend[event.user] = event.current_cost
        elif isinstance(event, (events.Charge, events.Commit)):
            spend[event.user] = add(spend.get(event.user, ZERO), event.cost)
            if CAP in spend:
                spend[CAP] = add(spend[CAP], event.cost)
        elif isinstance(event, events.PeriodClosed):
            spend[event.user if event.user is not None else CAP] = ZERO
        elif isinstance(event, events.Delete):
            spend.pop(event.user, None)
        elif isinstance(event, events.CapSet):
            spend[CAP] = event.current_cost
        elif isinstance(event, events.CapClear):
            spend.pop(CAP, None)
    return spend


# --- "no change" ----------------------------------------------------------------------------


class Keep(enum.Enum):
    """The type of :data:`KEEP`: a setting left as it is (None means "none", not "no change")."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep.KEEP


class Changes(Record):
    """Settings to change on a budget (``set``); each one left at :data:`KEEP` is not changed."""

    total_budget: Decimal | Keep = KEEP
    duration: Duration | Keep | None = KEEP
    timezone: str | Keep = KEEP
    start: datetime | Keep | None = KEEP
    alert_at: Sequence[Decimal] | Decimal | Keep | None = KEEP


# --- holds ----------------------------------------------------------------------------------

DEFAULT_HOLD_TTL = timedelta(minutes=15)
MAX_HOLD_TTL = timedelta(days=7)


class Hold(Record):
    """An amount reserved against a user's budget (and the project cap) until ``expires_at``."""

    hold_id: str
    user: str
    amount: Decimal
    created_at: datetime
    expires_at: datetime

    def is_open(self, now: datetime) -> bool:
        """Whether it still counts at ``now``: a hold stops counting at its expiry by itself."""
        return now < self.expires_at


def check_ttl(ttl: timedelta) -> timedelta:
    if ttl <= timedelta(0) or ttl > MAX_HOLD_TTL:
        raise UsageError("a hold's time to live must be more than 0 seconds and at most 7 days")
    return ttl


def check_hold_id(hold_id: str) -> str:
    if not isinstance(hold_id, str) or not re.fullmatch(_HOLD_ID, hold_id):
        raise UsageError(
            f"{hold_id!r} is not a hold id (they look like h_0123456789abcdef01234567)"
        )
    return hold_id


_HOLD_ID = r"h_[0-9a-f]{24}"  # compiled on first use (by re, cached there): only holds need it


def hold_key(hold_id: str) -> str:
    """The idempotency key of a hold's commit: committing a hold twice follows the request-id rule
    (the same charge again is a duplicate, a different one a conflict)."""
    return f"hold:{hold_id}"


def reserved(holds: Iterable[Hold], now: datetime, user: str | None = None) -> Decimal:
    """What the holds open at ``now`` reserve: ``user``'s, or every user's (for the cap)."""
    total = ZERO
    for hold in holds:
        if hold.is_open(now) and (user is None or hold.user == user):
            total = add(total, hold.amount)
    return total


def fits(budget: Budget, held: Decimal, cost: Decimal) -> bool:
    """Whether ``cost`` fits what ``budget`` has left after its spend and ``held`` (open holds)."""
    return add(add(budget.current_cost, held), cost) <= budget.total_budget


def available(budget: Budget, held: Decimal) -> Decimal:
    """Budget - spent - reserved, never negative."""
    return max(subtract(subtract(budget.total_budget, budget.current_cost), held), ZERO)


def idempotency_keys(event: events.Event) -> tuple[str, ...]:
    """The keys a recorded charge is remembered under: its request id, and for a commit its
    hold's key (:func:`hold_key`)."""
    if isinstance(event, events.Commit):
        key = hold_key(event.hold_id)
        return (key,) if event.request_id is None else (event.request_id, key)
    if isinstance(event, events.Charge) and event.request_id is not None:
        return (event.request_id,)
    return ()
