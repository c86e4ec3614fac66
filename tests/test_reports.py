"""``export`` and ``report`` (budgetctl.reports and their commands): the rows add up, to the last
digit, to the spend ``show`` and ``report`` give, on the JSON store and on PostgreSQL; the CSV
header is the documented one; ranges are since-inclusive, until-exclusive; periods are calendar
days, weeks and months in the zone asked for."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import data, fails, ok

from budgetctl import reports
from budgetctl.core import events
from budgetctl.errors import UnknownUserError, UsageError
from budgetctl.ledger import Ledger

pytest_plugins = ["helpers.cli"]

D = Decimal
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)  # a Sunday
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"

# Costs whose sum a float would get wrong, and one far below a cent.
COSTS = ["0.1", "0.2", "0.000000123456789", "3", "0.3", "1.999999999999", "0.0000001"]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(params=["json", "postgres"])
def make_ledger(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[Clock], Ledger]]:
    """Ledgers of one project on the JSON store, or on a fresh PostgreSQL schema."""
    if request.param == "json":
        yield lambda clock: Ledger("team", tmp_path / "data", clock=clock)
        return
    from tests.helpers.postgres import fresh_schema

    with fresh_schema() as url:
        yield lambda clock: Ledger("team", database_url=url, clock=clock)


def _seed(ledger: Ledger, clock: Clock) -> dict[str, Decimal]:
    """alice (monthly) and bob (weekly), charged through November at uneven hours, one charge a
    commit of a hold; what each was charged."""
    clock.moment = T0 - DAY
    ledger.create("alice", 100, duration="monthly")
    ledger.create("bob", 100, duration="weekly")
    charged = {"alice": D(0), "bob": D(0)}
    for number, cost in enumerate(COSTS * 3):
        clock.moment = T0 + number * 31 * HOUR + timedelta(microseconds=number)
        user = "alice" if number % 3 else "bob"
        model = ("gpt-4o", "claude-sonnet-4-5", None)[number % 3]
        ledger.charge_cost(user, cost, model=model, request_id=f"r{number}")
        charged[user] += D(cost)
    clock.moment += HOUR
    hold = ledger.reserve("alice", "0.5", ttl="2h").hold
    assert hold is not None
    clock.moment += HOUR
    ledger.commit(hold.hold_id, "alice", "0.123456789123", model="gpt-4o")
    charged["alice"] += D("0.123456789123")
    return charged


def test_export_adds_up_to_show_and_report_to_the_last_digit(
    make_ledger: Callable[[Clock], Ledger],
) -> None:
    clock = Clock(T0)
    ledger = make_ledger(clock)
    charged = _seed(ledger, clock)
    rows = list(reports.export(ledger))
    assert len(rows) == len(COSTS) * 3 + 1
    assert [r.time for r in rows] == sorted(r.time for r in rows)  # oldest first
    assert sum(r.cost for r in rows) == sum(charged.values())
    assert rows[-1].hold_id is not None and rows[-1].type == "commit"
    by_user = reports.report(ledger, "user")
    assert {t.key: t.cost for t in by_user.rows} == charged
    assert by_user.total.cost == sum(charged.values())
    for by in ("model", "day", "week", "month"):
        assert reports.report(ledger, by).total.cost == sum(charged.values()), by
    # show's spend is the current period's: alice's month is all of November
    clock.moment = T0 + 29 * DAY
    alice = ledger.get("alice")
    assert alice.current_cost == charged["alice"]
    exported = reports.export(ledger, "alice", since=alice.period_start)
    assert sum(r.cost for r in exported) == alice.current_cost
    bob = ledger.get("bob")
    in_week = reports.report(ledger, "user", since=bob.period_start)
    assert {t.key: t.cost for t in in_week.rows}.get("bob", D(0)) == bob.current_cost
    # and the CSV's text is those exact amounts
    buffer = io.StringIO()
    reports.write_csv(reports.export(ledger), buffer)
    parsed = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert sum(D(r["cost"]) for r in parsed) == sum(charged.values())
    assert "0.000000123456789" in {r["cost"] for r in parsed}


def test_since_is_inclusive_and_until_exclusive(make_ledger: Callable[[Clock], Ledger]) -> None:
    clock = Clock(T0 - DAY)
    ledger = make_ledger(clock)
    ledger.create("alice", 10, duration="monthly")
    moments = [T0 - timedelta(microseconds=1), T0, T0 + timedelta(microseconds=500_000), T0 + DAY]
    for number, moment in enumerate(moments):
        clock.moment = moment
        ledger.charge_cost("alice", str(number + 1))

    def costs(since: object = None, until: object = None) -> list[Decimal]:
        return [r.cost for r in reports.export(ledger, since=since, until=until)]  # type: ignore[arg-type]

    assert costs() == [1, 2, 3, 4]
    assert costs(since=T0) == [2, 3, 4]
    assert costs(until=T0) == [1]
    assert costs(since="2026-11-01", until="2026-11-02") == [2, 3]  # dates: midnight UTC
    assert costs(since="2026-11-01T00:00:00.5Z") == [3, 4]
    assert costs(until="2026-11-01T00:00:00.5Z") == [1, 2]
    assert costs(since="2026-11-02T00:00:00Z") == [4]
    # a date in another zone: midnight there (Paris is UTC+1 in November)
    paris = list(reports.export(ledger, since="2026-11-01", timezone="Europe/Paris"))
    assert [r.cost for r in paris] == [1, 2, 3, 4]
    assert reports.report(ledger, "day", until=T0 + DAY).total.cost == 6
    with pytest.raises(UsageError, match="must be before"):
        list(reports.export(ledger, since=T0, until=T0))


def test_report_periods_are_calendar_days_weeks_and_months_in_the_zone() -> None:
    clock = Clock(T0 - DAY)
    ledger = Ledger("p", clock=clock)
    ledger.create("alice", 100, duration="monthly")
    for moment, cost in [
        (datetime(2026, 10, 31, 23, 30, tzinfo=timezone.utc), "1"),  # Nov 1 00:30 in Paris
        (datetime(2026, 11, 2, 12, tzinfo=timezone.utc), "2"),  # a Monday
        (datetime(2026, 11, 5, 12, tzinfo=timezone.utc), "4"),
        (datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc), "8"),
    ]:
        clock.moment = moment
        ledger.charge_cost("alice", cost)
    clock.moment = datetime(2026, 12, 2, tzinfo=timezone.utc)

    def keys(by: str, zone: str = "UTC") -> list[tuple[str | None, Decimal]]:
        return [(t.key, t.cost) for t in reports.report(ledger, by, timezone=zone).rows]

    assert keys("month") == [("2026-10", 1), ("2026-11", 6), ("2026-12", 8)]
    assert keys("month", "Europe/Paris") == [("2026-11", 7), ("2026-12", 8)]
    assert keys("week") == [("2026-10-26", 1), ("2026-11-02", 6), ("2026-11-09", 0),
                            ("2026-11-16", 0), ("2026-11-23", 0), ("2026-11-30", 8)]  # fmt: skip
    days = keys("day")
    assert days[0] == ("2026-10-31", 1) and days[-1] == ("2026-12-01", 8)
    assert len(days) == 32 and sum(cost for _, cost in days) == 15  # the quiet days as zeros
    assert keys("user") == [("alice", 15)]
    with pytest.raises(UsageError, match="cannot report by"):
        reports.report(ledger, "year")


def test_an_unknown_user_is_an_error_and_a_deleted_one_keeps_their_export() -> None:
    ledger = Ledger("p")
    ledger.create("alice", 10)
    ledger.charge_cost("alice", "0.25")
    with pytest.raises(UnknownUserError):
        list(reports.export(ledger, "carol"))
    ledger.delete(["alice"])
    assert [r.cost for r in reports.export(ledger, "alice")] == [D("0.25")]


# --- the command line ----------------------------------------------------------------------------


def _documented_header() -> str:
    section = CLI_DOC.read_text().split("### budgetctl export", 1)[1].split("\n### ", 1)[0]
    return section.split("```csv\n", 1)[1].splitlines()[0]


def test_the_csv_header_is_the_documented_one() -> None:
    assert _documented_header() == ",".join(reports.EXPORT_COLUMNS)
    ok("create", "alice", "--budget", "5", "--duration", "monthly")
    out = ok("export").stdout
    assert out == ",".join(reports.EXPORT_COLUMNS) + "\n"  # a header even with no charge


def test_export_and_report_commands() -> None:
    ok("create", "alice", "--budget", "5", "--duration", "monthly")
    ok("create", "bob@example.com", "--budget", "5", "--duration", "weekly")
    ok("update-cost", "alice", "--cost", "0.1", "--model", "gpt-4o", "--request-id", "a,1")
    ok("update-cost", "alice", "--cost", "0.2", "--model", "gpt-4o")
    ok("update-cost", "bob@example.com", "--cost", "0.000000123456789")
    rows = list(csv.DictReader(io.StringIO(ok("export").stdout)))
    assert [(r["user"], r["cost"], r["model"], r["request_id"]) for r in rows] == [
        ("alice", "0.1", "gpt-4o", "a,1"),  # quoted by the CSV writer
        ("alice", "0.2", "gpt-4o", ""),
        ("bob@example.com", "0.000000123456789", "", ""),
    ]
    assert rows[0]["project"] == "default" and rows[0]["estimated"] == "false"
    lines = ok("export", "alice", "--format", "jsonl").stdout.splitlines()
    found = [json.loads(line, parse_float=Decimal) for line in lines]
    assert [(e["type"], e["cost"]) for e in found] == [("charge", D("0.1")), ("charge", D("0.2"))]
    assert '"cost":0.1,' in lines[0]  # an exact JSON number, not text
    shown = data("report")
    assert shown["total"]["cost"] == D("0.300000123456789")
    assert [(r["user"], r["cost"]) for r in shown["rows"]] == [
        ("alice", D("0.3")),
        ("bob@example.com", D("0.000000123456789")),
    ]
    assert data("show", "alice")["current_cost"] == shown["rows"][0]["cost"]
    table = ok("report", "--by", "model").stdout
    assert "gpt-4o" in table and "(no model)" in table and "total: " in table
    assert ok("report", "--by", "day", "--csv").stdout.startswith(
        "day,charges,cost,prompt_tokens,completion_tokens,cached_tokens\n"
    )
    assert "no charges" in ok("report", "--since", "2999-01-01").stdout
    assert "unknown --format" in fails(2, "export", "--format", "xlsx")
    assert "cannot report by" in fails(2, "report", "--by", "year")
    assert "give one" in fails(2, "report", "--csv", "--json")
    assert "must be before" in fails(2, "export", "--since", "2027-01-01", "--until", "2026-01-01")
    fails(4, "export", "carol")


@pytest.mark.parametrize(
    "event",
    [
        events.Charge(T0, "alice", D("0.1")),
        events.Charge(
            T0 + timedelta(microseconds=5), 'z"oë\\', D("1E-12"), "gpt-4o", 1, 2, 3, "r\n1", True
        ),
        events.Commit(T0, "bob", D("2.50"), None, 0, 0, 0, None, False, "h_1", None),
        events.Commit(T0, "bob", D("0"), "m", 5, 6, 7, "r", True, "h_2", D("0.300")),
    ],
)
def test_a_json_line_is_the_event_as_history_documents_it(event: events.Event) -> None:
    row = reports.ExportRow(
        event.time, "p", event.user, event.model, event.cost, event.prompt_tokens,  # type: ignore[union-attr]
        event.completion_tokens, event.cached_tokens, event.request_id,  # type: ignore[union-attr]
        getattr(event, "hold_id", None), event.estimated,  # type: ignore[union-attr]
        getattr(event, "held", None),
    )  # fmt: skip
    line = row.json_line()
    assert "\n" not in line
    expected = {"project": "p", **event.to_json()}
    for key in ("cost", "held"):
        if expected.get(key) is not None:
            expected[key] = D(expected[key])
    assert list(json.loads(line, parse_float=D)) == list(expected)
    assert json.loads(line, parse_float=D, parse_int=D) == {
        k: D(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in expected.items()
    }


@pytest.mark.parametrize("width", [120, 60, 30])
def test_the_report_on_a_terminal_has_a_bar_per_row_and_fits(width: int) -> None:
    from budgetctl.cli import terminal
    from budgetctl.cli.views import reports as views

    clock = Clock(T0)
    ledger = Ledger("p", clock=clock)
    charged = _seed(ledger, clock)
    found = reports.report(ledger, "user")
    text = terminal.render(views.spend(found).blocks, width, colour=False)
    assert "alice" in text and "bob" in text and "total: " in text
    if width >= 60:
        assert "█" in text  # the chart: a bar per row
        assert all(len(line) <= width for line in text.splitlines())
    shares = [row.cost for row in found.rows]
    assert shares == sorted(shares, reverse=True) and sum(shares) == sum(charged.values())
