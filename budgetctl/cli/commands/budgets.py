"""Budget commands: create, set, show, delete, cap."""

from typing import Annotated

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import (
    CommonOptions,
    OptionalUser,
    Replace,
    User,
    Yes,
    alert_value,
    arg,
    confirm,
    is_new_project,
    opt,
    shared_options,
)
from budgetctl.cli.views import budgets as views
from budgetctl.cli.views import catalog
from budgetctl.errors import UsageError

# --- options that only this module's commands take (budgetctl.cli.options: the shared ones) --
Users = Annotated[list[str], arg("USER", "One or more users.", complete.users)]
Budget = Annotated[str | None, opt("--budget", "-b", metavar="USD", help="Budget in USD.")]
NewBudget = Annotated[str, opt("--budget", "-b", metavar="USD", help="Budget in USD.")]
Duration = Annotated[
    str | None,
    opt(
        "--duration",
        "-d",
        metavar="D",
        help="daily, weekly, monthly, yearly, <N>h, <N>d, <N>w, <N>mo, <N>y, or none (lifetime).",
        completion=complete.durations,
    ),
]
NewDuration = Annotated[
    str | None,
    opt(
        "--duration",
        "-d",
        metavar="D",
        help="Required: daily, weekly, monthly, yearly, <N>h, <N>d, <N>w, <N>mo, <N>y, or none "
        "(a lifetime budget, never reset).",
        completion=complete.durations,
    ),
]
Start = Annotated[
    str | None,
    opt(
        "--start",
        metavar="TIME",
        help="Anchor the periods at this time (ISO 8601, e.g. 2026-01-15), even in the past.",
    ),
]
TimeZone = Annotated[
    str | None,
    opt(
        "--tz",
        metavar="ZONE",
        help="IANA time zone of the period boundaries (default UTC).",
        completion=complete.timezones,
    ),
]
AlertAt = Annotated[
    str | None,
    opt(
        "--alert-at",
        metavar="PCT[,PCT...]",
        help="Alert thresholds in % of the budget (80, or 50,80,100); 'none' clears.",
    ),
]
ClearCap = Annotated[bool, typer.Option("--clear", help="Remove the project cap.")]


@shared_options(writes=True)
def create(
    opts: CommonOptions,
    user: User,
    budget: NewBudget,
    duration: NewDuration = None,
    start: Start = None,
    tz: TimeZone = None,
    alert_at: AlertAt = None,
    replace: Replace = False,
) -> None:
    """Create a budget for USER (exit 1 if there is one: use 'set', or --replace).

    Example: budgetctl create alice --budget 25 --duration monthly --tz Europe/Paris
    """
    if duration is None:
        # No silent default: a forgotten --duration would make a budget that never resets.
        raise UsageError(
            "create needs --duration D: daily, weekly, monthly, yearly, <N>h, <N>d, <N>w, <N>mo, "
            "<N>y, or 'none' for a lifetime budget that never resets"
        )
    ledger = opts.ledger()
    new = is_new_project(ledger)
    created = ledger.create(
        user,
        budget,
        duration=duration,
        start=start,
        timezone=tz or "UTC",
        alert_at=alert_value(alert_at),
        replace=replace,
        dry_run=opts.dry_run,
    )
    report = views.saved(created, "create", ledger.now(), opts.dry_run)
    catalog.new_project(report, ledger, new, opts.dry_run)
    opts.output().show(report)


@shared_options(writes=True)
def set_budget(
    opts: CommonOptions,
    user: User,
    budget: Budget = None,
    duration: Duration = None,
    start: Start = None,
    tz: TimeZone = None,
    alert_at: AlertAt = None,
) -> None:
    """Change USER's budget, duration, start, time zone or alert threshold; the spend is kept.

    Example: budgetctl set alice --budget 50 --alert-at 80
    """
    from budgetctl.ledger import KEEP

    if budget is None and duration is None and start is None and tz is None and alert_at is None:
        raise UsageError(
            "nothing to change: give --budget, --duration, --start, --tz or --alert-at"
        )
    ledger = opts.ledger()
    changed = ledger.set(
        user,
        budget=budget,
        duration=KEEP if duration is None else duration,
        start=KEEP if start is None else start,
        timezone=tz,
        alert_at=KEEP if alert_at is None else alert_value(alert_at),
        dry_run=opts.dry_run,
    )
    opts.output().show(views.saved(changed, "update", ledger.now(), opts.dry_run))


@shared_options()
def show(
    opts: CommonOptions,
    user: OptionalUser = None,
) -> None:
    """Show every budget as a table, or USER with cost per model and recent periods.

    Example: budgetctl show alice
    """
    ledger = opts.ledger()
    out = opts.output()
    if user is None:
        out.show(views.show_all(ledger.view(), ledger.now()))
    else:
        found = ledger.standing(user)
        out.show(views.show_user(found.budget, ledger.now(), ledger.project, found.reserved))


@shared_options(writes=True)
def delete(
    opts: CommonOptions,
    users: Users,
    yes: Yes = False,
) -> None:
    """Delete the budgets of USER... (asks first on a terminal; scripts must pass --yes).

    Example: budgetctl delete alice bob --yes
    """
    ledger = opts.ledger()
    ledger.delete(users, dry_run=True)  # unknown users fail here, before any question
    if not opts.dry_run and not yes:
        confirm(
            f"Delete the budgets of {', '.join(users)} in project {opts.project}?",
            "delete",
            "deleted",
        )
    done = ledger.delete(users, dry_run=opts.dry_run)
    opts.output().show(views.deleted(done, opts.dry_run))


@shared_options(writes=True)
def cap(
    opts: CommonOptions,
    budget: Budget = None,
    duration: Duration = None,
    tz: TimeZone = None,
    alert_at: AlertAt = None,
    clear: ClearCap = False,
) -> None:
    """Show or set the project cap: a budget for the total spend of all users of the project.

    Example: budgetctl cap --budget 500 --duration monthly --alert-at 80,100
    """
    from budgetctl.ledger import KEEP

    ledger = opts.ledger()
    out = opts.output()
    changing = any(v is not None for v in (budget, duration, tz, alert_at))
    if clear:
        if changing:
            raise UsageError(
                "--clear cannot be combined with --budget, --duration, --tz or --alert-at"
            )
        out.show(
            views.cap_cleared(ledger.project, ledger.clear_cap(dry_run=opts.dry_run), opts.dry_run)
        )
    elif changing:
        new = is_new_project(ledger)
        result = ledger.set_cap(
            budget,
            duration=KEEP if duration is None else duration,
            timezone=tz,
            alert_at=KEEP if alert_at is None else alert_value(alert_at),
            dry_run=opts.dry_run,
        )
        report = views.cap(ledger.project, result, ledger.now(), changed=True, dry_run=opts.dry_run)
        catalog.new_project(report, ledger, new, opts.dry_run)
        out.show(report)
    else:
        out.show(views.cap(ledger.project, ledger.cap(), ledger.now()))
