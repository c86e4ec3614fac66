"""Price and project commands: models, price set/remove, projects, import-litellm."""

import sys
from typing import Annotated

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import (
    CommonOptions,
    Replace,
    arg,
    is_new_project,
    opt,
    shared_options,
)
from budgetctl.cli.views import catalog as views
from budgetctl.errors import NotFoundError

# --- options that only this module's commands take (budgetctl.cli.options: the shared ones) --
ModelName = Annotated[str, arg("MODEL", "The model name, as callers send it.", complete.models)]
ModelFilter = Annotated[
    str | None, arg("FILTER", "Only models whose name contains FILTER.", complete.models)
]
LitellmFile = Annotated[
    str,
    typer.Argument(
        metavar="FILE", help="A LiteLLM BudgetManager user_cost.json ('-' reads stdin)."
    ),
]
InputRate = Annotated[str, opt("--input", metavar="USD", help="USD per 1M prompt tokens.")]
OutputRate = Annotated[str, opt("--output", metavar="USD", help="USD per 1M completion tokens.")]
CacheRead = Annotated[
    str | None,
    opt("--cache-read", metavar="USD", help="USD per 1M cached prompt tokens (default: input)."),
]
CacheWrite = Annotated[
    str | None,
    opt("--cache-creation", metavar="USD", help="USD per 1M tokens written to the cache."),
]


@shared_options(prices=True)
def models(opts: CommonOptions, filter: ModelFilter = None) -> None:
    """The price table in USD per 1M tokens (bundled, --prices FILE and project prices).

    Example: budgetctl models claude
    """
    ledger = opts.ledger()
    found = ledger.prices(filter)
    if not found:
        raise NotFoundError(
            f"no model name contains {filter!r}; try a shorter FILTER, or 'budgetctl models'"
        )
    opts.output().show(views.models(found))


price_app = typer.Typer(
    name="price",
    help="Per-project custom prices, for private or fine-tuned models.\n\n"
    "Example: budgetctl price set my-llama --input 0.20 --output 0.60",
    no_args_is_help=True,
)


@price_app.command("set")
@shared_options(writes=True)
def price_set(
    opts: CommonOptions,
    model: ModelName,
    input_rate: InputRate,
    output_rate: OutputRate,
    cache_read: CacheRead = None,
    cache_creation: CacheWrite = None,
) -> None:
    """Set the price of MODEL in this project (wins over the bundled table and --prices).

    Example: budgetctl price set my-llama --input 0.20 --output 0.60
    """
    ledger = opts.ledger()
    new = is_new_project(ledger)
    price = ledger.set_price_per_million(
        model,
        input_rate,
        output_rate,
        cache_read=cache_read,
        cache_creation=cache_creation,
        dry_run=opts.dry_run,
    )
    report = views.price_set(price, ledger.project, opts.dry_run)
    views.new_project(report, ledger, new, opts.dry_run)
    opts.output().show(report)


@price_app.command("remove")
@shared_options(writes=True)
def price_remove(opts: CommonOptions, model: ModelName) -> None:
    """Remove the custom price of MODEL from this project.

    Example: budgetctl price remove my-llama
    """
    ledger = opts.ledger()
    ledger.remove_price(model, dry_run=opts.dry_run)
    opts.output().show(views.price_removed(model, ledger.project, opts.dry_run))


@shared_options(project=False)
def projects(opts: CommonOptions) -> None:
    """The projects in the data directory (or the database).

    Example: budgetctl projects --data-dir /srv/budgetctl
    """
    from budgetctl.projects import find_projects

    found = find_projects(opts.data_dir or None, database_url=opts.database_url)
    out = opts.output()
    out.show(views.projects(found))
    if not found.projects:  # on stderr: a script or cron at the wrong place should hear of it
        out.warn(views.no_projects(found))


@shared_options(writes=True)
def import_litellm(opts: CommonOptions, file: LitellmFile, replace: Replace = False) -> None:
    """Take over a LiteLLM BudgetManager user_cost.json: budgets, spend and cost per model.

    Example: budgetctl import-litellm user_cost.json --dry-run
    """
    from budgetctl.importer import import_litellm as run_import

    ledger = opts.ledger()
    new = is_new_project(ledger)
    out = opts.output()
    source = sys.stdin.buffer if file == "-" else file
    with out.progress("import-litellm", minimum=1000) as advance:
        result = run_import(ledger, source, replace=replace, dry_run=opts.dry_run, progress=advance)
    report = views.imported(file, result, opts.dry_run)
    views.new_project(report, ledger, new and bool(result.imported), opts.dry_run)
    out.show(report)
