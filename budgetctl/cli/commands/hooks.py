"""Hook commands: ``hook add``, ``hook list``, ``hook remove``, ``hook test`` (docs/hooks.md)."""

from typing import Annotated

import typer

from budgetctl.cli.options import CommonOptions, shared_options
from budgetctl.cli.views import hooks as views
from budgetctl.errors import UsageError

hook_app = typer.Typer(
    name="hook",
    help="Commands or URLs told about alerts, overruns and resets, at least once, with an event "
    "id to dedupe.\n\nExample: budgetctl hook add --url https://hooks.example.com/budget --on "
    "alert,over",
    no_args_is_help=True,
)

HookId = Annotated[str, typer.Argument(metavar="ID", help="The hook's id (from 'hook list').")]


@hook_app.command("add")
@shared_options(writes=True)
def add(
    opts: CommonOptions,
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="CMD", help="A shell command; the event JSON on its stdin."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", metavar="URL", help="A URL sent the event as a POST.")
    ] = None,
    on: Annotated[
        str,
        typer.Option("--on", metavar="KINDS", help="Events it is for: alert,over,reset."),
    ] = "alert,over,reset",
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Time one delivery may take."),
    ] = 10.0,
) -> None:
    """Add a hook: a command (--run) or a URL (--url) told about each event of --on.

    Example: budgetctl hook add --run 'mail -s "budget alert" ops@example.com' --on alert
    """
    if (run is None) == (url is None):
        raise UsageError("give --run CMD or --url URL (one of them)")
    ledger = opts.ledger()
    hook = ledger.add_hook(run=run, url=url, on=on, timeout=timeout, dry_run=opts.dry_run)
    opts.output().show(views.added(ledger.project, hook, opts.dry_run))


@hook_app.command("list")
@shared_options()
def list_hooks(opts: CommonOptions) -> None:
    """The project's hooks, and how many events wait to be delivered.

    Example: budgetctl hook list --json
    """
    ledger = opts.ledger()
    opts.output().show(views.listed(ledger.project, ledger.hooks(), ledger.pending_deliveries()))


@hook_app.command("remove")
@shared_options(writes=True)
def remove(opts: CommonOptions, hook_id: HookId) -> None:
    """Remove a hook (its undelivered events with it).

    Example: budgetctl hook remove k_0123456789ab
    """
    ledger = opts.ledger()
    ledger.remove_hook(hook_id, dry_run=opts.dry_run)
    opts.output().show(views.removed(ledger.project, hook_id, opts.dry_run))


@hook_app.command("test")
@shared_options()
def test(opts: CommonOptions, hook_id: HookId) -> None:
    """Send a hook a test event now (type "test"); exit 1 when it was not delivered.

    Example: budgetctl hook test k_0123456789ab
    """
    ledger = opts.ledger()
    error = ledger.test_hook(hook_id)
    opts.output().show(views.tested(ledger.project, hook_id, error))
    if error is not None:
        raise typer.Exit(1)
