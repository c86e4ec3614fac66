"""History events: typed values, one class per kind, and their public JSON.

Every change to a ledger is recorded as one or more of these, in the same atomic step as the
balances they explain (docs/library.md, "Writing a store"). The JSON form (:meth:`Event.to_json`,
:func:`from_json`) is what ``history --json`` prints and what docs/history.md documents: flat
objects with ``type`` and ``time`` (ISO 8601 UTC to the second, or to the microsecond when a
microsecond is set), money as decimal strings. Each store encodes events its own way (the JSON store
writes this form plus its own links, a database writes rows); nothing about how a store keeps them
reaches the output.

Kinds: ``create``, ``set``, ``charge``, ``commit`` (a charge that settles a hold), ``period`` (a
closed period: rolled over at its boundary, or ``reason: "reset"`` by hand), ``delete``, ``cap``,
``cap-period``, ``cap-clear``, ``hold``, ``release``, ``expire``, ``alert`` (an alert threshold
crossed), ``over`` (a budget's spend taken past it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.core.money import to_text
from budgetctl.core.periods import UTC, format_utc, parse_utc
from budgetctl.core.record import Record

_new_tuple = tuple.__new__


class EventError(ValueError):
    """An event's JSON that is not one of ours (the store reports where it was read)."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_utc(value)


def _moment(raw: Mapping[str, Any], key: str) -> datetime:
    value = raw.get(key)
    if not isinstance(value, str):
        raise EventError(f"{raw.get('type')!r} event: {key!r} is missing or not text")
    try:
        return parse_utc(value)
    except ValueError:
        raise EventError(f"{raw.get('type')!r} event: {key!r} is not a time: {value!r}") from None


def _opt_moment(raw: Mapping[str, Any], key: str) -> datetime | None:
    return None if raw.get(key) is None else _moment(raw, key)


def _money(raw: Mapping[str, Any], key: str, default: str | None = None) -> Decimal:
    value = raw.get(key, default)
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise EventError(f"{raw.get('type')!r} event: {key!r} is missing or not an amount")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise EventError(f"{raw.get('type')!r} event: {key!r} is not an amount") from None
    if not amount.is_finite():
        raise EventError(f"{raw.get('type')!r} event: {key!r} is not an amount")
    return amount


def _opt_money(raw: Mapping[str, Any], key: str) -> Decimal | None:
    return None if raw.get(key) is None else _money(raw, key)


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise EventError(f"{raw.get('type')!r} event: {key!r} is missing or not text")
    return value


def _opt_text(raw: Mapping[str, Any], key: str) -> str | None:
    return None if raw.get(key) is None else _text(raw, key)


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EventError(f"{raw.get('type')!r} event: {key!r} is not a token count")
    return value


class Create(Record):
    """A budget was created (or replaced), starting from ``current_cost``."""

    time: datetime | None
    user: str
    total_budget: Decimal
    duration: str | None
    current_cost: Decimal

    @property
    def type(self) -> str:
        return "create"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "total_budget": to_text(self.total_budget),
            "duration": self.duration,
            "current_cost": to_text(self.current_cost),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Create:
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "user"),
            _money(raw, "total_budget"),
            _opt_text(raw, "duration"),
            _money(raw, "current_cost", "0"),
        )


class Set(Record):
    """A budget's settings changed (its spend kept)."""

    time: datetime | None
    user: str
    total_budget: Decimal
    duration: str | None
    timezone: str

    @property
    def type(self) -> str:
        return "set"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "total_budget": to_text(self.total_budget),
            "duration": self.duration,
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Set:
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "user"),
            _money(raw, "total_budget"),
            _opt_text(raw, "duration"),
            raw.get("timezone") or "UTC",
        )


