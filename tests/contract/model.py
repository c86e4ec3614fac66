"""A reference ledger for the store contract suite: dicts of Decimals, written for the tests.

It does what docs/periods.md and docs/library.md say a project does, without the core's rules:
a charge rolls its user's period (and the cap's) over first, then counts against the user's budget
and the project cap (``enforce`` refuses one that would go past either total: landing exactly on
it is allowed); a request id charged once is a duplicate when the same charge comes again and a
conflict when anything else does; ``reset`` archives the spend so far; ``reset_due`` closes each
period that ended, once. Periods are worked out here from the duration's length (UTC only, and
only the durations in :data:`DURATIONS`), so the model shares no period arithmetic with the stores.

A period is rolled over when an operation touches its budget (a charge, ``change`` or ``reset`` of
that user; the cap on every charge and ``set_cap``) or by ``reset_due``, never otherwise: which
periods a ``reset_due`` reports depends on that, so every store must follow it.

Every method returns what the store's method returns (or raises the error class it raises) in a
form tests compare with ``==``; :meth:`LedgerModel.snapshot` is every balance as of ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Final, NamedTuple

from budgetctl.errors import (
    BudgetExceededError,
    RequestIdConflictError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
    UserExistsError,
)


class Keep(Enum):
    """ "Leave this setting as it is" (a typed value, so no duration can be mistaken for it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP
ZERO = Decimal(0)
UTC = timezone.utc
# Named durations sit on the calendar (midnight UTC); the others on the budget's creation time.
CALENDAR_ANCHOR = datetime(2001, 1, 1, tzinfo=UTC)
DURATIONS: dict[str | None, tuple[timedelta, bool] | None] = {
    None: None,
    "1h": (timedelta(hours=1), False),
    "6h": (timedelta(hours=6), False),
    "2d": (timedelta(days=2), False),
    "daily": (timedelta(days=1), True),
}


class Period(NamedTuple):
    """A closed period, as the stores report it (compare with ``ClosedPeriod`` via tuple())."""

    start: datetime
    end: datetime
    spent: Decimal
    budget: Decimal
    reason: str = "rollover"


class Balance(NamedTuple):
    """What a test compares of one budget as of ``now``."""

    total: Decimal
    spent: Decimal
    duration: str | None
    period_start: datetime
    next_reset_at: datetime | None
    over_budget: bool


class Charge(NamedTuple):
    """A charge as its request id remembers it."""

    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


class Outcome(NamedTuple):
    """A charge's outcome: the user's and the cap's balance after it, and ``duplicate``."""

    user: Balance
    cap: Balance | None
    duplicate: bool


@dataclass
class Account:
    """A user's budget or the project cap, as stored (rolled over only when touched)."""

    total: Decimal
    duration: str | None
    created: datetime
    start: datetime
    end: datetime | None
    spent: Decimal = ZERO

    def grid(self, now: datetime) -> tuple[datetime, datetime | None]:
        """The period of this account's duration that contains ``now``."""
        shape = DURATIONS[self.duration]
        if shape is None:
            return self.start, None
        length, calendar = shape
        anchor = CALENDAR_ANCHOR if calendar else self.created
        k = (now - anchor) // length
        return anchor + k * length, anchor + (k + 1) * length

    def rolled(self, now: datetime) -> tuple[Account, Period | None]:
        if self.end is None or now < self.end:
            return self, None
        closed = Period(self.start, self.end, self.spent, self.total)
        start, end = self.grid(now)
        return replace(self, start=start, end=end, spent=ZERO), closed

    def balance(self, now: datetime) -> Balance:
        account, _ = self.rolled(now)
        return Balance(
            account.total,
            account.spent,
            account.duration,
            account.start,
            account.end,
            account.spent > account.total,
        )


def new_account(total: Decimal, duration: str | None, now: datetime) -> Account:
    account = Account(total=total, duration=duration, created=now, start=now, end=None)
    if duration is None:
        return account
    start, end = account.grid(now)
    return replace(account, start=start, end=end)


@dataclass
class LedgerModel:
    """One project. ``exact_cap_backfill``: a new cap counts the charges already made in its
    first period (a store with a history can; see :meth:`set_cap`)."""

    exact_cap_backfill: bool = True
    exists: bool = False
    users: dict[str, Account] = field(default_factory=dict)
    cap: Account | None = None
    charges: list[tuple[datetime, Decimal]] = field(default_factory=list)
    ids: dict[str, Charge] = field(default_factory=dict)

    # --- reading -----------------------------------------------------------------------------

    def _project(self) -> None:
        if not self.exists:
            raise UnknownProjectError("model", "model")

    def _user(self, user: str) -> Account:
        self._project()
        if user not in self.users:
            raise UnknownUserError(user, "model")
        return self.users[user]

    def snapshot(self, now: datetime) -> tuple[dict[str, Balance], Balance | None]:
        """Every user's balance and the cap's, as of ``now``."""
        users = {user: account.balance(now) for user, account in self.users.items()}
        return users, None if self.cap is None else self.cap.balance(now)

    def get(self, user: str, now: datetime) -> Balance:
        return self._user(user).balance(now)

    # --- writing -----------------------------------------------------------------------------

    def create(
        self, budgets: list[tuple[str, Decimal, str | None]], now: datetime, replace_: bool
    ) -> list[str]:
        for user, _, _ in budgets:
            if user in self.users and not replace_:
                raise UserExistsError(user)
        for user, total, duration in budgets:
            self.users[user] = new_account(total, duration, now)
        self.exists = True
        return [user for user, _, _ in budgets]

    def _roll_user(self, user: str, now: datetime) -> Account:
        account, _ = self._user(user).rolled(now)
        self.users[user] = account
        return account

    def _roll_cap(self, now: datetime) -> Account | None:
        if self.cap is not None:
            self.cap, _ = self.cap.rolled(now)
        return self.cap

    def charge(
        self, request: Charge, now: datetime, request_id: str | None, enforce: bool, dry_run: bool
    ) -> Outcome:
        self._user(request.user)
        saved = (dict(self.users), self.cap)
        try:
            outcome = self._charge(request, now, request_id, enforce)
        except BaseException:  # a refused charge changes nothing, not even a roll-over
            self.users, self.cap = saved
            raise
        if dry_run:
            self.users, self.cap = saved
        elif not outcome.duplicate:
            self.charges.append((now, request.cost))
            if request_id is not None:
                self.ids[request_id] = request
        return outcome

    def _charge(
        self, request: Charge, now: datetime, request_id: str | None, enforce: bool
    ) -> Outcome:
        account = self._roll_user(request.user, now)
        cap = self._roll_cap(now)
        first = self.ids.get(request_id) if request_id is not None else None
        if first is not None:
            if first != request:
                raise RequestIdConflictError(request_id or "", *first)
            return self._outcome(request.user, now, duplicate=True)
        if enforce:
            if account.spent + request.cost > account.total:
                raise BudgetExceededError(account.spent, account.total)
            if cap is not None and cap.spent + request.cost > cap.total:
                raise BudgetExceededError(cap.spent, cap.total, scope="project")
        self.users[request.user] = replace(account, spent=account.spent + request.cost)
        if cap is not None:
            self.cap = replace(cap, spent=cap.spent + request.cost)
        return self._outcome(request.user, now, duplicate=False)

    def _outcome(self, user: str, now: datetime, *, duplicate: bool) -> Outcome:
        cap = None if self.cap is None else self.cap.balance(now)
        return Outcome(self.users[user].balance(now), cap, duplicate)

    def change(
        self, user: str, now: datetime, total: Decimal | None, duration: str | Keep | None
    ) -> Balance:
        """A new total and/or duration; a new duration (even the same one) moves the budget onto
        its grid, keeping the spend so far."""
        account = self._roll_user(user, now)
        if total is not None:
            account = replace(account, total=total)
        if duration is not KEEP:
            account = self._regrid(account, duration, now)
        self.users[user] = account
        return account.balance(now)

    @staticmethod
    def _regrid(account: Account, duration: str | None, now: datetime) -> Account:
        if duration is None:
            return replace(account, duration=None, end=None)
        start, end = replace(account, duration=duration).grid(now)
        return replace(account, duration=duration, start=start, end=end)

    def reset(self, users: list[str] | None, now: datetime) -> dict[str, Period]:
        self._project()
        names = list(self.users) if users is None else users
        for user in names:
            self._user(user)
        done = {}
        for user in names:
            account = self._roll_user(user, now)
            done[user] = Period(account.start, now, account.spent, account.total, "reset")
            self.users[user] = replace(account, start=now, spent=ZERO)
        return done

    def reset_due(
        self, now: datetime, users: list[str] | None = None
    ) -> tuple[int, dict[str, Period], Period | None]:
        """How many users were checked, the periods closed, and the cap's."""
        self._project()
        names = list(self.users) if users is None else users
        for user in names:
            self._user(user)
        done = {}
        for user in names:
            self.users[user], closed = self.users[user].rolled(now)
            if closed is not None:
                done[user] = closed
        cap_closed = None
        if self.cap is not None:
            self.cap, cap_closed = self.cap.rolled(now)
        return len(names), done, cap_closed

    def delete(self, users: list[str]) -> list[str]:
        for user in users:
            self._user(user)
        for user in users:
            del self.users[user]
        return users

    def spent_since(self, start: datetime) -> Decimal:
        """Every charge made from ``start`` on (deleted users' too: the money was spent)."""
        return sum((cost for moment, cost in self.charges if moment >= start), ZERO)

    def set_cap(
        self, now: datetime, total: Decimal | None, duration: str | Keep | None
    ) -> tuple[Balance, bool]:
        """The cap's balance, and whether its spend was counted from the charges of its period
        (a new cap, or one moved onto a new grid)."""
        if self.cap is None:
            if total is None:
                raise UsageError("there is no project cap yet")
            cap = new_account(total, None if duration is KEEP else duration, now)
            backfilled = True
        else:
            cap, _ = self.cap.rolled(now)
            if total is not None:
                cap = replace(cap, total=total)
            backfilled = False
            if duration is not KEEP:
                moved = self._regrid(cap, duration, now)
                backfilled = moved.start != cap.start
                cap = moved
        if backfilled:
            cap = replace(cap, spent=self.spent_since(cap.start))
        self.cap = cap
        self.exists = True
        return cap.balance(now), backfilled

    def clear_cap(self) -> bool:
        self._project()
        had = self.cap is not None
        self.cap = None
        return had
