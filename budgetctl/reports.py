"""Exports and reports: the charges of a range of history as rows, and spend totals by user,
model, day, week or month.

Spend has one meaning everywhere: the cost of a ``charge`` or ``commit`` event (docs/history.md),
summed as exact Decimals, so an export's rows add up to what ``report`` and ``show`` say, to the
last digit. Each reads one range of history with one store query (``Store.history`` with
``since``/``until``: one pass over the JSON store's file, one indexed query on PostgreSQL).

Ranges are ``since`` inclusive, ``until`` exclusive; times given without an offset are read in
``timezone``, which is also where a report's days, weeks (Monday to Sunday) and months begin.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from budgetctl.core import events
from budgetctl.core.money import to_text
from budgetctl.core.periods import UTC, format_utc, parse_timezone
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    from budgetctl.ledger import Ledger

TimeArg = datetime | str | float | None

# The CSV header, in this order (docs/cli.md, "budgetctl export"); a contract for scripts.
EXPORT_COLUMNS = (
    "time",
    "project",
    "user",
    "model",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "request_id",
    "hold_id",
    "estimated",
)
FORMATS = ("csv", "jsonl")
GROUPINGS = ("user", "model", "day", "week", "month")


class ExportRow(NamedTuple):
    """One charge (or commit: a charge that settled a hold) of the history, as exported."""

    time: datetime
    project: str
    user: str
    model: str | None
    cost: Decimal
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    request_id: str | None
    hold_id: str | None  # the hold a commit settled; None for a charge
    estimated: bool
    event: events.Charge | events.Commit

    def csv_cells(self) -> list[str]:
        """The row under :data:`EXPORT_COLUMNS`: exact decimal text, empty for none."""
        return [
            _utc_text(self.time),
            self.project,
            self.user,
            self.model or "",
            to_text(self.cost),
            str(self.prompt_tokens),
            str(self.completion_tokens),
            str(self.cached_tokens),
            self.request_id or "",
            self.hold_id or "",
            "true" if self.estimated else "false",
        ]

    def json_line(self) -> str:
        """The event's JSON (docs/history.md: the keys of ``to_json()``, in its order) after
        its project, on one line; money as exact JSON numbers. Written field by field with
        json's C string encoder: ``json.dumps`` of each value took 30 µs an event."""
        event = self.event
        parts = [
            '{"project":',
            _string(self.project),
            ',"type":"',
            event.type,
            '","time":"',
            _utc_text(self.time),
            '","user":',
            _string(self.user),
            ',"model":',
            "null" if self.model is None else _string(self.model),
            ',"cost":',
            to_text(self.cost),
            f',"prompt_tokens":{self.prompt_tokens:d},"completion_tokens":'
            f'{self.completion_tokens:d},"cached_tokens":{self.cached_tokens:d}',
        ]
        if self.request_id is not None:
            parts += (',"request_id":', _string(self.request_id))
        if self.estimated:
            parts.append(',"estimated":true')
        if isinstance(event, events.Commit):
            held = "null" if event.held is None else to_text(event.held)
            parts += (',"hold_id":', _string(event.hold_id), ',"held":', held)
        parts.append("}")
        return "".join(parts)


# json's C encoder of a str as a JSON string (non-ASCII kept, as the history file has it)
_string: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring


def _utc_text(moment: datetime) -> str:
    """:func:`~budgetctl.core.periods.format_utc`, quickly for a time already in UTC (every
    event's): ``isoformat`` alone, without the conversions that cost 3 µs a row of an export."""
    text = moment.isoformat()
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return format_utc(moment)


class Range(NamedTuple):
    """A range of history: ``since`` <= time < ``until`` (None: unbounded), and the zone that
    times without an offset were read in and that a report's periods follow."""

    since: datetime | None
    until: datetime | None
    timezone: str = "UTC"


def parse_range(since: TimeArg = None, until: TimeArg = None, timezone: str = "UTC") -> Range:
    """``since`` and ``until`` (datetimes, ISO 8601 text such as ``2026-11-01``, or epoch
    seconds), read in ``timezone`` when they have no offset; UsageError if ``since`` is not
    before ``until``."""
    from budgetctl.ledger import parse_time_arg

    parse_timezone(timezone)  # an unknown zone: a usage error naming it
    low = parse_time_arg(since, timezone)
    high = parse_time_arg(until, timezone)
    if low is not None and high is not None and low >= high:
        raise UsageError(
            f"--since ({format_utc(low)}) must be before --until ({format_utc(high)}): "
            "the range is since <= time < until"
        )
    return Range(low, high, timezone)


def spend_events(
    ledger: Ledger, user: str | None, span: Range
) -> list[events.Charge | events.Commit]:
    """The charges and commits of ``span`` (only ``user``'s), oldest first, in one read."""
    found = ledger.store.history(user, None, span.since, span.until)
    if user is not None and not found:
        ledger.store.get(user, ledger.now())  # an unknown user: a clear error, not nothing
    spent = [e for e in found if isinstance(e, (events.Charge, events.Commit))]
    spent.reverse()
    return spent


def export(
    ledger: Ledger,
    user: str | None = None,
    since: TimeArg = None,
    until: TimeArg = None,
    *,
    timezone: str = "UTC",
) -> Iterator[ExportRow]:
    """The charges of the project (or of ``user``) recorded in [since, until), oldest first."""
    span = parse_range(since, until, timezone)
    project = ledger.project
    new = tuple.__new__  # ExportRow(...) without NamedTuple's Python-level __new__
    for event in spend_events(ledger, user, span):
        time, who, cost, model, prompt, completion, cached, request_id, estimated = event[:9]
        hold_id = event.hold_id if isinstance(event, events.Commit) else None
        yield new(
            ExportRow,
            (time, project, who, model, cost, prompt, completion, cached, request_id, hold_id,
             estimated, event),
        )  # fmt: skip


