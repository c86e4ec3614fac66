"""Take over a LiteLLM ``BudgetManager`` state file (``user_cost.json``).

LiteLLM stores, per user, ``total_budget`` and ``current_cost`` as floats, ``model_cost`` as a dict
of floats, ``duration`` as a whole number of days (1, 7, 28 or 365), and ``created_at`` /
``last_updated_at`` as epoch seconds; ``last_updated_at`` is its last reset. Each user becomes a
budget with duration ``<N>d`` anchored at that last reset, so the period LiteLLM was counting goes
on where it was, and its spend and per-model costs carry over. Numbers are read as the decimal text
in the file (never through float). A user with no duration becomes a lifetime budget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from budgetctl.core import jsontext, periods, rules
from budgetctl.core.money import parse_amount
from budgetctl.core.periods import MAX_DAYS, UTC, Duration
from budgetctl.core.rules import Budget
from budgetctl.errors import BudgetctlError, UsageError
from budgetctl.ledger import Ledger

Progress = Callable[[int, int], None]


class ImportResult(NamedTuple):
    """Users imported, and users skipped because they already had a budget."""

    imported: list[str]
    skipped: list[str]


def read_litellm_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The user dict of a LiteLLM ``user_cost.json``, numbers as exact Decimals."""
    source = Path(path)
    try:
        text = source.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {source} ({exc.strerror})") from None
    try:
        data = jsontext.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{source} is not valid JSON ({exc}); is it LiteLLM's user_cost.json?"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected an object of users, as LiteLLM's user_cost.json")
    return data


def _epoch(value: Any, what: str, user: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise UsageError(f"user {user!r}: {what} must be epoch seconds, not {value!r}")
    try:
        moment = datetime.fromtimestamp(float(value), UTC).replace(microsecond=0)
        return periods.check_moment(moment, value)
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"user {user!r}: {what} {value} is out of range") from None


def budget_from_litellm(user: str, raw: Any, now: datetime) -> Budget:
    """One LiteLLM user record as a budgetctl :class:`Budget`."""
    rules.check_user_name(user)
    if not isinstance(raw, Mapping):
        raise UsageError(f"user {user!r}: record is not an object")
    if "total_budget" not in raw:
        raise UsageError(f"user {user!r}: no total_budget")
    try:
        total = parse_amount(raw["total_budget"], f"user {user!r}: total_budget")
        spent = parse_amount(raw.get("current_cost", 0), f"user {user!r}: current_cost")
        model_cost_raw = raw.get("model_cost") or {}
        if not isinstance(model_cost_raw, Mapping):
            raise UsageError(f"user {user!r}: model_cost is not an object")
        model_cost = {
            str(m): parse_amount(c, f"user {user!r}: model_cost[{m}]")
            for m, c in model_cost_raw.items()
        }
    except BudgetctlError as exc:
        raise UsageError(str(exc)) from None
    days = raw.get("duration")
    created = _epoch(raw.get("created_at"), "created_at", user)
    last_reset = _epoch(raw.get("last_updated_at"), "last_updated_at", user) or created
    duration: Duration | None = None
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, (int, Decimal)) or days != int(days):
            raise UsageError(f"user {user!r}: duration must be a whole number of days")
        if int(days) < 1:
            raise UsageError(f"user {user!r}: duration must be at least 1 day")
        if days > MAX_DAYS:  # 1e400 days: no date is that far
            raise UsageError(f"user {user!r}: duration must be at most {MAX_DAYS} days")
        duration = Duration(int(days), "d", calendar=False)
    anchor = last_reset or now.replace(microsecond=0)
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
    path: str | os.PathLike[str],
    *,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import every user of a LiteLLM ``user_cost.json`` into ``ledger``'s project, atomically.

    Users that already have a budget are skipped (``replace=True`` overwrites them).
    """
    users = read_litellm_file(path)
    now = ledger.now()
    existing = set(ledger.users()) if ledger.exists() else set()
    budgets: list[Budget] = []
    skipped: list[str] = []
    total = len(users)
    for done, (user, raw) in enumerate(users.items(), 1):
        if user in existing and not replace:
            skipped.append(user)
        else:
            budgets.append(budget_from_litellm(str(user), raw, now))
        if progress is not None:
            progress(done, total)
    if budgets:
        # Atomic: a user created by someone else since we looked fails the whole import.
        ledger.store.create_many(budgets, replace=replace, dry_run=dry_run)
    return ImportResult([b.user for b in budgets], skipped)


__all__ = ["ImportResult", "budget_from_litellm", "import_litellm", "read_litellm_file"]
