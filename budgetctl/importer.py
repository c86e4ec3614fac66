"""Take over a LiteLLM ``BudgetManager`` state file (``user_cost.json``).

The file is LiteLLM's ``user_dict``: one record per user, read as
:mod:`budgetctl.store.litellm_format` reads it (amounts at a double's precision, each user a
budget whose period goes on from LiteLLM's last reset). This module reads the file (a path or
stdin) and imports its users into a project, atomically.

Every record is validated before anything is written (amounts finite, >= 0 and within bounds;
durations in the range budgetctl's periods handle; times from 1970 to now, as nothing a file says
may move the ledger's clock; names that can be stored), so a bad file is a usage error naming the
file and the record, and changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from budgetctl.core import jsontext
from budgetctl.core.record import Record
from budgetctl.core.rules import Budget
from budgetctl.errors import UsageError
from budgetctl.ledger import Ledger
from budgetctl.store.litellm_format import budget_from_litellm, describe, litellm_amount

Progress = Callable[[int, int], None]
Source = str | os.PathLike[str] | IO[bytes]


class ImportResult(Record):
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
    return _parse(_read_bytes(source), source_name(source))


def _read_bytes(source: Source) -> bytes:
    try:
        if isinstance(source, (str, os.PathLike)):
            return Path(source).read_bytes()
        return source.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source_name(source)} ({exc.strerror})") from None


def _parse(data: bytes, name: str) -> dict[str, Any]:
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
    data = _read_bytes(source)
    users = _parse(data, name)
    now = ledger.now()
    send = getattr(ledger, "import_litellm_document", None)  # a budget server's ledger
    if send is not None:
        for done, (user, raw) in enumerate(users.items(), 1):  # refused here, naming the file
            try:
                budget_from_litellm(str(user), raw, now, amount=litellm_amount, not_after=now)
            except UsageError as exc:
                raise UsageError(f"{name}: {exc}") from None
            if progress is not None:
                progress(done, len(users))
        # the server imports the same bytes, atomically, as a local ledger does
        result: ImportResult = send(data, replace=replace, dry_run=dry_run)
        return result
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
