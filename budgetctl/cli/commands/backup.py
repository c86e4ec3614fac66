"""Backups and moves: ``dump`` a whole project as JSON Lines, ``restore`` one."""

import sys
from typing import Annotated

import typer

from budgetctl.cli.options import (
    CommonOptions,
    flag,
    shared_options,
)
from budgetctl.cli.views import backup as views
from budgetctl.cli.views.catalog import new_project

# --- options that only this module's commands take (budgetctl.cli.options: the shared ones) --
DumpFile = Annotated[
    str,
    typer.Argument(metavar="FILE", help="A dump written by 'budgetctl dump' ('-' reads stdin)."),
]
ReplaceProject = Annotated[
    bool,
    flag("--replace", help="Replace the project if it exists (its budgets, prices and history)."),
]


@shared_options(as_json=False)
def dump(opts: CommonOptions) -> None:
    """Write the whole project (budgets, cap, prices, holds, history) to stdout as JSON Lines.

    Example: budgetctl dump -p team > team.jsonl
    """
    from budgetctl import dump as dumping

    dumping.dump(opts.ledger(), sys.stdout.buffer)


@shared_options(writes=True)
def restore(opts: CommonOptions, file: DumpFile, replace: ReplaceProject = False) -> None:
    """Load a dump into the project, in one transaction (refused if it exists, unless --replace).

    Example: budgetctl restore team.jsonl -p team
    """
    from budgetctl import dump as dumping

    ledger = opts.ledger()
    source = sys.stdin.buffer if file == "-" else file
    result = dumping.restore(ledger, source, replace=replace, dry_run=opts.dry_run)
    report = views.restored(file, result, opts.dry_run)
    new_project(report, ledger, not result.replaced, opts.dry_run)
    opts.output().show(report)
