"""Budgets to and from the JSON records of the state file (docs/state-format.md).

Money is stored as exact decimal *strings* (``"0.000123"``): ``json`` then parses a large file
without building a Decimal for every user, and only the records a command touches are decoded.
Times are ISO 8601 UTC strings with whole seconds, so they compare correctly as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from budgetctl.core import periods
from budgetctl.core.money import to_text
from budgetctl.core.periods import format_utc, parse_utc
from budgetctl.core.rules import Budget, ClosedPeriod
from budgetctl.errors import BudgetctlError


class RecordError(ValueError):
    """A record that does not decode; the store turns it into CorruptStateError."""


def encode_period(period: ClosedPeriod) -> dict[str, Any]:
    return {
        "start": format_utc(period.start),
        "end": format_utc(period.end),
        "spent": to_text(period.spent),
        "budget": to_text(period.budget),
        "reason": period.reason,
    }


def decode_period(raw: Mapping[str, Any]) -> ClosedPeriod:
    return ClosedPeriod(
        start=parse_utc(raw["start"]),
        end=parse_utc(raw["end"]),
        spent=_money(raw["spent"]),
        budget=_money(raw["budget"]),
        reason=str(raw.get("reason", "rollover")),
    )


def encode(budget: Budget) -> dict[str, Any]:
    """The state-file record of a budget (the user name is its key, not part of the record)."""
    record: dict[str, Any] = {
        "total_budget": to_text(budget.total_budget),
        "current_cost": to_text(budget.current_cost),
        "model_cost": {m: to_text(c) for m, c in budget.model_cost.items()},
        "duration": budget.duration.text if budget.duration else None,
        "timezone": budget.timezone,
        "start": format_utc(budget.start) if budget.start else None,
        "created_at": format_utc(budget.created_at),
        "period_start": format_utc(budget.period_start),
        "next_reset_at": format_utc(budget.next_reset_at) if budget.next_reset_at else None,
        "last_updated_at": format_utc(budget.last_updated_at) if budget.last_updated_at else None,
        "alert_at": to_text(budget.alert_at) if budget.alert_at is not None else None,
    }
    if budget.recent_periods:
        record["periods"] = [encode_period(p) for p in budget.recent_periods]
    return record


def decode(user: str, raw: Any) -> Budget:
    """A :class:`Budget` from its record; RecordError saying what is wrong if it is malformed."""
    if not isinstance(raw, dict):
        raise RecordError(f"user {user!r}: record is not an object")
    try:
        duration = periods.parse_duration(raw["duration"]) if raw.get("duration") else None
        return Budget(
            user=user,
            total_budget=_money(raw["total_budget"]),
            duration=duration,
            timezone=str(raw.get("timezone") or "UTC"),
            start=parse_utc(raw["start"]) if raw.get("start") else None,
            created_at=parse_utc(raw["created_at"]),
            period_start=parse_utc(raw["period_start"]),
            next_reset_at=parse_utc(raw["next_reset_at"]) if raw.get("next_reset_at") else None,
            current_cost=_money(raw["current_cost"]),
            model_cost={str(m): _money(c) for m, c in (raw.get("model_cost") or {}).items()},
            alert_at=_money(raw["alert_at"]) if raw.get("alert_at") is not None else None,
            last_updated_at=parse_utc(raw["last_updated_at"])
            if raw.get("last_updated_at")
            else None,
            recent_periods=tuple(decode_period(p) for p in raw.get("periods") or ()),
        )
    except KeyError as missing:
        raise RecordError(f"user {user!r}: field {missing.args[0]!r} is missing") from None
    except (TypeError, ValueError, AttributeError, BudgetctlError) as bad:
        raise RecordError(f"user {user!r}: {bad}") from None


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"amount {value!r} is not a decimal string")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise RecordError(f"amount {value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise RecordError(f"amount {value!r} is not finite")
    return amount
