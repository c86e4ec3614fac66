"""Shell completion of values: users, projects, models, durations and time zones.

Typer calls these with what the word so far is (``incomplete``) and the parameters parsed so far
(``ctx``: ``-p``/``--data-dir``/``--database-url``, before or after the command). They run in a
completion process, never on a command's path, and a state that cannot be read offers nothing
rather than failing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import typer

from budgetctl.errors import BudgetctlError


def _setting(ctx: typer.Context, name: str) -> str | None:
    """A parameter given on the command line, to the command or to the root before it (the
    environment and the defaults are the callers' fallbacks, as for the command itself)."""
    from typer._click.core import ParameterSource

    context: typer.Context | None = ctx
    while context is not None:
        value = context.params.get(name)
        if value and context.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            return str(value)
        context = context.parent  # type: ignore[assignment]
    return None


def _starting(values: Iterable[str], incomplete: str) -> list[str]:
    return [value for value in values if value.startswith(incomplete)]


def users(ctx: typer.Context, incomplete: str) -> list[str]:
    """The users of the project named so far (``-p``, ``BUDGETCTL_PROJECT``, else default)."""
    from budgetctl.ledger import Ledger

    project = _setting(ctx, "project") or os.environ.get("BUDGETCTL_PROJECT") or "default"
    try:
        names = Ledger(
            project, _setting(ctx, "data_dir"), database_url=_setting(ctx, "database_url")
        ).users()
    except BudgetctlError:
        return []
    return _starting(sorted(names), incomplete)


def projects(ctx: typer.Context, incomplete: str) -> list[str]:
    from budgetctl.projects import find_projects

    try:
        found = find_projects(_setting(ctx, "data_dir"), database_url=_setting(ctx, "database_url"))
        return _starting(found.projects, incomplete)
    except (BudgetctlError, OSError):
        return []


def models(ctx: typer.Context, incomplete: str) -> list[str]:
    """Priced model names: the bundled table, --prices FILE and the project's own prices."""
    from budgetctl.ledger import Ledger

    project = _setting(ctx, "project") or os.environ.get("BUDGETCTL_PROJECT") or "default"
    try:
        ledger = Ledger(
            project,
            _setting(ctx, "data_dir"),
            prices_file=_setting(ctx, "prices"),
            database_url=_setting(ctx, "database_url"),
        )
        names = [price.model for price in ledger.prices(None)]
    except BudgetctlError:
        return []
    return _starting(names, incomplete)


DURATIONS = ("daily", "weekly", "monthly", "yearly", "none", "1h", "7d", "2w", "3mo", "1y")


def durations(incomplete: str) -> list[str]:
    return _starting(DURATIONS, incomplete)


def timezones(incomplete: str) -> list[str]:
    """IANA names (``Europe/P`` offers Europe/Paris, Europe/Podgorica, Europe/Prague)."""
    from zoneinfo import available_timezones

    return _starting(sorted(available_timezones()), incomplete)
