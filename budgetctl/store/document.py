"""Stores that keep a project as one JSON document: the document, and the base class they share.

The JSON store (a file per project) and the hosted store (a LiteLLM-protocol server) both keep a
project as the same document::

    {"format": "budgetctl-state", "version": 3, "project": P, "history": {"size": N},
     "cap": record | null, "users": {user: record}, "holds": {hold_id: hold},
     "hooks": {hook_id: hook}, "pending": {"EVENT_ID HOOK_ID": delivery}}

(records as :mod:`budgetctl.store.codec` writes them; ``holds``, ``hooks`` and ``pending``, the
outbox of hook deliveries, only when not empty).
:class:`DocumentStore` runs every ledger operation of :mod:`budgetctl.core.operations` over such
a document, and asks its subclass only for the small interface below, documented in
docs/library.md ("Writing a store"):

- ``load(must_exist)``: the committed document (None when the project does not exist yet);
- ``commit(state)``: make ``state.doc`` and the events in ``state.events`` durable, atomically;
- ``locked(create, dry_run)``: a context around load-change-commit (the JSON store's file lock;
  nothing for the hosted store); what it yields is kept as ``state.held``;
- ``remembered(state, key)`` / ``remember(state, key, charge)``: idempotency keys (an index over
  the history, or ids kept in the document);
- ``spent_since(state, start)``, ``recent_periods(doc, record)`` and ``history(...)``.

The store decides nothing: the operation does, on the :class:`DocumentState` it is handed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextlib import contextmanager as _contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from budgetctl.core import events, operations, rules
from budgetctl.core import hooks as core_hooks
from budgetctl.core.money import to_text
from budgetctl.core.operations import (
    ChargeOutcome,
    CommitOutcome,
    ProjectView,
    ReserveOutcome,
    ResetDue,
    Standing,
)
from budgetctl.core.periods import Duration, format_utc, parse_utc
from budgetctl.core.rules import (
    CAP,
    KEEP,
    Budget,
    ChargeRequest,
    ClosedPeriod,
    Hold,
    Keep,
    RememberedCharge,
)
from budgetctl.errors import (
    CorruptStateError,
    FutureVersionError,
    UnknownUserError,
)
from budgetctl.store import codec, history
from budgetctl.store.spend import Spend, from_events

FORMAT = "budgetctl-state"
VERSION = 3  # 2: request ids moved to their index; 3: holds (1 and 2 are read and migrated)


def new_document(project: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "project": project,
        "history": {"size": 0},
        "cap": None,
        "users": {},
    }


def check_document(doc: Any, where: object) -> dict[str, Any]:
    """``doc`` if it is a budgetctl state this version reads; else the error saying why."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorruptStateError(where, "not a budgetctl state file (no 'format' field)")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptStateError(where, "the 'version' field is missing or not a number")
    if version > VERSION:
        raise FutureVersionError(where, version, VERSION)
    if version < 1:
        raise CorruptStateError(where, f"unknown format version {version}")
    size = doc.get("history", {}).get("size") if isinstance(doc.get("history"), dict) else None
    if (
        not isinstance(doc.get("users"), dict)
        or not isinstance(size, int)
        or size < 0
        or not isinstance(doc.get("request_ids", {}), dict)
        or not isinstance(doc.get("holds", {}), dict)
        or not isinstance(doc.get("hooks", {}), dict)
        or not isinstance(doc.get("pending", {}), dict)
        or not (doc.get("cap") is None or isinstance(doc.get("cap"), dict))
    ):
        raise CorruptStateError(where, "the file's structure is not a budgetctl state")
    return doc


def encode_hold(hold: Hold) -> dict[str, Any]:
    return {
        "user": hold.user,
        "amount": to_text(hold.amount),
        "created_at": format_utc(hold.created_at),
        "expires_at": format_utc(hold.expires_at),
    }


