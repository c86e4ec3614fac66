"""Reset commands: reset (now, by hand) and reset-due (for cron)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from budgetctl.cli import failures
from budgetctl.cli.options import (
    AsJson,
    DataDir,
    DryRun,
    Project,
    Quiet,
    SomeUsers,
    Yes,
    confirm,
    open_ledger,
)
from budgetctl.cli.output import Output
from budgetctl.cli.views import catalog
from budgetctl.cli.views import resets as views
from budgetctl.errors import BudgetctlError, UsageError

if TYPE_CHECKING:
    from budgetctl.store.interface import ResetDue


def refuse_future(moment: datetime, clock: datetime) -> None:
    """Nothing in the future is written (DESIGN.md section 14): periods closed early would stay
    closed, so a later ``--now`` is only a preview."""
    from budgetctl.core.periods import format_utc

    if moment > clock:
        raise UsageError(
            f"--now {format_utc(moment)} is later than the clock ({format_utc(clock)}): "
            "resetting ahead of time would close periods that have not ended; preview it with "
            "--dry-run"
        )


def reset(
    users: SomeUsers = None,
    all_users: Annotated[
        bool, typer.Option("--all", help="Reset every user of the project.")
    ] = False,
    yes: Yes = False,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Zero the spend of USER... (or --all) now; it is archived as a closed period. --all asks
    first on a terminal; scripts must pass --yes.

    Example: budgetctl reset alice
    """
    if bool(users) == all_users:
        raise UsageError("give the users to reset, or --all (not both)")
    ledger = open_ledger(project, data_dir)
    if all_users and not dry_run and not yes:
        count = len(ledger.reset(None, dry_run=True))  # a missing project fails before asking
        whom = "the 1 user" if count == 1 else f"all {count} users"
        confirm(f"Reset the spend of {whom} of project {project}?", "reset --all", "reset")
    done = ledger.reset(None if all_users else users, dry_run=dry_run)
    Output(as_json=as_json, quiet=quiet).show(views.reset(done, dry_run))


def reset_due(
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project in the data directory.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            metavar="TIME",
            show_default=False,
            help="Act as if it were TIME (ISO 8601): earlier than now, or later with --dry-run.",
        ),
    ] = None,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """For cron: archive and reset every budget whose period ended. Idempotent; run it often.

    Example: budgetctl reset-due --all-projects -q   (crontab: */5 * * * *)
    """
    from budgetctl.core.periods import parse_datetime
    from budgetctl.ledger import Ledger, list_projects, resolve_data_dir

    moment = parse_datetime(now) if now is not None else None
    if moment is not None and not dry_run:
        refuse_future(moment, open_ledger(project, data_dir).now())
    out = Output(as_json=as_json, quiet=quiet)
    if not all_projects:
        ledger = open_ledger(project, data_dir)
        result = ledger.reset_due(now=moment, dry_run=dry_run)
        if not quiet:  # -q prints nothing: do not format a line per reset budget for nothing
            out.show(views.reset_due([result], [], dry_run, all_projects=False))
        return
    folder = resolve_data_dir(data_dir or None)
    names = list_projects(folder)
    if not names:  # even with -q: cron pointed at the wrong place must not stay silent and green
        out.warn(catalog.no_projects(folder, folder.is_dir()))
    results: list[ResetDue] = []
    failed: list[str] = []
    worst = 0
    with out.progress("reset-due", minimum=10) as advance:
        for number, name in enumerate(names, 1):
            try:
                results.append(
                    Ledger(name, data_dir or None).reset_due(now=moment, dry_run=dry_run)
                )
            except BudgetctlError as exc:  # one broken project must not stop the others
                sys.stderr.write(f"error: project {name}: {exc.message}\n")
                failed.append(name)
                worst = max(worst, failures.exit_code(exc))
            advance(number, len(names))
    if not quiet:
        out.show(views.reset_due(results, failed, dry_run, all_projects=True))
    if worst:
        raise typer.Exit(worst)