class Charge(Record):
    """A cost recorded against a user's budget (and the project cap, if there is one)."""

    time: datetime | None
    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    request_id: str | None = None
    estimated: bool = False

    @property
    def type(self) -> str:
        return "charge"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "model": self.model,
            "cost": to_text(self.cost),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
        }
        if self.request_id is not None:
            data["request_id"] = self.request_id
        if self.estimated:
            data["estimated"] = True
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Charge:
        # Most of a history is charges, and a report reads 100,000 of them: the usual shape
        # (as to_json writes it) is checked and built inline, in about half the time of the
        # general path below, which reads every other shape or says what is wrong with it.
        get = raw.get
        try:
            time, user, cost, model = raw["time"], raw["user"], raw["cost"], raw["model"]
            prompt, completion = raw["prompt_tokens"], raw["completion_tokens"]
            cached, request_id = raw["cached_tokens"], get("request_id")
        except KeyError:
            time = None  # not as to_json writes it: the general path
        if (
            time.__class__ is str
            and time[-1:] == "Z"
            and user.__class__ is str
            and cost.__class__ is str
            and (model is None or model.__class__ is str)
            and prompt.__class__ is int
            and completion.__class__ is int
            and cached.__class__ is int
            and prompt >= 0
            and completion >= 0
            and cached >= 0
            and (request_id is None or request_id.__class__ is str)
        ):
            try:  # "+00:00" rather than .replace(tzinfo=UTC), which costs five times the parse
                moment = datetime.fromisoformat(time[:-1] + "+00:00")
                amount = Decimal(cost)
            except (ValueError, ArithmeticError):
                pass  # the general path says what is wrong
            else:
                if amount.is_finite() and moment.tzinfo is UTC:
                    return _new_tuple(  # what cls(...) does, without its Python-level __new__
                        cls,
                        (
                            moment,
                            user,
                            amount,
                            model,
                            prompt,
                            completion,
                            cached,
                            request_id,
                            get("estimated") is True,
                        ),
                    )
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "user"),
            _money(raw, "cost"),
            _opt_text(raw, "model"),
            _count(raw, "prompt_tokens"),
            _count(raw, "completion_tokens"),
            _count(raw, "cached_tokens"),
            _opt_text(raw, "request_id"),
            raw.get("estimated") is True,
        )


class Commit(Record):
    """A charge that settles a hold: the actual cost replaces what was held.

    ``held`` is the amount the hold reserved, or None when the hold was no longer open (expired or
    released: the cost is recorded all the same, the money was spent).
    """

    time: datetime | None
    user: str
    cost: Decimal
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    request_id: str | None
    estimated: bool
    hold_id: str
    held: Decimal | None

    @property
    def type(self) -> str:
        return "commit"

    def to_json(self) -> dict[str, Any]:
        data = Charge(*self[:9]).to_json()
        data["type"] = self.type
        data["hold_id"] = self.hold_id
        data["held"] = None if self.held is None else to_text(self.held)
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Commit:
        c = Charge.from_json(raw)
        return cls(
            c.time,
            c.user,
            c.cost,
            c.model,
            c.prompt_tokens,
            c.completion_tokens,
            c.cached_tokens,
            c.request_id,
            c.estimated,
            _text(raw, "hold_id"),
            _opt_money(raw, "held"),
        )


class PeriodClosed(Record):
    """A period that ended (``reason`` "rollover") or was reset by hand ("reset"); ``user`` is
    None for the project cap's (JSON type ``cap-period``)."""

    time: datetime | None
    user: str | None
    start: datetime
    end: datetime
    spent: Decimal
    budget: Decimal
    reason: str = "rollover"

    @property
    def type(self) -> str:
        return "period"

    def to_json(self) -> dict[str, Any]:
        time, user, start, end, spent, budget, reason = self
        if user is None:
            return {
                "type": "cap-period",
                "time": _time(time),
                "start": format_utc(start),
                "end": format_utc(end),
                "spent": to_text(spent),
                "budget": to_text(budget),
                "reason": reason,
            }
        return {  # (one dict built whole: a reset-due writes one per due budget)
            "type": "period",
            "time": _time(time),
            "user": user,
            "start": format_utc(start),
            "end": format_utc(end),
            "spent": to_text(spent),
            "budget": to_text(budget),
            "reason": reason,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PeriodClosed:
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "user") if raw.get("type") == "period" else None,
            _moment(raw, "start"),
            _moment(raw, "end"),
            _money(raw, "spent"),
            _money(raw, "budget"),
            "reset" if raw.get("reason") == "reset" else "rollover",
        )


class Delete(Record):
    """A budget was removed (its history stays)."""

    time: datetime | None
    user: str

    @property
    def type(self) -> str:
        return "delete"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "time": _time(self.time), "user": self.user}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Delete:
        return cls(_opt_moment(raw, "time"), _text(raw, "user"))


class CapSet(Record):
    """The project cap was set or changed; ``current_cost`` is what its period counts from then."""

    time: datetime | None
    total_budget: Decimal
    duration: str | None
    timezone: str
    current_cost: Decimal

    @property
    def type(self) -> str:
        return "cap"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "current_cost": to_text(self.current_cost),
            "total_budget": to_text(self.total_budget),
            "duration": self.duration,
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CapSet:
        return cls(
            _opt_moment(raw, "time"),
            _money(raw, "total_budget"),
            _opt_text(raw, "duration"),
            raw.get("timezone") or "UTC",
            _money(raw, "current_cost", "0"),
        )


