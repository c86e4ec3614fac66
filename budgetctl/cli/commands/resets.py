"""Reset commands: reset (now, by hand) and reset-due (for cron)."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import (
    CommonOptions,
    Yes,
    arg,
    confirm,
    opt,
    shared_options,
)
from budgetctl.cli.views import catalog
from budgetctl.cli.views import resets as views
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    from budgetctl.maintenance import ProjectResetDue


# --- options that only this module's commands take (budgetctl.cli.options: the shared ones) --
SomeUsers = Annotated[list[str] | None, arg("USER", "One or more users.", complete.users)]
AllUsers = Annotated[bool, typer.Option("--all", help="Reset every user of the project.")]
AllProjects = Annotated[
    bool, typer.Option("--all-projects", help="Every project in the data directory (or database).")
]
Now = Annotated[
    str | None,
    opt(
        "--now",
        metavar="TIME",
        help="Act as if it were TIME (ISO 8601): earlier than now, or later with --dry-run.",
    ),
]


@shared_options(writes=True)
def reset(
    opts: CommonOptions,
    users: SomeUsers = None,
    all_users: AllUsers = False,
    yes: Yes = False,
) -> None:
    """Zero the spend of USER... (or --all) now; it is archived as a closed period. --all asks
    first on a terminal; scripts must pass --yes.

    Example: budgetctl reset alice
    """
    if bool(users) == all_users:
        raise UsageError("give the users to reset, or --all (not both)")
    ledger = opts.ledger()
    if all_users and not opts.dry_run and not yes:
        count = len(ledger.reset(None, dry_run=True))  # a missing project fails before asking
        whom = "the 1 user" if count == 1 else f"all {count} users"
        confirm(f"Reset the spend of {whom} of project {opts.project}?", "reset --all", "reset")
    done = ledger.reset(None if all_users else users, dry_run=opts.dry_run)
    opts.output().show(views.reset(done, opts.dry_run))


@shared_options(writes=True)
def reset_due(
    opts: CommonOptions,
    all_projects: AllProjects = False,
    now: Now = None,
) -> None:
    """For cron: archive and reset every budget whose period ended. Idempotent; run it often.

    Example: budgetctl reset-due --all-projects -q   (crontab: */5 * * * *)
    """
    from budgetctl.core.periods import parse_datetime

    moment = parse_datetime(now) if now is not None else None
    if moment is not None and not opts.dry_run:
        from budgetctl.maintenance import refuse_future

        refuse_future(moment, opts.ledger().now())
    out = opts.output()
    if not all_projects:
        result = opts.ledger().reset_due(now=moment, dry_run=opts.dry_run)
        if not opts.quiet:  # -q prints nothing: do not format a line per reset budget for nothing
            out.show(views.reset_due([result], [], opts.dry_run, all_projects=False))
        return
    from budgetctl.maintenance import reset_due_all
    from budgetctl.projects import find_projects

    found = find_projects(opts.data_dir or None, database_url=opts.database_url)
    if not found.projects:  # even with -q: cron at the wrong place must not stay silent and green
        out.warn(catalog.no_projects(found))
    with out.progress("reset-due", minimum=10) as advance:

        def each(number: int, total: int, outcome: "ProjectResetDue") -> None:
            if outcome.error is not None:  # said at once; the other projects go on
                sys.stderr.write(f"error: project {outcome.project}: {outcome.error.message}\n")
            advance(number, total)

        done = reset_due_all(found, now=moment, dry_run=opts.dry_run, progress=each)
    if not opts.quiet:
        out.show(views.reset_due(done.results, done.failed, opts.dry_run, all_projects=True))
    if done.exit_code:
        raise typer.Exit(done.exit_code)
