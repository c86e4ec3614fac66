"""One set of operations over a store or over the reference model, with comparable results.

``StoreDriver(store)`` and ``ModelDriver(model)`` have the same methods and return the same
values (the model's :class:`Balance`, :class:`Outcome` and :class:`Period`), so a test runs an
operation on both and compares with ``==``. :meth:`Driver.run` turns a budgetctl error into a
:class:`Failed` value (its ANY_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


class and the facts it carries), so errors compare too.

Only :class:`StoreDriver` speaks the store interface (budgetctl/store/interface.py): when the
interface changes, this is the one place to follow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from budgetctl.core import rules
from budgetctl.core.periods import parse_duration
from budgetctl.core.rules import Budget
from budgetctl.errors import (
    BudgetctlError,
    BudgetExceededError,
    RequestIdConflictError,
    UnknownUserError,
    UserExistsError,
)
from budgetctl.store.interface import ChargeRequest, Store
from tests.contract.model import (
    KEEP,
    Balance,
    Charge,
    Keep,
    LedgerModel,
    Outcome,
    Period,
)

NewBudget = tuple[str, Decimal, str | None]  # user, total, duration


ANY_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Failed(NamedTuple):
    """An operation refused: the error's class name and what it says (scope, amounts, names)."""

    error: str
    facts: tuple[Any, ...] = ()


class Snapshot(NamedTuple):
    """Everything a project shows as of a moment."""

    exists: bool
    users: dict[str, Balance]
    cap: Balance | None


def failed(exc: BudgetctlError) -> Failed:
    facts: tuple[Any, ...] = ()
    if isinstance(exc, BudgetExceededError):
        facts = (exc.scope, exc.current_cost_exact, exc.max_budget_exact)
    elif isinstance(exc, RequestIdConflictError):
        facts = (
            exc.request_id,
            exc.user,
            exc.cost,
            exc.model,
            exc.prompt_tokens,
            exc.completion_tokens,
            exc.cached_tokens,
        )
    elif isinstance(exc, (UnknownUserError, UserExistsError)):
        facts = (exc.user,)
    return Failed(type(exc).__name__, facts)


def balance(budget: Budget) -> Balance:
    return Balance(
        budget.total_budget,
        budget.current_cost,
        budget.duration.text if budget.duration else None,
        budget.period_start,
        budget.next_reset_at,
        budget.over_budget,
    )


def _balance(budget: Budget | None) -> Balance | None:
    return None if budget is None else balance(budget)


class Driver:
    def run(self, op: str, /, **kwargs: Any) -> Any:
        """``op`` with ``kwargs``; a budgetctl error comes back as a :class:`Failed` value."""
        try:
            return getattr(self, op)(**kwargs)
        except BudgetctlError as exc:
            return failed(exc)