def write_csv(rows: Iterable[ExportRow], stream: IO[str]) -> int:
    """``rows`` as CSV under the :data:`EXPORT_COLUMNS` header (``\\n`` line ends); how many."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    counted = [0]

    def cells() -> Iterator[list[str]]:
        for row in rows:
            counted[0] += 1
            yield row.csv_cells()

    writer.writerows(cells())
    return counted[0]


def write_jsonl(rows: Iterable[ExportRow], stream: IO[str]) -> int:
    """``rows`` as JSON Lines, one event a line; how many."""
    count = 0
    for row in rows:
        stream.write(row.json_line() + "\n")
        count += 1
    return count


# --- report ---------------------------------------------------------------------------------------


class Total(NamedTuple):
    """What one user, model or period spent: ``key`` is the user, the model (None: a cost given
    without one), or the period's first day (``2026-11-30``; a month: ``2026-11``)."""

    key: str | None
    charges: int
    cost: Decimal
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class SpendReport(NamedTuple):
    """Spend totals of one range of history, grouped ``by`` user, model, day, week or month.

    ``rows``: by user or model, the largest spend first; by period, oldest first, every period
    from the first charge's to the last's (those without a charge as zeros)."""

    project: str
    by: str
    span: Range
    rows: list[Total]

    @property
    def total(self) -> Total:
        return Total(
            None,
            sum(r.charges for r in self.rows),
            sum((r.cost for r in self.rows), Decimal(0)),
            sum(r.prompt_tokens for r in self.rows),
            sum(r.completion_tokens for r in self.rows),
            sum(r.cached_tokens for r in self.rows),
        )


def report(
    ledger: Ledger,
    by: str = "user",
    since: TimeArg = None,
    until: TimeArg = None,
    *,
    timezone: str = "UTC",
    user: str | None = None,
) -> SpendReport:
    """Spend of [since, until) per user, model, day, week or month (in ``timezone``)."""
    if by not in GROUPINGS:
        raise UsageError(f"cannot report by {by!r}: use one of {', '.join(GROUPINGS)}")
    span = parse_range(since, until, timezone)
    found = spend_events(ledger, user, span)
    return SpendReport(ledger.project, by, span, totals(found, by, timezone))


def totals(spent: Sequence[events.Charge | events.Commit], by: str, timezone: str) -> list[Total]:
    """``spent`` summed per key of ``by`` (see :class:`SpendReport` for the order)."""
    sums: dict[Any, list[Any]] = {}  # key -> [charges, cost, prompt, completion, cached]
    key_of = _key_function(by, timezone)
    for event in spent:
        key = key_of(event)
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0, Decimal(0), 0, 0, 0]
        acc[0] += 1
        acc[1] += event.cost
        acc[2] += event.prompt_tokens
        acc[3] += event.completion_tokens
        acc[4] += event.cached_tokens
    if by in ("user", "model"):
        ordered = sorted(sums, key=lambda k: (-sums[k][1], k is None, k or ""))
        return [Total(k, *sums[k]) for k in ordered]
    if not sums:
        return []
    rows = []
    for day in _periods(min(sums), max(sums), by):
        acc = sums.get(day, [0, Decimal(0), 0, 0, 0])
        rows.append(Total(day.isoformat()[:7] if by == "month" else day.isoformat(), *acc))
    return rows


def _key_function(by: str, timezone: str) -> Any:
    if by == "user":
        return lambda e: e.user
    if by == "model":
        return lambda e: e.model
    zone = parse_timezone(timezone)
    utc = zone is UTC or timezone == "UTC"

    def day(e: events.Charge | events.Commit) -> date:
        assert e.time is not None
        return (e.time if utc else e.time.astimezone(zone)).date()

    if by == "day":
        return day
    if by == "week":
        return lambda e: _monday(day(e))
    return lambda e: day(e).replace(day=1)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _periods(first: date, last: date, by: str) -> Iterator[date]:
    """Each period's first day from ``first``'s to ``last``'s."""
    current = first
    while current <= last:
        yield current
        if by == "day":
            current += timedelta(days=1)
        elif by == "week":
            current += timedelta(days=7)
        else:
            current = date(current.year + current.month // 12, current.month % 12 + 1, 1)


def write_report_csv(found: SpendReport, stream: IO[str]) -> None:
    """The report's rows as CSV: ``<by>,charges,cost,prompt_tokens,completion_tokens,
    cached_tokens`` (no total row: a script sums the rows)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([found.by, *TOTAL_COLUMNS])
    for row in found.rows:
        writer.writerow([row.key or "", *_cells(row)])


TOTAL_COLUMNS = ("charges", "cost", "prompt_tokens", "completion_tokens", "cached_tokens")


def _cells(row: Total) -> list[str]:
    return [
        str(row.charges),
        to_text(row.cost),
        str(row.prompt_tokens),
        str(row.completion_tokens),
        str(row.cached_tokens),
    ]


def csv_text(found: SpendReport) -> str:
    buffer = io.StringIO()
    write_report_csv(found, buffer)
    return buffer.getvalue()


__all__ = [
    "EXPORT_COLUMNS",
    "FORMATS",
    "GROUPINGS",
    "ExportRow",
    "Range",
    "SpendReport",
    "Total",
    "export",
    "parse_range",
    "report",
    "totals",
    "write_csv",
    "write_jsonl",
    "write_report_csv",
]
