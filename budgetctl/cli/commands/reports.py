"""Getting the spend out: ``export`` (the charges as CSV or JSON Lines) and ``report`` (totals
by user, model, day, week or month)."""

import io
from typing import Annotated

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import CommonOptions, OptionalUser, shared_options
from budgetctl.errors import UsageError

Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        show_default=False,
        help="Only charges at TIME or later (ISO 8601: 2026-11-01, 2026-11-01T09:00+01:00).",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        show_default=False,
        help="Only charges before TIME (exclusive: --until 2026-12-01 ends with November).",
    ),
]
Zone = Annotated[
    str,
    typer.Option(
        "--tz",
        metavar="ZONE",
        autocompletion=complete.timezones,
        help="IANA time zone of --since/--until written without an offset, and where report's "
        "days, weeks and months begin.",
    ),
]
ExportFormat = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="csv (a header line, then one charge a line) or jsonl (one event a line).",
    ),
]
By = Annotated[
    str,
    typer.Option(
        "--by",
        metavar="KEY",
        help="Group the spend by user, model, day, week (Monday to Sunday) or month.",
    ),
]
AsCsv = Annotated[
    bool, typer.Option("--csv", help="Print the rows as CSV on stdout (for spreadsheets).")
]


@shared_options(as_json=False)
def export(
    opts: CommonOptions,
    user: OptionalUser = None,
    since: Since = None,
    until: Until = None,
    output_format: ExportFormat = "csv",
    tz: Zone = "UTC",
) -> None:
    """Write the charges (of USER, or of every user) to stdout as CSV or JSON Lines, exact money.

    Example: budgetctl export --since 2026-11-01 --until 2026-12-01 > november.csv
    """
    from budgetctl import reports

    if output_format not in reports.FORMATS:
        raise UsageError(f"unknown --format {output_format!r}: use csv or jsonl")
    rows = reports.export(opts.ledger(), user, since, until, timezone=tz)
    buffer = io.StringIO()
    if output_format == "csv":
        reports.write_csv(rows, buffer)
    else:
        reports.write_jsonl(rows, buffer)
    opts.output().raw(buffer.getvalue())


@shared_options()
def report(
    opts: CommonOptions,
    by: By = "user",
    since: Since = None,
    until: Until = None,
    tz: Zone = "UTC",
    as_csv: AsCsv = False,
) -> None:
    """Spend totals by user, model, day, week or month: a table with a bar chart on a terminal.

    Example: budgetctl report --by day --since 2026-11-01 --until 2026-12-01
    """
    from budgetctl import reports
    from budgetctl.cli.views import reports as views

    if as_csv and opts.as_json:
        raise UsageError("--csv and --json are two formats of the same rows: give one")
    found = reports.report(opts.ledger(), by, since, until, timezone=tz)
    if as_csv:
        opts.output().raw(reports.csv_text(found))
    else:
        opts.output().show(views.spend(found))
