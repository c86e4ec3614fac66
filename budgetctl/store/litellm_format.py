"""LiteLLM's per-user budget record, read into a :class:`Budget` and written from one.

LiteLLM's ``BudgetManager`` keeps a ``user_dict`` mapping each user to a record: ``total_budget``
and ``current_cost`` as floats, ``model_cost`` as a dict of floats, ``duration`` as a whole number
of days (1, 7, 28 or 365; absent for a lifetime budget), and ``created_at`` / ``last_updated_at``
as epoch seconds; ``last_updated_at`` is its last reset. It is the format of ``user_cost.json``
(which ``import-litellm`` takes over) and of the hosted protocol's ``user_dict`` (which the hosted
store reads and writes), so both use this module and nothing else knows the record's fields.

Reading (:func:`budget_from_litellm`): each user becomes a budget with duration ``<N>d`` anchored
at its last reset, so the period LiteLLM was counting goes on where it was, and its spend and
per-model costs carry over. A user with no duration becomes a lifetime budget. Every field is
validated (amounts finite, >= 0 and within bounds; durations in the range budgetctl's periods
handle; times from 1970 on; names that can be stored): a bad record is a UsageError naming the
user.

LiteLLM's amounts are floats, summed as floats: ``0.1 + 0.2`` is written ``0.30000000000000004``.
:func:`litellm_amount` reads a JSON float at a double's real precision, 15 significant digits
(``DBL_DIG``): every decimal of up to 15 digits survives a trip through a double, so nothing
LiteLLM meant is lost, and the noise of its float arithmetic (the 16th and 17th digits) is
dropped: ``0.3``. JSON integers and numeric strings are exact.

Writing (:func:`litellm_record`): a budget as floats and epoch seconds that LiteLLM clients and a
LiteLLM server's reset job read as their own. Where budgetctl keeps a ``user_dict`` itself (the
hosted store), it adds its exact record under :data:`RECORD_KEY` in each user's record, and its
project data under the reserved user key :data:`META_KEY`; :func:`mirrors` tells whether a
record's LiteLLM fields still say what that exact record says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.core import periods, rules
from budgetctl.core.money import parse_amount
from budgetctl.core.periods import UTC, Duration, format_utc, parse_duration
from budgetctl.core.rules import Budget
from budgetctl.errors import BudgetctlError, InvalidDurationError, UsageError

META_KEY = "__budgetctl__"  # the reserved user: no "duration", so LiteLLM's reset job passes it
RECORD_KEY = "budgetctl"  # in a user's record: budgetctl's exact record (docs/state-format.md)
DOUBLE_DIGITS = 15  # significant decimal digits a double always holds (DBL_DIG)
_NOT_A_PERIOD = 10**7  # days: far past the longest period, checked before any int() is made
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MIRRORED = ("current_cost", "total_budget", "last_updated_at")


# --- what a document is ---------------------------------------------------------------------------


def describe(document: Any) -> str | None:
    """What a JSON document that is not a LiteLLM ``user_dict`` (``user_cost.json``) looks like;
    None when it may be one (an object with at least one user record, or an empty object)."""
    if not isinstance(document, dict):
        kinds = {list: "a JSON list", str: "a JSON string", bool: "JSON true or false"}
        return kinds.get(type(document), "JSON null" if document is None else "a JSON number")
    if not document:
        return None
    if document.get("format") == "budgetctl-state":
        return (
            f"a budgetctl state file (project {document.get('project')!r}): it is budgetctl's "
            "own, there is nothing to import"
        )
    if isinstance(document.get("users"), list) and "project" in document:
        return "the output of 'budgetctl show --json'"
    if "status" in document and isinstance(document.get("data"), dict):
        return "a LiteLLM budget server reply: its 'data' holds the users"
    records = [value for value in document.values() if isinstance(value, Mapping)]
    if any("total_budget" in record for record in records):
        return None
    if any("input_cost_per_token" in record or "litellm_provider" in record for record in records):
        return "a LiteLLM price map: give it to --prices FILE"
    from budgetctl.costing.responses import describe as describe_response

    response = describe_response(document)
    if response is not None and response.startswith("a completion response"):
        return f"{response}: charge it with 'budgetctl update-cost USER --response FILE'"
    if response is not None:
        return response
    fields = ", ".join(str(key)[:40] for key in list(document)[:8])
    return f"an object whose fields hold no LiteLLM user record ({fields})"


# --- reading a record -----------------------------------------------------------------------------


def litellm_amount(value: object, what: str) -> Decimal:
    """A LiteLLM amount: a float (or the Decimal text of a JSON float) at 15 significant digits;
    an int or a numeric string exactly. Then the usual money rules (finite, >= 0, bounded)."""
    if isinstance(value, Decimal):
        if len(value.as_tuple().digits) <= DOUBLE_DIGITS:
            return parse_amount(value, what)  # what the double gives back (the common case)
        value = float(value)  # what LiteLLM held: the double nearest the text
    if isinstance(value, float) and math.isfinite(value):
        value = Decimal(format(value, f".{DOUBLE_DIGITS}g"))
    return parse_amount(value, what)


def _read_epoch(value: Any, what: str, user: str) -> datetime | None:
    """Epoch seconds as a UTC time to the second, from 1970 to the last year budgetctl handles."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise UsageError(f"user {user!r}: {what} must be epoch seconds, not {value!r}")
    try:
        seconds = float(value)
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=0)
    except (OverflowError, OSError, ValueError):
        shown = value if not isinstance(value, int) or abs(value) < 10**40 else "(40+ digits)"
        raise UsageError(f"user {user!r}: {what} {shown} is out of range") from None
    if seconds < 0:
        raise UsageError(f"user {user!r}: {what} {value} is before 1970: not a LiteLLM time")
    return periods.check_moment(moment, value)


