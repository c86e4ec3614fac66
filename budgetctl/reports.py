"""Exports and reports: the charges of a range of history as rows, and spend totals by user,
model, day, week or month.

Spend has one meaning everywhere: the cost of a ``charge`` or ``commit`` event (docs/history.md),
summed as exact Decimals, so an export's rows add up to what ``report`` and ``show`` say, to the
last digit. Each reads one range of history with one store query (``Store.spend`` with
``since``/``until``: one pass over the JSON store's file, one indexed query on PostgreSQL), as
:class:`~budgetctl.store.spend.Spend` rows: the charges' values without typed events.

Ranges are ``since`` inclusive, ``until`` exclusive; times given without an offset are read in
``timezone``, which is also where a report's days, weeks (Monday to Sunday) and months begin.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, localcontext
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from budgetctl.core.money import EXACT, to_text
from budgetctl.core.periods import UTC, format_utc, parse_timezone
from budgetctl.errors import UsageError
from budgetctl.store import spend as spending
from budgetctl.store.spend import Spend

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
    held: Decimal | None = None  # what a commit's hold reserved (None: it was no longer open)

    @property
    def type(self) -> str:
        """``charge``, or ``commit`` (a charge that settled a hold), as the event's JSON says."""
        return "charge" if self.hold_id is None else "commit"

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
        parts = [
            '{"project":',
            _string(self.project),
            ',"type":"',
            self.type,
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
        if self.hold_id is not None:
            held = "null" if self.held is None else to_text(self.held)
            parts += (',"hold_id":', _string(self.hold_id), ',"held":', held)
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


def spend_rows(ledger: Ledger, user: str | None, span: Range) -> list[Spend]:
    """The charges and commits of ``span`` (only ``user``'s), oldest first, in one read
    (``Store.spend``: no typed events)."""
    found = spending.read(ledger.store, user, span.since, span.until)
    if user is not None and not found:
        _known(ledger, user, span)
    return found


def _known(ledger: Ledger, user: str, span: Range) -> None:
    """UnknownUserError for a user with neither a budget nor an event in ``span``."""
    if not ledger.store.history(user, 1, span.since, span.until):
        ledger.store.get(user, ledger.now())  # an unknown user: a clear error, not nothing


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
    moment = datetime.fromisoformat
    for row in spend_rows(ledger, user, span):
        text, who, cost, model, prompt, completion, cached, request_id, estimated, hold, held = row
        # "...Z" as "+00:00": Python 3.10's fromisoformat reads no Z (an aware UTC datetime)
        time = None if text is None else moment(text[:-1] + "+00:00")
        yield new(
            ExportRow,
            (time, project, who, model, cost, prompt, completion, cached, request_id, hold,
             estimated, held),
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
        with localcontext(EXACT):  # the default context's 28 digits would round a large sum
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
    """Spend of [since, until) per user, model, day, week or month (in ``timezone``): summed by
    the store where it can (PostgreSQL: ``Store.spend_totals``), else from its spend rows."""
    if by not in GROUPINGS:
        raise UsageError(f"cannot report by {by!r}: use one of {', '.join(GROUPINGS)}")
    span = parse_range(since, until, timezone)
    rows = _summed_by_store(ledger, by, user, span)
    if rows is None:
        rows = totals(spend_rows(ledger, user, span), by, timezone)
    return SpendReport(ledger.project, by, span, rows)


def totals(spent: Sequence[Spend], by: str, timezone: str) -> list[Total]:
    """``spent`` summed per key of ``by`` (see :class:`SpendReport` for the order), exactly (in
    :data:`~budgetctl.core.money.EXACT`: the default context's 28 digits round $10,000 plus a
    millionth of a millionth of a cent). A charge recorded without a time (budgetctl before 0.2)
    is in no day, week or month."""
    with localcontext(EXACT):
        if by in ("user", "model"):
            return _ranked(_grouped(spent, map(itemgetter(1 if by == "user" else 3), spent)))
        timed = [row for row in spent if row[0] is not None]
        days = _grouped(timed, map(_day_function(timezone), map(itemgetter(0), timed)))
        return _by_period(days, by)


def _summed_by_store(ledger: Ledger, by: str, user: str | None, span: Range) -> list[Total] | None:
    """The report's rows from the store's own sums (``spend_totals(key, user, since, until)``:
    per user, model, UTC day or UTC hour), or None where it has none or cannot give them."""
    read = getattr(type(ledger.store), "spend_totals", None)  # the class's: no remote lookup
    if read is None:
        return None
    zone = parse_timezone(span.timezone)
    key = by if by in ("user", "model") else "day" if zone is UTC else "hour"
    if key == "hour" and not _whole_hours(zone):
        return None  # its days begin inside UTC hours (India's, at 18:30 UTC): the rows decide
    found = read(ledger.store, key, user, span.since, span.until)
    if found is None:
        return None
    if user is not None and not found:
        _known(ledger, user, span)
    with localcontext(EXACT):
        if by in ("user", "model"):
            return _ranked(found)
        if key == "day":
            return _by_period(found, by)
        days: dict[date, list[Any]] = {}
        day_of_hour = _hours(zone)
        for hour, sums in found.items():
            day = day_of_hour(hour)
            if day is None:
                return None  # local midnight inside the hour: the rows' own times decide
            spending.add_sums(days, day, sums)
        return _by_period(days, by)


_COST, _PROMPT, _COMPLETION, _CACHED = (itemgetter(k) for k in (2, 4, 5, 6))


def _grouped(rows: Sequence[Spend], keys: Iterable[Any]) -> dict[Any, list[Any]]:
    """[charges, cost, prompt tokens, completion tokens, cached tokens] of the rows of each key
    (``keys``: one a row), in the current context. The rows are put in their groups by C code
    (``map`` of ``list.append``), not by a Python loop."""
    groups: defaultdict[Any, list[Spend]] = defaultdict(list)
    deque(map(list.append, map(groups.__getitem__, keys), rows), maxlen=0)
    return {
        key: [
            len(group),
            sum(map(_COST, group), Decimal(0)),
            sum(map(_PROMPT, group)),
            sum(map(_COMPLETION, group)),
            sum(map(_CACHED, group)),
        ]
        for key, group in groups.items()
    }


def _ranked(sums: dict[Any, list[Any]]) -> list[Total]:
    """Totals by user or model: the largest spend first (then no model last, then by name)."""
    ordered = sorted(sums, key=lambda k: (-sums[k][1], k is None, k or ""))
    return [Total(k, *sums[k]) for k in ordered]


def _by_period(days: dict[Any, list[Any]], by: str) -> list[Total]:
    """Totals per day, week or month from the sums of each day (a date, or its ISO text): every
    period from the first's to the last's, oldest first, those without a charge as zeros."""
    periods: dict[date, list[Any]] = {}  # a period's first day -> [charges, cost, tokens...]
    for key, sums in days.items():
        day = date.fromisoformat(key) if isinstance(key, str) else key
        start = day if by == "day" else _monday(day) if by == "week" else day.replace(day=1)
        spending.add_sums(periods, start, sums)
    if not periods:
        return []
    rows = []
    for start in _periods(min(periods), max(periods), by):
        acc = periods.get(start, [0, Decimal(0), 0, 0, 0])
        rows.append(Total(start.isoformat()[:7] if by == "month" else start.isoformat(), *acc))
    return rows


def _day_function(timezone: str) -> Callable[[str], str | date]:
    """The day a time (format_utc's text) falls on in ``timezone``: in UTC its first ten
    characters (``2026-11-30``); elsewhere a date, its hour's (:func:`_hours`) or, when local
    midnight falls inside that hour, its own."""
    zone = parse_timezone(timezone)
    if zone is UTC:
        return itemgetter(slice(0, 10))
    day_of_hour = _hours(zone)

    def day(text: str) -> date:
        found = day_of_hour(text[:13])
        if found is None:
            return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(zone).date()
        return found

    return day


def _hours(zone: tzinfo) -> Callable[[str], date | None]:
    """The local day of every time of a UTC hour (``2026-11-30T09``), or None when they are not
    all on one day: the day of its first and last microsecond, when those are one day at one
    offset (a zone changes its offset at most once in an hour: the tz database's changes are
    days apart). Each hour is worked out once."""
    hours: dict[str, date | None] = {}
    length = timedelta(hours=1) - timedelta(microseconds=1)

    def day(hour: str) -> date | None:
        found = hours.get(hour, _UNKNOWN)
        if found is _UNKNOWN:
            first = datetime.fromisoformat(hour + ":00:00+00:00")  # added to in UTC: no gaps
            start, end = first.astimezone(zone), (first + length).astimezone(zone)
            same = start.date() == end.date() and start.utcoffset() == end.utcoffset()
            found = hours[hour] = start.date() if same else None
        return found  # type: ignore[return-value]

    return day


def _whole_hours(zone: tzinfo) -> bool:
    """Whether ``zone`` is a whole number of hours from UTC this January and July (most are,
    so each UTC hour's times fall on one local day; :func:`_hours` checks every hour)."""
    year = datetime.now(UTC).year
    return all(
        (zone.utcoffset(datetime(year, month, 1)) or timedelta(0)) % timedelta(hours=1)
        == timedelta(0)
        for month in (1, 7)
    )


_UNKNOWN = object()


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
