"""Spend reports: ``report`` as a table with a bar per row, and its JSON."""

from __future__ import annotations

from typing import Any

from budgetctl.cli.humanize import pct, share, usd
from budgetctl.cli.report import Bar, Cell, Column, Report, Table
from budgetctl.core.periods import format_utc
from budgetctl.reports import SpendReport, Total

HEADERS = {"user": "user", "model": "model", "day": "day", "week": "week of", "month": "month"}


def _total_data(row: Total) -> dict[str, Any]:
    return {
        "charges": row.charges,
        "cost": row.cost,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
    }


def report_data(found: SpendReport) -> dict[str, Any]:
    """``report --json`` (docs/cli.md): the range, one object per row keyed by ``by``, the total."""
    span = found.span
    return {
        "project": found.project,
        "by": found.by,
        "since": span.since,
        "until": span.until,
        "timezone": span.timezone,
        "rows": [{found.by: row.key, **_total_data(row)} for row in found.rows],
        "total": _total_data(found.total),
    }


def _range_text(found: SpendReport) -> str:
    since, until = found.span.since, found.span.until
    if since is None and until is None:
        return "all time"
    if until is None:
        return f"since {format_utc(since)}" if since is not None else ""
    if since is None:
        return f"before {format_utc(until)}"
    return f"{format_utc(since)} to {format_utc(until)}"


def spend(found: SpendReport) -> Report:
    """``report``: a row per user, model or period with a bar of its share of the spend (against
    the largest row, so the chart uses its width), and the total under it."""
    report = Report(lambda: report_data(found))
    zone = f", {found.span.timezone}" if found.by in ("day", "week", "month") else ""
    where = f"project {found.project}, {_range_text(found)}{zone}"
    if not found.rows:
        return report.line(f"no charges ({where})")
    total = found.total
    largest = max(row.cost for row in found.rows)
    columns = (
        Column(HEADERS[found.by]),
        Column("charges", numeric=True),
        Column("cost", numeric=True),
        Column("share"),
        Column("tokens", numeric=True, optional=True),
    )
    rows: list[tuple[Cell, ...]] = [
        (
            row.key if row.key is not None else "(no model)",
            f"{row.charges:,}",
            usd(row.cost),
            Bar(share(row.cost, largest) if row.charges else 0.0, pct(row.cost, total.cost)),
            f"{row.prompt_tokens + row.completion_tokens:,}",
        )
        for row in found.rows
    ]
    report.add(Table(columns, rows, title=f"spend by {found.by} ({where})"))
    return report.line(f"total: {usd(total.cost)} in {total.charges:,} charges")
