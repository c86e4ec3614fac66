"""The store interface: ledger operations, each atomic on its own.

Not "load the whole state, then save it": each method is one transaction, so a database store can
implement a charge as one transaction touching one row (docs/library.md, "Writing a store"). What
each operation does is decided by :mod:`budgetctl.core.operations` (every store calls it); a
store only makes it atomic and durable. The store contract suite (tests/contract) runs every store
through the same operations and invariants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from budgetctl.core.events import Event
from budgetctl.core.hooks import Delivery, Hook
from budgetctl.core.operations import (
    ChargeOutcome,
    CommitOutcome,
    ProjectView,
    ReserveOutcome,
    ResetDue,
    Standing,
)
from budgetctl.core.periods import Duration
from budgetctl.core.rules import KEEP, Budget, Changes, ChargeRequest, ClosedPeriod, Hold, Keep
from budgetctl.costing.interface import Price
from budgetctl.store.snapshot import Snapshot
from budgetctl.store.spend import Spend

__all__ = [
    "ChargeOutcome",
    "ChargeRequest",
    "CommitOutcome",
    "HookStore",
    "ProjectView",
    "ReserveOutcome",
    "ResetDue",
    "Snapshot",
    "Spend",
    "Standing",
    "Store",
]


class Store(Protocol):
    """A project's ledger. Every method is atomic; ``now`` is always given by the caller."""

    project: str

    def exists(self) -> bool: ...

    def create(self, budget: Budget, *, replace: bool = False, dry_run: bool = False) -> Budget: ...

    def create_many(
        self, budgets: Sequence[Budget], *, replace: bool = False, dry_run: bool = False
    ) -> list[Budget]: ...

    def change(
        self, user: str, now: datetime, changes: Changes, *, dry_run: bool = False
    ) -> Budget: ...

    def charge(
        self, request: ChargeRequest, now: datetime, *, enforce: bool = False, dry_run: bool = False
    ) -> ChargeOutcome: ...

    def reserve(
        self,
        hold_id: str,
        user: str,
        amount: Decimal,
        ttl: timedelta,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> ReserveOutcome: ...

    def commit_hold(
        self, hold_id: str, request: ChargeRequest, now: datetime, *, dry_run: bool = False
    ) -> CommitOutcome: ...

    def release(
        self, hold_ids: Sequence[str], now: datetime, *, dry_run: bool = False
    ) -> list[Hold]: ...

    def holds(self, now: datetime, user: str | None = None) -> list[Hold]: ...

    def reset(
        self, users: Sequence[str] | None, now: datetime, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]: ...

    def reset_due(
        self, now: datetime, *, users: Sequence[str] | None = None, dry_run: bool = False
    ) -> ResetDue: ...

    def get(self, user: str, now: datetime) -> Budget: ...

    def get_with_cap(self, user: str, now: datetime) -> tuple[Budget, Budget | None]: ...

    def standing(self, user: str, now: datetime) -> Standing: ...

    def cap(self, now: datetime) -> Budget | None: ...

    def view(self, now: datetime) -> ProjectView: ...

    def users(self) -> list[str]: ...

    def delete(
        self, users: Sequence[str], now: datetime, *, dry_run: bool = False
    ) -> list[str]: ...

    def set_cap(
        self,
        now: datetime,
        total_budget: Decimal | None,
        duration: Duration | Keep | None = KEEP,
        timezone: str | None = None,
        *,
        alert_at: Sequence[Decimal] | Decimal | Keep | None = KEEP,
        dry_run: bool = False,
    ) -> Budget: ...

    def clear_cap(self, now: datetime, *, dry_run: bool = False) -> bool: ...

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None: ...

    def prices(self) -> dict[str, Price]: ...

    def history(
        self,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Event]:
        """Events newest first: only ``user``'s, at most ``limit``, and with a bound given only
        those recorded at ``since`` or later and before ``until`` (an event with no time, from
        budgetctl before 0.2, is then left out)."""
        ...

    def spend(
        self,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Spend]:
        """The charges and commits of :meth:`history` (``user``'s, in [since, until)), oldest
        first, as :class:`~budgetctl.store.spend.Spend` rows: what ``export`` and ``report``
        read. The same rows as ``spend.from_events(reversed(history(user, None, since, until)))``
        (a store may answer just that); a store that keeps events as their JSON text reads them
        without building typed events (``spend.parse``)."""
        ...

    def export(self) -> Snapshot:
        """The whole project, from one consistent read (``budgetctl dump``)."""
        ...

    def restore(
        self, snapshot: Snapshot, now: datetime, *, replace: bool = False, dry_run: bool = False
    ) -> bool:
        """Write ``snapshot`` as this project, in one transaction; True when it replaced a
        project that existed (ProjectExistsError unless ``replace``)."""
        ...


class HookStore(Protocol):
    """A store that keeps a project's hooks and their outbox (the JSON store, PostgreSQL).

    Deliveries are queued by the ledger operations (``State.queue``), in the transaction that
    records their event; these methods manage hooks and take made deliveries out.
    """

    def hooks(self) -> list[Hook]: ...

    def add_hook(self, hook: Hook, now: datetime) -> Hook: ...

    def remove_hook(self, hook_id: str, now: datetime) -> bool: ...

    def pending(self) -> list[Delivery]: ...

    def delivered(self, keys: Sequence[str], now: datetime) -> None: ...