def decode_hold(hold_id: str, raw: Any, where: object) -> Hold:
    try:
        return Hold(
            hold_id,
            str(raw["user"]),
            Decimal(raw["amount"]),
            parse_utc(raw["created_at"]),
            parse_utc(raw["expires_at"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        raise CorruptStateError(where, f"hold {hold_id!r}: record is not a hold") from None


def decode_hooks(doc: Mapping[str, Any], where: object) -> list[core_hooks.Hook]:
    try:
        return [core_hooks.Hook.from_json(raw) for raw in (doc.get("hooks") or {}).values()]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStateError(where, f"a hook's record is malformed ({exc})") from None


def decode_pending(doc: Mapping[str, Any], where: object) -> list[core_hooks.Delivery]:
    try:
        return [core_hooks.Delivery.from_json(raw) for raw in (doc.get("pending") or {}).values()]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStateError(where, f"an undelivered hook event is malformed ({exc})") from None


class DocumentState:
    """:class:`budgetctl.core.operations.State` over one document, inside one transaction."""

    def __init__(
        self, store: DocumentStore, doc: dict[str, Any], now: datetime, dry_run: bool = False
    ) -> None:
        self.store = store
        self.project = store.project
        self.doc = doc
        self.now = now
        self.dry_run = dry_run
        self.events: list[events.Event] = []
        self.dirty = False
        self.held: Any = None  # what the store's locked() yielded
        self.index: Any = None  # a store's per-transaction handle (the JSON store's id index)
        self._queued = 0
        self._hooks: list[core_hooks.Hook] | None = None

    @property
    def raw_users(self) -> dict[str, Any]:
        users: dict[str, Any] = self.doc["users"]
        return users

    def budget(self, user: str) -> Budget | None:
        raw = self.raw_users.get(user)
        return None if raw is None else self.store.decode(user, raw)

    def users(self) -> Collection[str]:
        return self.raw_users.keys()

    def put(self, budget: Budget) -> None:
        users = self.raw_users
        users[budget.user] = history.relink(codec.encode(budget), users.get(budget.user))
        self.dirty = True

    def remove(self, user: str) -> None:
        del self.raw_users[user]
        self.dirty = True

    def cap(self) -> Budget | None:
        raw = self.doc.get("cap")
        return None if raw is None else self.store.decode(CAP, raw)

    def put_cap(self, cap: Budget | None) -> None:
        self.doc["cap"] = history.relink(codec.encode(cap), self.doc.get("cap")) if cap else None
        self.dirty = True

    def holds(self) -> Sequence[Hold]:
        raw = self.doc.get("holds") or {}
        return [decode_hold(hold_id, entry, self.store.where) for hold_id, entry in raw.items()]

    def put_hold(self, hold: Hold) -> None:
        self.doc.setdefault("holds", {})[hold.hold_id] = encode_hold(hold)
        self.dirty = True

    def drop_hold(self, hold_id: str) -> None:
        holds = self.doc.get("holds") or {}
        holds.pop(hold_id, None)
        if not holds:
            self.doc.pop("holds", None)
        self.dirty = True

    def remembered(self, key: str) -> RememberedCharge | None:
        return self.store.remembered(self, key)

    def remember(self, key: str, charge: RememberedCharge) -> None:
        self.store.remember(self, key, charge)

    def spent_since(self, start: datetime) -> Decimal:
        return self.store.spent_since(self, start)

    def due(self, users: Sequence[str] | None) -> list[str]:
        # Stored boundaries are fixed-width UTC text to the second: comparing text skips decoding
        # idle users (now's whole second, or a boundary at 00:00:00 would wait for 00:00:01).
        now_text = format_utc(self.now.replace(microsecond=0))
        raw_users = self.raw_users
        found = []
        for user in raw_users if users is None else users:
            raw = raw_users[user]
            if not isinstance(raw, dict):
                raise CorruptStateError(self.store.where, f"user {user!r}: record is not an object")
            due_at = raw.get("next_reset_at")
            if due_at is not None and due_at <= now_text:
                found.append(user)
        return found

    def hooks(self) -> list[core_hooks.Hook]:
        if self._hooks is None:  # read once a transaction: a reset-due asks once per due budget
            self._hooks = decode_hooks(self.doc, self.store.where)
        return self._hooks

    def queue(self, delivery: core_hooks.Delivery) -> None:
        self.doc.setdefault("pending", {})[delivery.key] = delivery.to_json()
        self._queued += 1
        self.dirty = True

    def queued(self) -> int:
        return self._queued

    def outbox_size(self) -> int:
        return len(self.doc.get("pending") or {})

    def record(self, event: events.Event) -> None:
        if isinstance(event, events.Create):  # a new budget: its closed periods start afresh
            raw = self.raw_users.get(event.user)
            if isinstance(raw, dict):
                raw.pop(history.LINK, None)
        self.events.append(event)
        self.dirty = True


class DocumentStore:
    """Every ledger operation over a project kept as one document (see the module docstring).

    Subclasses set ``project`` and ``where`` (how errors name the document) and implement
    :meth:`load` and :meth:`commit`; the other hooks have defaults.
    """

    project: str
    where: object

    # --- the interface a subclass implements ----------------------------------------------------

    def load(self, must_exist: bool) -> dict[str, Any] | None:
        raise NotImplementedError

    def commit(self, state: DocumentState) -> None:
        raise NotImplementedError

    def load_for_change(self, must_exist: bool) -> dict[str, Any] | None:
        """:meth:`load`, inside a transaction (a store may check more before a change)."""
        return self.load(must_exist)

    def locked(self, *, create: bool, dry_run: bool) -> AbstractContextManager[Any]:
        return nullcontext()

    def empty_document(self) -> dict[str, Any]:
        """The document of a project that does not exist yet."""
        return new_document(self.project)

    def close(self, state: DocumentState) -> None:
        """After a transaction, committed or not (release per-transaction handles)."""

    def remembered(self, state: DocumentState, key: str) -> RememberedCharge | None:
        raise NotImplementedError

    def remember(self, state: DocumentState, key: str, charge: RememberedCharge) -> None:
        """Nothing by default: a store that indexes its history's charges reads keys there."""

    def spent_since(self, state: DocumentState, start: datetime) -> Decimal:
        raise NotImplementedError

    def recent_periods(self, doc: Mapping[str, Any], raw: Any) -> tuple[ClosedPeriod, ...]:
        return ()

    def history(
        self,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[events.Event]:
        raise NotImplementedError

    def spend(
        self, user: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[Spend]:
        """The charges and commits of :meth:`history`, oldest first (a store that can read them
        more cheaply overrides this)."""
        return from_events(reversed(self.history(user, None, since, until)))

    # --- shared ----------------------------------------------------------------------------------

    def decode(self, user: str, raw: Any) -> Budget:
        try:
            return codec.decode(user, raw)
        except codec.RecordError as exc:
            raise CorruptStateError(self.where, str(exc)) from None

    @_contextmanager
    def transaction(
        self, now: datetime, *, create: bool = False, dry_run: bool = False
    ) -> Iterator[DocumentState]:
        """Load, yield the state, commit it if the block changed it (never in a dry run)."""
        with self.locked(create=create, dry_run=dry_run) as held:
            doc = self.load_for_change(must_exist=not create)
            state = DocumentState(
                self, doc if doc is not None else self.empty_document(), now, dry_run
            )
            state.held = held
            try:
                yield state
                if state.dirty and not dry_run:
                    self.commit(state)
            finally:
                self.close(state)

    def exists(self) -> bool:
        return self.load(must_exist=False) is not None

    # --- operations ------------------------------------------------------------------------------

    def create(self, budget: Budget, *, replace: bool = False, dry_run: bool = False) -> Budget:
        return self.create_many([budget], replace=replace, dry_run=dry_run)[0]

    def create_many(
        self, budgets: Sequence[Budget], *, replace: bool = False, dry_run: bool = False
    ) -> list[Budget]:
        if not budgets:
            return []
        now = max(b.created_at for b in budgets)
        with self.transaction(now, create=True, dry_run=dry_run) as state:
            return operations.create(state, budgets, replace=replace)

    def change(
        self, user: str, now: datetime, changes: rules.Changes, *, dry_run: bool = False
    ) -> Budget:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.change(state, user, changes)

    def charge(
        self, request: ChargeRequest, now: datetime, *, enforce: bool = False, dry_run: bool = False
    ) -> ChargeOutcome:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.charge(state, request, enforce=enforce)

    def reserve(
        self,
        hold_id: str,
        user: str,
        amount: Decimal,
        ttl: timedelta,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> ReserveOutcome:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.reserve(state, hold_id, user, amount, ttl)

    def commit_hold(
        self, hold_id: str, request: ChargeRequest, now: datetime, *, dry_run: bool = False
    ) -> CommitOutcome:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.commit(state, hold_id, request)

    def release(
        self, hold_ids: Sequence[str], now: datetime, *, dry_run: bool = False
    ) -> list[Hold]:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.release(state, hold_ids)

    def reset(
        self, users: Sequence[str] | None, now: datetime, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.reset(state, users)

    def reset_due(
        self, now: datetime, *, users: Sequence[str] | None = None, dry_run: bool = False
    ) -> ResetDue:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.reset_due(state, users)

    def delete(self, users: Sequence[str], now: datetime, *, dry_run: bool = False) -> list[str]:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.delete(state, users)

    def set_cap(
        self,
        now: datetime,
        total_budget: Decimal | None,
        duration: Duration | Keep | None = KEEP,
        timezone: str | None = None,
        *,
        alert_at: Sequence[Decimal] | Decimal | Keep | None = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        with self.transaction(now, create=True, dry_run=dry_run) as state:
            return operations.set_cap(state, total_budget, duration, timezone, alert_at)

    def clear_cap(self, now: datetime, *, dry_run: bool = False) -> bool:
        with self.transaction(now, dry_run=dry_run) as state:
            return operations.clear_cap(state)

    # --- hooks and their outbox ------------------------------------------------------------------

    def hooks(self) -> list[core_hooks.Hook]:
        doc = self.load(must_exist=True)
        assert doc is not None
        return decode_hooks(doc, self.where)

    def add_hook(self, hook: core_hooks.Hook, now: datetime) -> core_hooks.Hook:
        hook = core_hooks.check_hook(hook)
        with self.transaction(now) as state:
            state.doc.setdefault("hooks", {})[hook.hook_id] = hook.to_json()
            state.dirty = True
        return hook

    def remove_hook(self, hook_id: str, now: datetime) -> bool:
        """Remove a hook and its undelivered events; False when there is no such hook."""
        with self.transaction(now) as state:
            found = (state.doc.get("hooks") or {}).pop(hook_id, None)
            if found is None:
                return False
            if not state.doc["hooks"]:
                del state.doc["hooks"]
            pending = state.doc.get("pending") or {}
            for key in [k for k, v in pending.items() if v.get("hook_id") == hook_id]:
                del pending[key]
            if not pending:
                state.doc.pop("pending", None)
            state.dirty = True
        return True

    def pending(self) -> list[core_hooks.Delivery]:
        """The outbox: deliveries not yet made, oldest first."""
        doc = self.load(must_exist=False)
        if doc is None:
            return []
        found = decode_pending(doc, self.where)
        return sorted(found, key=lambda d: (d.queued_at, d.event_id, d.hook_id))

    def delivered(self, keys: Sequence[str], now: datetime) -> None:
        """Take deliveries (by :attr:`~budgetctl.core.hooks.Delivery.key`) out of the outbox."""
        if not keys:
            return
        with self.transaction(now) as state:
            pending = state.doc.get("pending") or {}
            for key in keys:
                if pending.pop(key, None) is not None:
                    state.dirty = True
            if not pending:
                state.doc.pop("pending", None)

    # --- reading (one load: a consistent snapshot) -----------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        doc = self.load(must_exist=True)
        assert doc is not None
        return doc

    def _holds(self, doc: Mapping[str, Any]) -> list[Hold]:
        raw = doc.get("holds") or {}
        return [decode_hold(hold_id, entry, self.where) for hold_id, entry in raw.items()]

    def get(self, user: str, now: datetime) -> Budget:
        return self.standing(user, now).budget

    def get_with_cap(self, user: str, now: datetime) -> tuple[Budget, Budget | None]:
        found = self.standing(user, now)
        return found.budget, found.cap

    def standing(self, user: str, now: datetime) -> Standing:
        """One user's budget (with its recent closed periods), the cap, and what open holds
        reserve of each, from one read, as of ``now``."""
        doc = self._snapshot()
        raw = doc["users"].get(user)
        if raw is None:
            raise UnknownUserError(user, self.project, doc["users"])
        budget = self.decode(user, raw)._replace(recent_periods=self.recent_periods(doc, raw))
        raw_cap = doc.get("cap")
        cap = None
        if raw_cap is not None:
            cap = self.decode(CAP, raw_cap)._replace(
                recent_periods=self.recent_periods(doc, raw_cap)
            )
        return operations.standing(budget, cap, self._holds(doc), now)

    def cap(self, now: datetime) -> Budget | None:
        """The project cap as of ``now`` (None when there is none or no project yet)."""
        doc = self.load(must_exist=False)
        if doc is None or doc.get("cap") is None:
            return None
        cap = self.decode(CAP, doc["cap"])
        cap = cap._replace(recent_periods=self.recent_periods(doc, doc["cap"]))
        return rules.roll_over(cap, now)[0]

    def view(self, now: datetime) -> ProjectView:
        doc = self._snapshot()
        users = tuple(
            rules.roll_over(self.decode(name, raw), now)[0] for name, raw in doc["users"].items()
        )
        raw_cap = doc.get("cap")
        cap = None if raw_cap is None else rules.roll_over(self.decode(CAP, raw_cap), now)[0]
        holds = tuple(hold for hold in self._holds(doc) if hold.is_open(now))
        return ProjectView(self.project, users, cap, holds)

    def users(self) -> list[str]:
        doc = self.load(must_exist=False)
        return [] if doc is None else list(doc["users"])

    def holds(self, now: datetime, user: str | None = None) -> list[Hold]:
        """The holds open at ``now`` (``user``'s only, when given), oldest first."""
        doc = self.load(must_exist=False)
        if doc is None:
            return []
        if user is not None and user not in doc["users"]:
            raise UnknownUserError(user, self.project, doc["users"])
        found = [
            hold
            for hold in self._holds(doc)
            if hold.is_open(now) and (user is None or hold.user == user)
        ]
        return sorted(found, key=lambda hold: (hold.created_at, hold.hold_id))
