"""Prices and projects: ``models``, ``price``, ``projects``, ``import-litellm``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from budgetctl.cli.humanize import usd
from budgetctl.cli.report import Cell, Column, Line, Report, Table
from budgetctl.costing.interface import Price

if TYPE_CHECKING:
    from budgetctl.importer import ImportResult
    from budgetctl.ledger import Ledger
    from budgetctl.projects import DataDirProjects


def per_million(rate: Decimal | None) -> Decimal | None:
    """A per-token rate shown per 1M tokens (a decimal shift, exact)."""
    return None if rate is None else rate.scaleb(6)


def price_data(price: Price) -> dict[str, Any]:
    return {
        "model": price.model,
        "provider": price.provider,
        "mode": price.mode,
        "source": price.source,
        "input_per_1m": per_million(price.input_per_token),
        "output_per_1m": per_million(price.output_per_token),
        "cache_read_per_1m": per_million(price.cache_read_per_token),
        "cache_creation_per_1m": per_million(price.cache_creation_per_token),
        "max_input_tokens": price.max_input_tokens,
        "max_output_tokens": price.max_output_tokens,
    }


def _rate(rate: Decimal | None) -> str:
    shown = per_million(rate)
    return "-" if shown is None else usd(shown)


def models(prices: Sequence[Price]) -> Report:
    report = Report({"models": [price_data(p) for p in prices]})
    columns = (
        Column("model"),
        Column("provider", optional=True),  # the model name says it, mostly
        Column("input $/1M", numeric=True),
        Column("output $/1M", numeric=True),
        Column("cache read $/1M", numeric=True),
        Column("source", optional=True),
    )
    rows: list[tuple[Cell, ...]] = [
        (
            p.model,
            p.provider or "-",
            _rate(p.input_per_token),
            _rate(p.output_per_token),
            _rate(p.cache_read_per_token),
            p.source,
        )
        for p in prices
    ]
    report.add(Table(columns, rows))
    return report.line(
        f"{len(prices)} model{'s' if len(prices) != 1 else ''}, USD per 1M tokens", "muted"
    )


def price_set(price: Price, project: str, dry_run: bool) -> Report:
    data = price_data(price)
    data.update(project=project, dry_run=dry_run)
    verb = "would set" if dry_run else "set"
    cache = (
        f", cache read {_rate(price.cache_read_per_token)}"
        if price.cache_read_per_token is not None
        else ""
    )
    return Report(data).line(
        f"{verb} the price of {price.model} in project {project}: input "
        f"{_rate(price.input_per_token)}, output {_rate(price.output_per_token)}{cache} "
        "per 1M tokens"
    )


def price_removed(model: str, project: str, dry_run: bool) -> Report:
    verb = "would remove" if dry_run else "removed"
    return Report({"model": model, "project": project, "removed": True, "dry_run": dry_run}).line(
        f"{verb} the custom price of {model} from project {project}"
    )


def no_projects(found: DataDirProjects) -> str:
    """The warning of a data dir (or a database) with no project in it (cron pointed at the wrong
    place)."""
    missing = not found.exists and found.database_url is None
    return f"no projects in {found.where}" + (" (the directory does not exist)" if missing else "")


def projects(found: DataDirProjects) -> Report:
    """``--json``: ``{data_dir, projects}``, or ``{database, projects}`` on a database."""
    key = "data_dir" if found.database_url is None else "database"
    if found.server is not None:
        key = "server"
    report = Report({key: found.where, "projects": list(found.projects)})
    for name in found.projects:
        report.line(name)
    return report


def new_project(report: Report, ledger: Ledger, created: bool, dry_run: bool) -> Report:
    """``report`` saying whether the write created the project: the first write to a name makes
    one, and a typo in ``-p`` or in the data dir should not pass unnoticed. ``--json`` gets
    ``created_project``: ``{project, data_dir}`` (``{project, database}`` on a database,
    ``{project, server}`` in client mode), or null."""
    server = getattr(ledger, "server", None)  # client mode (docs/server.md)
    if server is not None:
        key, where = "server", server
    elif ledger.database_url is None:
        key, where = "data_dir", str(ledger.data_dir)
    else:
        from budgetctl.store.postgres.store import redact

        key, where = "database", redact(ledger.database_url)
    if isinstance(report.data, dict):
        made = {"project": ledger.project, key: where}
        report.data["created_project"] = made if created else None
    if created:
        verb = "would create" if dry_run else "created"
        report.blocks.insert(0, Line(f"{verb} project {ledger.project} in {where}"))
    return report


def imported(path: str, result: ImportResult, dry_run: bool) -> Report:
    report = Report(
        {
            "file": path,
            "imported": list(result.imported),
            "skipped": list(result.skipped),
            "replaced": list(result.replaced),
            "dry_run": dry_run,
        }
    )
    verb = "would import" if dry_run else "imported"
    count = len(result.imported)
    shown = "stdin" if path == "-" else path
    report.line(f"{verb} {count} budget{'s' if count != 1 else ''} from {shown}")
    if result.replaced:
        many = len(result.replaced) != 1
        report.line(
            f"{'would overwrite' if dry_run else 'overwrote'} {len(result.replaced)} live "
            f"budget{'s' if many else ''} and {'their' if many else 'its'} spend: "
            + ", ".join(result.replaced)
        )
    if result.skipped:
        report.line(
            f"skipped {len(result.skipped)} that already exist (use --replace to overwrite): "
            + ", ".join(result.skipped)
        )
    return report
