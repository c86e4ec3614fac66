"""The store interface: ledger operations, each atomic on its own.

Not "load the whole state, then save it": each method is one transaction, so a database store can
implement a charge as one transaction touching one row (DESIGN.md section 9). The rules they apply
live in :mod:`budgetctl.core.rules`; a store only makes them atomic and durable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from budgetctl.core.periods import Duration
from budgetctl.core.rules import Budget, ClosedPeriod
from budgetctl.costing.interface import Price


class ChargeRequest(NamedTuple):
    """One cost to record for a user."""

    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    request_id: str | None = None
    estimated: bool = False


class ChargeOutcome(NamedTuple):
    """The budget after a charge; ``duplicate`` when the request id was charged before."""

    budget: Budget
    cap: Budget | None
    duplicate: bool
    closed: tuple[ClosedPeriod, ...] = ()


class ResetDue(NamedTuple):
    """What one ``reset-due`` did (or would do, in a dry run)."""

    project: str
    checked: int
    reset: tuple[tuple[str, ClosedPeriod], ...]
    cap: ClosedPeriod | None = None


class ProjectView(NamedTuple):
    """Every budget of a project as of ``now`` (periods that ended shown as rolled over)."""

    project: str
    users: tuple[Budget, ...]
    cap: Budget | None


class Store(Protocol):
    """A project's ledger. Every method is atomic; ``now`` is always given by the caller."""

    project: str

    def exists(self) -> bool: ...

    def create(self, budget: Budget, *, replace: bool = False, dry_run: bool = False) -> Budget: ...

    def create_many(
        self, budgets: Sequence[Budget], *, replace: bool = False, dry_run: bool = False
    ) -> list[Budget]: ...

    def change(
        self, user: str, now: datetime, changes: Mapping[str, Any], *, dry_run: bool = False
    ) -> Budget: ...

    def charge(
        self,
        request: ChargeRequest,
        now: datetime,
        *,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeOutcome: ...

    def reset(
        self, users: Sequence[str] | None, now: datetime, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]: ...

    def reset_due(
        self, now: datetime, *, users: Sequence[str] | None = None, dry_run: bool = False
    ) -> ResetDue: ...

    def get(self, user: str, now: datetime) -> Budget: ...

    def get_with_cap(self, user: str, now: datetime) -> tuple[Budget, Budget | None]: ...

    def cap(self, now: datetime) -> Budget | None: ...

    def view(self, now: datetime) -> ProjectView: ...

    def users(self) -> list[str]: ...

    def delete(self, users: Sequence[str], *, dry_run: bool = False) -> list[str]: ...

    def set_cap(
        self,
        now: datetime,
        total_budget: Decimal | None,
        duration: Duration | str | None = "keep",
        timezone: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Budget: ...

    def clear_cap(self, *, dry_run: bool = False) -> bool: ...

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None: ...

    def prices(self) -> dict[str, Price]: ...

    def history(
        self, user: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...
