"""Price and project commands: models, price set/remove, projects, import-litellm."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import (
    AsJson,
    CacheRead,
    CacheWrite,
    DataDir,
    DryRun,
    InputRate,
    ModelName,
    OutputRate,
    Prices,
    Project,
    Quiet,
    Replace,
    is_new_project,
    open_ledger,
)
from budgetctl.cli.output import Output
from budgetctl.cli.views import catalog as views
from budgetctl.errors import NotFoundError


def models(
    filter: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER",
            help="Only models whose name contains FILTER.",
            show_default=False,
            autocompletion=complete.models,
        ),
    ] = None,
    prices: Prices = None,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """The price table in USD per 1M tokens (bundled, --prices FILE and project prices).

    Example: budgetctl models claude
    """
    ledger = open_ledger(project, data_dir, prices)
    found = ledger.prices(filter)
    if not found:
        raise NotFoundError(
            f"no model name contains {filter!r}; try a shorter FILTER, or 'budgetctl models'"
        )
    Output(as_json=as_json).show(views.models(found))


price_app = typer.Typer(
    name="price",
    help="Per-project custom prices, for private or fine-tuned models.\n\n"
    "Example: budgetctl price set my-llama --input 0.20 --output 0.60",
    no_args_is_help=True,
)


@price_app.command("set")
def price_set(
    model: ModelName,
    input_rate: InputRate,
    output_rate: OutputRate,
    cache_read: CacheRead = None,
    cache_creation: CacheWrite = None,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Set the price of MODEL in this project (wins over the bundled table and --prices).

    Example: budgetctl price set my-llama --input 0.20 --output 0.60
    """
    ledger = open_ledger(project, data_dir)
    new = is_new_project(ledger)
    price = ledger.set_price_per_million(
        model,
        input_rate,
        output_rate,
        cache_read=cache_read,
        cache_creation=cache_creation,
        dry_run=dry_run,
    )
    report = views.price_set(price, ledger.project, dry_run)
    views.new_project(report, ledger.project, ledger.data_dir, new, dry_run)
    Output(as_json=as_json, quiet=quiet).show(report)


@price_app.command("remove")
def price_remove(
    model: ModelName,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Remove the custom price of MODEL from this project.

    Example: budgetctl price remove my-llama
    """
    ledger = open_ledger(project, data_dir)
    ledger.remove_price(model, dry_run=dry_run)
    Output(as_json=as_json, quiet=quiet).show(views.price_removed(model, ledger.project, dry_run))


def projects(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The projects in the data directory.

    Example: budgetctl projects --data-dir /srv/budgetctl
    """
    from budgetctl.ledger import list_projects, resolve_data_dir

    folder = resolve_data_dir(data_dir or None)
    names = list_projects(folder)
    out = Output(as_json=as_json)
    out.show(views.projects(folder, names))
    if not names:  # on stderr: a script or cron pointed at the wrong place should hear of it
        out.warn(views.no_projects(folder, folder.is_dir()))


def import_litellm(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="A LiteLLM BudgetManager user_cost.json ('-' reads stdin)."
        ),
    ],
    replace: Replace = False,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Take over a LiteLLM BudgetManager user_cost.json: budgets, spend and cost per model.

    Example: budgetctl import-litellm user_cost.json --dry-run
    """
    from budgetctl.importer import import_litellm as run_import

    ledger = open_ledger(project, data_dir)
    new = is_new_project(ledger)
    out = Output(as_json=as_json, quiet=quiet)
    source = sys.stdin.buffer if file == "-" else file
    with out.progress("import-litellm", minimum=1000) as advance:
        result = run_import(ledger, source, replace=replace, dry_run=dry_run, progress=advance)
    report = views.imported(file, result, dry_run)
    views.new_project(
        report, ledger.project, ledger.data_dir, new and bool(result.imported), dry_run
    )
    out.show(report)
