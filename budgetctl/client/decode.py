"""The API's answers (the CLI's ``--json`` shapes, docs/cli.md) read back into the typed values
the library returns: :class:`~budgetctl.core.rules.Budget`, :class:`~budgetctl.core.rules.Hold`,
closed periods, prices and events. An answer that is not the shape expected is a
:class:`~budgetctl.errors.CorruptStateError` naming the server, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from budgetctl.core import events, periods, rules
from budgetctl.core.money import to_text
from budgetctl.core.rules import Budget, ClosedPeriod, Hold
from budgetctl.costing.interface import Price
from budgetctl.errors import CorruptStateError


class BadAnswer(Exception):
    """Raised while decoding; the caller turns it into a CorruptStateError naming the server."""


def bad(where: str, what: str) -> CorruptStateError:
    return CorruptStateError(
        where, f"the budget server's answer is not what budgetctl expects ({what})"
    )


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadAnswer(f"{what} is not an object")
    return value


def items(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadAnswer(f"{what} is not a list")
    return value


def money(value: Any, what: str = "amount") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise BadAnswer(f"{what} is not an amount")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise BadAnswer(f"{what} is not an amount") from None
    if not amount.is_finite():
        raise BadAnswer(f"{what} is not an amount")
    return amount


def opt_money(value: Any, what: str = "amount") -> Decimal | None:
    return None if value is None else money(value, what)


def moment(value: Any, what: str = "time") -> datetime:
    if not isinstance(value, str):
        raise BadAnswer(f"{what} is not a time")
    try:
        return periods.parse_utc(value)
    except ValueError:
        raise BadAnswer(f"{what} is not a time") from None


def opt_moment(value: Any, what: str = "time") -> datetime | None:
    return None if value is None else moment(value, what)


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadAnswer(f"{what} is not text")
    return value


def count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAnswer(f"{what} is not a count")
    return value


def period(raw: Any, reason: str | None = None) -> ClosedPeriod:
    data = obj(raw, "a period")
    return ClosedPeriod(
        moment(data.get("start", data.get("period_start")), "a period's start"),
        moment(data.get("end", data.get("period_end")), "a period's end"),
        money(data.get("spent"), "a period's spend"),
        money(data.get("budget"), "a period's budget"),
        reason or text(data.get("reason", "rollover"), "a period's reason"),
    )


def budget(raw: Any, user: str | None = None) -> Budget:
    """A budget from its ``show USER --json`` record (the cap's has no ``user``)."""
    data = obj(raw, "a budget")
    duration = data.get("duration")
    alert = data.get("alert_at")
    try:
        parsed = periods.parse_duration(text(duration, "duration")) if duration else None
    except ValueError:
        raise BadAnswer(f"duration {duration!r} is unknown") from None
    return Budget(
        user=user if user is not None else text(data.get("user"), "a budget's user"),
        total_budget=money(data.get("total_budget"), "total_budget"),
        duration=parsed,
        timezone=text(data.get("timezone"), "timezone"),
        start=opt_moment(data.get("start"), "start"),
        created_at=moment(data.get("created_at"), "created_at"),
        period_start=moment(data.get("period_start"), "period_start"),
        next_reset_at=opt_moment(data.get("next_reset_at"), "next_reset_at"),
        current_cost=money(data.get("current_cost"), "current_cost"),
        model_cost=MappingProxyType(
            {
                text(model, "a model"): money(cost, "a model's cost")
                for model, cost in obj(data.get("model_cost", {}), "model_cost").items()
            }
        ),
        alert_at=()
        if alert is None
        else tuple(money(a, "alert_at") for a in (alert if isinstance(alert, list) else [alert])),
        recent_periods=tuple(period(p) for p in items(data.get("recent_periods", []), "periods")),
    )


def cap(raw: Any) -> Budget | None:
    return None if raw is None else budget(raw, rules.CAP)


def hold(raw: Any) -> Hold:
    data = obj(raw, "a hold")
    return Hold(
        text(data.get("hold_id"), "hold_id"),
        text(data.get("user"), "a hold's user"),
        money(data.get("amount"), "a hold's amount"),
        moment(data.get("created_at"), "a hold's created_at"),
        moment(data.get("expires_at"), "a hold's expires_at"),
    )


def price(raw: Any) -> Price:
    """A price from its ``models --json`` record (rates per 1M tokens)."""
    data = obj(raw, "a price")

    def per_token(key: str) -> Decimal | None:
        rate = opt_money(data.get(key), key)
        return None if rate is None else rate.scaleb(-6)

    def opt_count(key: str) -> int | None:
        value = data.get(key)
        return None if value is None else count(value, key)

    def opt_text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else text(value, key)

    entered = per_token("input_per_1m")
    out = per_token("output_per_1m")
    if entered is None or out is None:
        raise BadAnswer("a price has no input or output rate")
    return Price(
        model=text(data.get("model"), "a price's model"),
        input_per_token=entered,
        output_per_token=out,
        cache_read_per_token=per_token("cache_read_per_1m"),
        cache_creation_per_token=per_token("cache_creation_per_1m"),
        provider=opt_text("provider"),
        mode=opt_text("mode"),
        source=opt_text("source") or "project",
        max_input_tokens=opt_count("max_input_tokens"),
        max_output_tokens=opt_count("max_output_tokens"),
    )


def event(raw: Any) -> events.Event:
    """An event from its ``history --json`` record (money there is a number; in an event's own
    JSON it is decimal text)."""
    data = {
        key: (to_text(value) if value >= 0 else "-" + to_text(-value))
        if isinstance(value, Decimal)
        else value
        for key, value in obj(raw, "an event").items()
    }
    try:
        return events.from_json(data)
    except events.EventError as exc:
        raise BadAnswer(str(exc)) from None
