"""Budgets to and from the JSON records of the state file (docs/state-format.md).

Money is stored as exact decimal *strings* (``"0.000123"``): ``json`` then parses a large file
without building a Decimal for every user, and only the records a command touches are decoded.
Times are ISO 8601 UTC strings, to the microsecond when there is one (``created_at`` and a reset's
moment usually have one; calendar boundaries do not). Their first 19 characters (to the second)
compare correctly as text; ties are decided on the parsed time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from budgetctl.core import periods, rules
from budgetctl.core.money import MAX_PLACES, MAX_STORED, ZERO, check_amount, shown, to_text
from budgetctl.core.periods import check_moment, format_utc, parse_utc
from budgetctl.core.rules import Budget, ClosedPeriod
from budgetctl.errors import BudgetctlError, InvalidAmountError


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
    """A closed period from its history event; RecordError saying what is wrong if malformed."""
    try:
        return ClosedPeriod(
            start=_moment(raw["start"]),
            end=_moment(raw["end"]),
            spent=_money(raw["spent"]),
            budget=_money(raw["budget"]),
            reason=str(raw.get("reason", "rollover")),
        )
    except KeyError as missing:
        raise RecordError(f"a closed period's {missing.args[0]!r} is missing") from None
    except (TypeError, ValueError, AttributeError, BudgetctlError) as bad:
        raise RecordError(f"a closed period: {bad}") from None


def encode_alerts(alerts: Sequence[Decimal]) -> str | list[str] | None:
    """A budget's alert thresholds in a record: one as a decimal string (as budgetctl 0.2 wrote
    it), several as a list of them, none as None."""
    if not alerts:
        return None
    if len(alerts) == 1:
        return to_text(alerts[0])
    return [to_text(a) for a in alerts]


def decode_alerts(raw: Any) -> tuple[Decimal, ...]:
    """What :func:`encode_alerts` wrote (a number is read as one threshold too)."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        return tuple(sorted(_money(a) for a in raw))
    return (_money(raw),)


def encode(budget: Budget) -> dict[str, Any]:
    """The state-file record of a budget (the user name is its key, not part of the record).

    Fields at their default (no model costs, no duration, UTC, no start, no alert, no closed
    periods) are left out: a 100,000-user file is then about 40% smaller and as much faster.
    """
    record: dict[str, Any] = {
        "total_budget": to_text(budget.total_budget),
        "current_cost": to_text(budget.current_cost),
        "created_at": format_utc(budget.created_at),
        "period_start": format_utc(budget.period_start),
    }
    if budget.duration is not None:
        record["duration"] = budget.duration.text
    if budget.next_reset_at is not None:
        record["next_reset_at"] = format_utc(budget.next_reset_at)
    if budget.model_cost:
        record["model_cost"] = {m: to_text(c) for m, c in budget.model_cost.items()}
    if budget.timezone != "UTC":
        record["timezone"] = budget.timezone
    if budget.start is not None:
        record["start"] = format_utc(budget.start)
    if budget.alert_at:
        record["alert_at"] = encode_alerts(budget.alert_at)
    # Closed periods are not kept here: they are in the history, which the store links each
    # record into (see history.link_and_encode).
    return record


def decode(user: str, raw: Any) -> Budget:
    """A :class:`Budget` from its record; RecordError saying what is wrong if it is malformed."""
    if not isinstance(raw, dict):
        raise RecordError(f"{_who(user)}: record is not an object")
    try:
        duration = periods.parse_duration(raw["duration"]) if raw.get("duration") else None
        start = raw.get("start")
        next_reset = raw.get("next_reset_at")
        alert = raw.get("alert_at")
        timezone = raw.get("timezone") or "UTC"
        if timezone != "UTC":
            timezone = str(timezone)
            periods.parse_timezone(timezone)  # an unknown zone is a bad record, not a usage error
        if next_reset and duration is None:
            raise RecordError("a next reset without a duration")
        model_cost = raw.get("model_cost")
        return Budget(  # positional (in Budget's order): reset-due decodes every due budget
            user,
            _money(raw["total_budget"]),
            duration,
            timezone,
            _moment(start) if start else None,
            _moment(raw["created_at"]),
            _moment(raw["period_start"]),
            _moment(next_reset) if next_reset else None,
            _money(raw["current_cost"]),
            {str(m): _money(c) for m, c in model_cost.items()} if model_cost else {},
            decode_alerts(alert),
        )
    except KeyError as missing:
        raise RecordError(f"{_who(user)}: field {missing.args[0]!r} is missing") from None
    except (TypeError, ValueError, AttributeError, BudgetctlError) as bad:
        raise RecordError(f"{_who(user)}: {bad}") from None


def _who(user: str) -> str:
    return "the project cap" if user == rules.CAP else f"user {user!r}"


@lru_cache(maxsize=4096)
def _moment(text: str) -> datetime:
    """A stored time, within the range every time budgetctl takes is in (years 1970 to 9000).

    Cached, as parse_utc is: the budgets of one grid share their period's start and end, and the
    range check costs more than the parse's cache lookup."""
    return check_moment(parse_utc(text), text)


# An amount as ``to_text`` stores it: ASCII digits, at most MAX_PLACES after a point, and fewer
# integer digits than MAX_STORED has (so below it). Such text is finite, not negative, within the
# limit and has few enough places: it needs none of check_amount's checks, which cost decoding a
# record most of its time (reset-due decodes every due budget). Anything else takes the full path.
_STORED_AMOUNT = re.compile(rf"[0-9]{{1,{MAX_STORED.adjusted()}}}(?:\.[0-9]{{1,{MAX_PLACES}}})?")


def _money(value: Any) -> Decimal:
    if type(value) is str and _STORED_AMOUNT.fullmatch(value):
        amount = Decimal(value)
        return amount if amount else ZERO  # as check_amount: -0 and 0E-7 are ZERO
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"amount {shown(value)} is not a decimal string")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise RecordError(f"amount {shown(value)} is not a decimal number") from None
    try:  # bounded: 1e-99999999 would make every sum with it fail, 1e+999999999 every printing
        return check_amount(amount, "amount", limit=MAX_STORED)
    except InvalidAmountError as bad:
        raise RecordError(str(bad)) from None
