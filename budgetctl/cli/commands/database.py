"""Database commands: ``db migrate`` and ``db status`` (the PostgreSQL store's schema)."""

import typer

from budgetctl.cli.options import CommonOptions, shared_options
from budgetctl.cli.views import database as views

db_app = typer.Typer(
    name="db",
    help="The PostgreSQL database of --database-url: create or upgrade its tables, see their "
    "version.\n\nExample: budgetctl db migrate --database-url postgresql://budgetctl@db/budgets",
    no_args_is_help=True,
)


@db_app.command("migrate")
@shared_options(project=False, data_dir=False, quiet=True)
def migrate(opts: CommonOptions) -> None:
    """Create or upgrade budgetctl's tables in the database (safe to run again).

    Run it after installing or upgrading budgetctl, from one host or several at once.

    Example: budgetctl db migrate --database-url postgresql://budgetctl@db.internal/budgets
    """
    from budgetctl.database import database_url
    from budgetctl.database import migrate as run_migrate

    done = run_migrate(database_url(opts.database_url, command="budgetctl db migrate"))
    opts.output().show(views.migrated(done))


@db_app.command("status")
@shared_options(project=False, data_dir=False)
def status(opts: CommonOptions) -> None:
    """The database's schema version, and whether 'budgetctl db migrate' is needed.

    Example: budgetctl db status --json
    """
    from budgetctl.database import database_url
    from budgetctl.database import status as read_status

    found = read_status(database_url(opts.database_url, command="budgetctl db status"))
    opts.output().show(views.status(found))