class CapClear(Record):
    """The project cap was removed."""

    time: datetime | None

    @property
    def type(self) -> str:
        return "cap-clear"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "time": _time(self.time)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CapClear:
        return cls(_opt_moment(raw, "time"))


class HoldPlaced(Record):
    """A hold reserved ``amount`` of the user's budget (and the cap's) until ``expires_at``."""

    time: datetime | None
    hold_id: str
    user: str
    amount: Decimal
    expires_at: datetime

    @property
    def type(self) -> str:
        return "hold"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "hold_id": self.hold_id,
            "amount": to_text(self.amount),
            "expires_at": format_utc(self.expires_at),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HoldPlaced:
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "hold_id"),
            _text(raw, "user"),
            _money(raw, "amount"),
            _moment(raw, "expires_at"),
        )


class HoldReleased(Record):
    """A hold was freed: the call was not made (``release``) or its time ran out (``expire``)."""

    time: datetime | None
    hold_id: str
    user: str
    amount: Decimal
    expired: bool = False

    @property
    def type(self) -> str:
        return "expire" if self.expired else "release"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "hold_id": self.hold_id,
            "amount": to_text(self.amount),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HoldReleased:
        return cls(
            _opt_moment(raw, "time"),
            _text(raw, "hold_id"),
            _text(raw, "user"),
            _money(raw, "amount"),
            raw.get("type") == "expire",
        )


class Alert(Record):
    """A charge took a budget's spend across one of its alert thresholds (``threshold`` percent):
    recorded once per threshold and period, with the charge. ``user`` is None for the project
    cap's; ``spent`` and ``budget`` are the budget's right after the charge."""

    time: datetime | None
    user: str | None
    threshold: Decimal
    spent: Decimal
    budget: Decimal
    period_start: datetime

    @property
    def type(self) -> str:
        return "alert"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "threshold": to_text(self.threshold),
            "spent": to_text(self.spent),
            "budget": to_text(self.budget),
            "period_start": format_utc(self.period_start),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Alert:
        return cls(
            _opt_moment(raw, "time"),
            _opt_text(raw, "user"),
            _money(raw, "threshold"),
            _money(raw, "spent"),
            _money(raw, "budget"),
            _moment(raw, "period_start"),
        )


class Over(Record):
    """A charge took a budget's spend past the budget (once per period: spend only grows within
    one). ``user`` is None for the project cap's."""

    time: datetime | None
    user: str | None
    spent: Decimal
    budget: Decimal
    period_start: datetime

    @property
    def type(self) -> str:
        return "over"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": _time(self.time),
            "user": self.user,
            "spent": to_text(self.spent),
            "budget": to_text(self.budget),
            "period_start": format_utc(self.period_start),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Over:
        return cls(
            _opt_moment(raw, "time"),
            _opt_text(raw, "user"),
            _money(raw, "spent"),
            _money(raw, "budget"),
            _moment(raw, "period_start"),
        )


Event = (
    Create
    | Set
    | Charge
    | Commit
    | PeriodClosed
    | Delete
    | CapSet
    | CapClear
    | HoldPlaced
    | HoldReleased
    | Alert
    | Over
)

_DECODERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "create": Create.from_json,
    "set": Set.from_json,
    "charge": Charge.from_json,
    "commit": Commit.from_json,
    "period": PeriodClosed.from_json,
    "cap-period": PeriodClosed.from_json,
    "delete": Delete.from_json,
    "cap": CapSet.from_json,
    "cap-clear": CapClear.from_json,
    "hold": HoldPlaced.from_json,
    "release": HoldReleased.from_json,
    "expire": HoldReleased.from_json,
    "alert": Alert.from_json,
    "over": Over.from_json,
}

KINDS = tuple(_DECODERS)


def from_json(raw: Any) -> Event:
    """The event a JSON object describes; EventError when it is not one (keys a store adds for
    itself, such as the JSON store's links, are ignored)."""
    if raw.__class__ is not dict and not isinstance(raw, Mapping):  # (dict: the quick check)
        raise EventError("an event is not a JSON object")
    decode = _DECODERS.get(str(raw.get("type")))
    if decode is None:
        raise EventError(f"unknown event type {raw.get('type')!r}")
    return decode(raw)


def spend(event: Event) -> Decimal | None:
    """What ``event`` added to its user's spend (a charge or a commit), else None."""
    if isinstance(event, (Charge, Commit)):
        return event.cost
    return None


def subject(event: Event) -> str | None:
    """The user an event is about (None for the project cap's events)."""
    return getattr(event, "user", None)