def _read_duration(days: Any, user: str) -> Duration | None:
    """LiteLLM's ``duration`` in days as ``<N>d``, within the periods budgetctl handles."""
    if days is None:
        return None
    whole = f"user {user!r}: duration must be a whole number of days, not {{}}"
    if isinstance(days, bool) or not isinstance(days, (int, float, Decimal)):
        raise UsageError(whole.format(repr(days)[:40]))
    number = Decimal(days)
    if not number.is_finite() or number != number.to_integral_value():
        raise UsageError(whole.format(days))
    if number < 1:
        raise UsageError(f"user {user!r}: duration must be at least 1 day")
    longest = f"user {user!r}: duration {{}} days is longer than budgetctl's longest period"
    if number > _NOT_A_PERIOD:
        raise UsageError(longest.format(f"{number:.6E}") + " (100 years)")
    try:
        duration = parse_duration(f"{int(number)}d")
    except InvalidDurationError:
        raise UsageError(longest.format(int(number)) + " (100 years)") from None
    assert duration is not None
    return duration


def _name(name: str, what: str) -> str:
    """``name`` if it can be stored (UTF-8 text without control characters)."""
    rules.check_text(name, what)
    if _CONTROL.search(name):
        raise UsageError(f"{what} {name!r} contains control characters")
    return name


