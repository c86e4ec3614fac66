"""Maintenance over every project of a data directory (or a database): what cron runs.

``reset_due_all`` is ``budgetctl reset-due --all-projects`` as a library call: each project's
:meth:`Ledger.reset_due <budgetctl.ledger.Ledger.reset_due>` in turn, and one broken project (a
corrupt state file, a lock held too long) is reported with its error without stopping the others.
Each project is its own transaction: a failure leaves the projects done before it done. On a
database (``database_url``, or ``BUDGETCTL_DATABASE_URL``) the projects are the database's, gone
over on one connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from budgetctl.core.operations import ResetDue
from budgetctl.core.record import Record
from budgetctl.errors import BudgetctlError, UsageError
from budgetctl.ledger import Clock, Ledger, system_clock
from budgetctl.projects import DataDirProjects, find_projects


def refuse_future(
    moment: datetime, clock: datetime, option: str = "--now", preview: str = "--dry-run"
) -> None:
    """Nothing in the future is written (docs/cli.md, reset-due): periods closed early would stay
    closed, so a later ``--now`` is only a preview."""
    from budgetctl.core.periods import format_utc

    if moment > clock:
        raise UsageError(
            f"{option} {format_utc(moment)} is later than the clock ({format_utc(clock)}): "
            f"resetting ahead of time would close periods that have not ended; preview it with "
            f"{preview}"
        )


class ProjectResetDue(Record):
    """One project's outcome: its ``result``, or the ``error`` that stopped it (the other None)."""

    project: str
    result: ResetDue | None
    error: BudgetctlError | None


class ResetDueAll(Record):
    """Every project's outcome, in the order of ``found.projects`` (sorted by name)."""

    found: DataDirProjects
    outcomes: tuple[ProjectResetDue, ...]

    @property
    def results(self) -> tuple[ResetDue, ...]:
        """The results of the projects that were done."""
        return tuple(o.result for o in self.outcomes if o.result is not None)

    @property
    def failed(self) -> tuple[str, ...]:
        """The names of the projects that failed."""
        return tuple(o.project for o in self.outcomes if o.error is not None)

    @property
    def exit_code(self) -> int:
        """0 when every project was done, else the highest ``exit_code`` of the errors."""
        return max((o.error.exit_code for o in self.outcomes if o.error is not None), default=0)


Progress = Callable[[int, int, ProjectResetDue], None]


def reset_due_all(
    data_dir: str | os.PathLike[str] | DataDirProjects | None = None,
    *,
    database_url: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    clock: Clock | None = None,
    lock_timeout: float | None = None,
    progress: Progress | None = None,
) -> ResetDueAll:
    """Archive and reset every budget whose period ended, in every project of ``data_dir``.

    ``data_dir`` is a directory (default: ``BUDGETCTL_DATA_DIR``, else the platform's user data
    directory), or what :func:`~budgetctl.projects.find_projects` found, to go over exactly those
    projects; ``database_url`` (default: ``BUDGETCTL_DATABASE_URL``) goes over a database's
    projects instead. ``now``, ``dry_run``, ``clock`` and ``lock_timeout`` are each project's
    :class:`~budgetctl.ledger.Ledger`'s. ``progress(done, total, outcome)`` is called after each
    project, e.g. to draw a bar or to report a failure at once.

    Only a :class:`~budgetctl.errors.BudgetctlError` is kept as a project's outcome; anything
    else (a bug, ``KeyboardInterrupt``) propagates, the projects before it done.
    """
    found = (
        data_dir
        if isinstance(data_dir, DataDirProjects)
        else find_projects(data_dir, database_url=database_url)
    )
    total = len(found.projects)
    outcomes: list[ProjectResetDue] = []
    database = None
    if found.database_url is not None:
        from budgetctl.store.postgres.store import Database, PostgresStore

        database = Database(found.database_url)
    try:
        for number, name in enumerate(found.projects, 1):
            try:
                if database is not None:  # the database's clock, unless one is given
                    store = PostgresStore(name, database, use_database_clock=clock is None)
                    ledger = Ledger(name, store=store, clock=clock or system_clock)
                elif clock is None:
                    ledger = Ledger(name, found.data_dir, lock_timeout=lock_timeout)
                else:
                    ledger = Ledger(name, found.data_dir, clock=clock, lock_timeout=lock_timeout)
                outcome = ProjectResetDue(name, ledger.reset_due(now=now, dry_run=dry_run), None)
            except BudgetctlError as exc:  # one broken project must not stop the others
                outcome = ProjectResetDue(name, None, exc)
            outcomes.append(outcome)
            if progress is not None:
                progress(number, total, outcome)
    finally:
        if database is not None:
            database.close()
    return ResetDueAll(found, tuple(outcomes))