class StoreDriver(Driver):
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, budgets: Sequence[NewBudget], now: datetime, replace: bool = False) -> Any:
        values = [
            rules.new_budget(user, total, now, duration=parse_duration(duration))
            for user, total, duration in budgets
        ]
        if len(values) == 1:
            return [self.store.create(values[0], replace=replace).user]
        return [budget.user for budget in self.store.create_many(values, replace=replace)]

    def charge(
        self,
        user: str,
        cost: Decimal,
        now: datetime,
        request_id: str | None = None,
        model: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> Outcome:
        request = ChargeRequest(
            user, cost, model, prompt_tokens, completion_tokens, cached_tokens, request_id
        )
        outcome = self.store.charge(request, now, enforce=enforce, dry_run=dry_run)
        return Outcome(balance(outcome.budget), _balance(outcome.cap), outcome.duplicate)

    def change(
        self,
        user: str,
        now: datetime,
        total: Decimal | None = None,
        duration: str | Keep | None = KEEP,
    ) -> Balance:
        changes = rules.Changes(
            total_budget=rules.KEEP if total is None else total,
            duration=rules.KEEP if duration is KEEP else parse_duration(duration),
        )
        return balance(self.store.change(user, now, changes))

    def reset(self, users: list[str] | None, now: datetime) -> dict[str, Period]:
        return {user: Period(*closed) for user, closed in self.store.reset(users, now)}

    def reset_due(
        self, now: datetime, users: list[str] | None = None
    ) -> tuple[int, dict[str, Period], Period | None]:
        done = self.store.reset_due(now, users=users)
        assert done.project == self.store.project
        periods = {user: Period(*closed) for user, closed in done.reset}
        assert len(periods) == len(done.reset), "a user's period closed twice in one reset-due"
        return done.checked, periods, None if done.cap is None else Period(*done.cap)

    def delete(self, users: list[str], now: datetime | None = None) -> list[str]:
        # Deleting decides nothing by the time (the event records it): any moment will do.
        return self.store.delete(users, now or ANY_TIME)

    def set_cap(
        self, now: datetime, total: Decimal | None, duration: str | Keep | None = KEEP
    ) -> Balance:
        moved = rules.KEEP if duration is KEEP else parse_duration(duration)
        return balance(self.store.set_cap(now, total, moved))

    def clear_cap(self, now: datetime | None = None) -> bool:
        return self.store.clear_cap(now or ANY_TIME)

    def get(self, user: str, now: datetime) -> tuple[Balance, Balance | None]:
        budget, cap = self.store.get_with_cap(user, now)
        assert balance(self.store.get(user, now)) == balance(budget)
        return balance(budget), _balance(cap)

    def snapshot(self, now: datetime) -> Snapshot:
        """The project as every reading method shows it (they must agree with each other)."""
        if not self.store.exists():
            assert self.store.users() == []
            assert self.store.cap(now) is None
            return Snapshot(False, {}, None)
        view = self.store.view(now)
        assert view.project == self.store.project
        users = {budget.user: balance(budget) for budget in view.users}
        assert len(users) == len(view.users)
        assert sorted(self.store.users()) == sorted(users)
        cap = _balance(view.cap)
        assert _balance(self.store.cap(now)) == cap
        return Snapshot(True, users, cap)


class ModelDriver(Driver):
    def __init__(self, model: LedgerModel) -> None:
        self.model = model
        self.backfilled = False  # whether the last set_cap counted the charges of its period

    def create(self, budgets: Sequence[NewBudget], now: datetime, replace: bool = False) -> Any:
        return self.model.create(list(budgets), now, replace)

    def charge(
        self,
        user: str,
        cost: Decimal,
        now: datetime,
        request_id: str | None = None,
        model: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> Outcome:
        request = Charge(user, cost, model, prompt_tokens, completion_tokens, cached_tokens)
        return self.model.charge(request, now, request_id, enforce, dry_run)

    def change(
        self,
        user: str,
        now: datetime,
        total: Decimal | None = None,
        duration: str | Keep | None = KEEP,
    ) -> Balance:
        return self.model.change(user, now, total, duration)

    def reset(self, users: list[str] | None, now: datetime) -> dict[str, Period]:
        return self.model.reset(users, now)

    def reset_due(
        self, now: datetime, users: list[str] | None = None
    ) -> tuple[int, dict[str, Period], Period | None]:
        return self.model.reset_due(now, users)

    def delete(self, users: list[str], now: datetime | None = None) -> list[str]:
        return self.model.delete(users)

    def set_cap(
        self, now: datetime, total: Decimal | None, duration: str | Keep | None = KEEP
    ) -> Balance:
        self.backfilled = False
        cap, self.backfilled = self.model.set_cap(now, total, duration)
        return cap

    def clear_cap(self, now: datetime | None = None) -> bool:
        return self.model.clear_cap()

    def get(self, user: str, now: datetime) -> tuple[Balance, Balance | None]:
        cap = None if self.model.cap is None else self.model.cap.balance(now)
        return self.model.get(user, now), cap

    def snapshot(self, now: datetime) -> Snapshot:
        users, cap = self.model.snapshot(now)
        return Snapshot(self.model.exists, users, cap)