def budget_from_litellm(
    user: str,
    raw: Any,
    now: datetime,
    *,
    amount: Callable[[object, str], Decimal] = parse_amount,
    not_after: datetime | None = None,
) -> Budget:
    """One LiteLLM user record as a budgetctl :class:`Budget`, every field validated.

    ``amount`` reads each amount: by default exactly as the JSON text says (the hosted store,
    which must return what LiteLLM would); the import passes :func:`litellm_amount`.
    ``not_after`` refuses ``created_at`` / ``last_updated_at`` later than it (the import passes
    the ledger's clock: a time from the future would move the ledger's "now").
    """
    rules.check_user_name(user)
    _name(user, "user")
    if not isinstance(raw, Mapping):
        raise UsageError(f"user {user!r}: record is not an object")
    if "total_budget" not in raw:
        raise UsageError(f"user {user!r}: no total_budget")
    try:
        total = amount(raw["total_budget"], f"user {user!r}: total_budget")
        spent = amount(raw.get("current_cost", 0), f"user {user!r}: current_cost")
        model_cost_raw = raw.get("model_cost") or {}
        if not isinstance(model_cost_raw, Mapping):
            raise UsageError(f"user {user!r}: model_cost is not an object")
        model_cost: dict[str, Decimal] = {}
        for model, cost in model_cost_raw.items():
            if not model:
                raise UsageError(f"user {user!r}: model_cost has a model with no name")
            name = _name(str(model), f"user {user!r}: model name")
            model_cost[name] = amount(cost, f"user {user!r}: model_cost[{name}]")
    except BudgetctlError as exc:
        raise UsageError(str(exc)) from None
    duration = _read_duration(raw.get("duration"), user)
    created = _read_epoch(raw.get("created_at"), "created_at", user)
    updated = _read_epoch(raw.get("last_updated_at"), "last_updated_at", user)
    if not_after is not None:
        for what, moment in (("created_at", created), ("last_updated_at", updated)):
            if moment is not None and moment > not_after:
                raise UsageError(
                    f"user {user!r}: {what} {format_utc(moment)} is after the current time "
                    f"({format_utc(not_after.replace(microsecond=0))}); budgetctl takes no time "
                    "from the future"
                )
    anchor = updated or created or now.replace(microsecond=0)
    # The period LiteLLM was counting starts at its last reset; a period that has ended since is
    # rolled over (and archived) by the next command or reset-due, like any other.
    budget = rules.new_budget(
        user,
        total,
        anchor,
        duration=duration,
        start=anchor if duration is not None else None,
        current_cost=spent,
        model_cost=model_cost,
    )
    return budget._replace(created_at=created or anchor)


# --- writing a record -----------------------------------------------------------------------------


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _litellm_period(budget: Budget) -> tuple[datetime, int | float | None]:
    """The current period's grid start and its length in days (None for a lifetime budget).

    A reset by hand zeroes the spend mid-period but keeps the period's boundaries, as LiteLLM's
    ``reset_cost`` keeps ``duration`` and ``last_updated_at``: a LiteLLM reader of the record
    (``last_updated_at + duration * 86400``) still finds the period's end.
    """
    if budget.next_reset_at is None or budget.duration is None:
        return budget.period_start, None
    start, _ = rules.current_period(
        budget.duration, budget.timezone, budget.start, budget.created_at, budget.period_start
    )
    days = (budget.next_reset_at - start).total_seconds() / 86400
    return start, int(days) if days == int(days) else days


def litellm_record(budget: Budget) -> dict[str, Any]:
    """A budget in the shape of a LiteLLM ``user_dict`` entry (floats and epoch seconds).

    A lifetime budget has no ``duration`` key, as in LiteLLM, whose reset job resets every record
    that has one (and would fail on ``None * 86400``).
    """
    period_start, days = _litellm_period(budget)
    record: dict[str, Any] = {"total_budget": float(budget.total_budget)}
    if days is not None:
        record["duration"] = days
    # LiteLLM's created_at is the time its periods count from: the anchor when one was given
    record["created_at"] = _epoch(budget.start or budget.created_at)
    record["last_updated_at"] = _epoch(period_start)
    record["current_cost"] = float(budget.current_cost)
    record["model_cost"] = {model: float(cost) for model, cost in budget.model_cost.items()}
    return record


def mirrors(litellm: Mapping[str, Any], budget: Budget) -> bool:
    """True when a record's LiteLLM fields still say what budgetctl's exact record says.

    Compared as floats: the server's numbers are read as Decimals of the text it sent, which is
    the shortest repr of the float budgetctl wrote (a sub-second time's Decimal is not that float).
    """
    mirror = litellm_record(budget)
    try:
        return all(float(litellm.get(field, 0)) == mirror[field] for field in _MIRRORED)
    except (TypeError, ValueError):
        return False


__all__ = [
    "DOUBLE_DIGITS",
    "META_KEY",
    "RECORD_KEY",
    "budget_from_litellm",
    "describe",
    "litellm_amount",
    "litellm_record",
    "mirrors",
]
