"""Take over a LiteLLM ``BudgetManager`` state file (``user_cost.json``).

LiteLLM stores, per user, ``total_budget`` and ``current_cost`` as floats, ``model_cost`` as a dict
of floats, ``duration`` as a whole number of days (1, 7, 28 or 365), and ``created_at`` /
``last_updated_at`` as epoch seconds; ``last_updated_at`` is its last reset. Each user becomes a
budget with duration ``<N>d`` anchored at that last reset, so the period LiteLLM was counting goes
on where it was, and its spend and per-model costs carry over. A user with no duration becomes a
lifetime budget.

LiteLLM's amounts are floats, summed as floats: ``0.1 + 0.2`` is written ``0.30000000000000004``.
A JSON float is read at a double's real precision, 15 significant digits (``DBL_DIG``): every
decimal of up to 15 digits survives a trip through a double, so nothing LiteLLM meant is lost, and
the noise of its float arithmetic (the 16th and 17th digits) is dropped: ``0.3``. JSON integers and
numeric strings are exact.

Every record is validated before anything is written (amounts finite, >= 0 and within bounds;
durations in the range budgetctl's periods handle; times from 1970 to now, as nothing a file says
may move the ledger's clock; names that can be stored), so a bad file is a usage error naming the
file and the record, and changes nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NamedTuple

from budgetctl.core import jsontext, periods, rules
from budgetctl.core.money import parse_amount
from budgetctl.core.periods import UTC, Duration, format_utc, parse_duration
from budgetctl.core.rules import Budget
from budgetctl.errors import BudgetctlError, InvalidDurationError, UsageError
from budgetctl.ledger import Ledger

Progress = Callable[[int, int], None]
Source = str | os.PathLike[str] | IO[bytes]

DOUBLE_DIGITS = 15  # significant decimal digits a double always holds (DBL_DIG)
_NOT_A_PERIOD = 10**7  # days: far past the longest period, checked before any int() is made
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ImportResult(NamedTuple):
    """Users imported, skipped because they already had a budget, and (``replace``) replaced."""

    imported: list[str]
    skipped: list[str]
    replaced: list[str]


def source_name(source: Source) -> str:
    """How ``source`` is named in messages: its path, or ``stdin``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return "stdin" if name in (None, "<stdin>", 0) else str(name)


def read_litellm_file(source: Source) -> dict[str, Any]:
    """The user dict of a LiteLLM ``user_cost.json`` (a path or a binary stream such as stdin),
    numbers as the exact Decimal text in the file."""
    name = source_name(source)
    try:
        if isinstance(source, (str, os.PathLike)):
            data = Path(source).read_bytes()
        else:
            data = source.read()
    except OSError as exc:
        raise UsageError(f"cannot read {name} ({exc.strerror})") from None
    if not data.strip():
        raise UsageError(f"{name} is empty: expected LiteLLM's user_cost.json")
    try:
        document = jsontext.loads(data, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UsageError(
            f"{name} is not valid JSON ({reason}); is it LiteLLM's user_cost.json?"
        ) from None
    looks_like = describe(document)
    if looks_like is not None:
        raise UsageError(f"{name} is not LiteLLM's user_cost.json: it looks like {looks_like}")
    assert isinstance(document, dict)
    return document


def describe(document: Any) -> str | None:
    """What a JSON document that is not a LiteLLM ``user_cost.json`` looks like; None when it may
    be one (an object with at least one user record, or an empty object)."""
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


def _epoch(value: Any, what: str, user: str) -> datetime | None:
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


def _duration(days: Any, user: str) -> Duration | None:
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
    duration = _duration(raw.get("duration"), user)
    created = _epoch(raw.get("created_at"), "created_at", user)
    updated = _epoch(raw.get("last_updated_at"), "last_updated_at", user)
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


def import_litellm(
    ledger: Ledger,
    source: Source,
    *,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import every user of a LiteLLM ``user_cost.json`` (a path, or a binary stream such as
    ``sys.stdin.buffer``) into ``ledger``'s project, atomically.

    Every record is validated first; a bad one is a :class:`UsageError` naming the file and the
    user, and nothing is written. Users that already have a budget are skipped (``replace=True``
    overwrites them, and lists them in ``replaced``; with ``dry_run`` too, so a caller can say
    which live budgets an import would overwrite).
    """
    name = source_name(source)
    users = read_litellm_file(source)
    now = ledger.now()
    existing = set(ledger.users()) if ledger.exists() else set()
    budgets: list[Budget] = []
    skipped: list[str] = []
    total = len(users)
    for done, (user, raw) in enumerate(users.items(), 1):
        try:
            budget = budget_from_litellm(str(user), raw, now, amount=litellm_amount, not_after=now)
        except UsageError as exc:
            raise UsageError(f"{name}: {exc}") from None
        if user in existing and not replace:
            skipped.append(user)
        else:
            budgets.append(budget)
        if progress is not None:
            progress(done, total)
    if budgets:
        # Atomic: a user created by someone else since we looked fails the whole import.
        ledger.store.create_many(budgets, replace=replace, dry_run=dry_run)
    imported = [budget.user for budget in budgets]
    return ImportResult(imported, skipped, [user for user in imported if user in existing])


__all__ = [
    "ImportResult",
    "budget_from_litellm",
    "describe",
    "import_litellm",
    "litellm_amount",
    "read_litellm_file",
    "source_name",
]
