"""The spend read (``Store.spend``, :mod:`budgetctl.store.spend`) that ``export`` and ``report``
use, against the typed path it replaces (``history()``'s events): the same rows, to the last digit,
on the JSON store and on PostgreSQL, whatever the history holds (refunds, resets, deleted users,
commits of holds, request ids charged twice, events of every other kind, times without a zone's
whole hours, range bounds inside a second), and the same errors for a history that is not right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, localcontext
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from budgetctl import reports
from budgetctl.core import events as ev
from budgetctl.core import rules
from budgetctl.core.money import EXACT, add
from budgetctl.core.periods import format_utc, parse_duration
from budgetctl.errors import CorruptStateError, UnknownUserError
from budgetctl.ledger import Ledger
from budgetctl.store import history, snapshot
from budgetctl.store import spend as sp
from budgetctl.store.interface import ChargeRequest, Store
from budgetctl.store.json_store import JsonStore

D = Decimal
UTC = timezone.utc
# 30 minutes before Europe's clocks go forward (2026-03-29 01:00 UTC), 90 before midnight in Paris
T0 = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
USERS = ("alice", "zoë", 'q"uote', "back\\slash", "tab\tname", "bob")
ZONES = (
    "UTC",
    "Europe/Paris",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Apia",
)


def _crafted(timeless: bool = True) -> list[ev.Event]:
    """A history of every kind of event, oldest first (as a restore writes it): charges that
    float sums get wrong, refunds (negative costs), a cost of 0, costs with 30 digits, every
    model and request id shape, microseconds, times that go backwards, a charge without a time
    (budgetctl before 0.2), commits with and without what their hold held, and the other kinds
    between them."""
    found: list[ev.Event] = [
        ev.Create(T0 - MINUTE, user, D(100), "monthly", D(0)) for user in USERS
    ]
    found.append(ev.CapSet(T0 - MINUTE, D(500), "monthly", "UTC", D(0)))
    costs = ["0.1", "0.2", "0.000000123456789", "-0.3", "0", "3", "123456789012345.123456789012345"]
    models = [None, "gpt-4o", "", "modèle", 'm"odel', "claude\\x"]
    for number in range(70):
        moment = T0 + number * 7 * MINUTE + timedelta(microseconds=number * 99_991 % 1_000_000)
        if number == 40:
            moment -= timedelta(hours=5)  # restored out of order
        user = USERS[number % len(USERS)]
        cost = D(costs[number % len(costs)])
        model = models[number % len(models)]
        request_id = (None, f"r{number}", "", "r\n1", "ré")[number % 5]
        tokens = (number * 37 % 2000, number % 3, 10**18 if number == 13 else number % 2)
        if number % 9 == 4:
            held = None if number % 2 else D("0.50")
            found.append(ev.HoldPlaced(moment - MINUTE, f"h{number}", user, D("0.5"), moment))
            found.append(
                ev.Commit(moment, user, cost, model, *tokens, request_id, False, f"h{number}", held)
            )
        else:
            found.append(ev.Charge(moment, user, cost, model, *tokens, request_id, number % 4 == 1))
        if number % 11 == 5:
            found.append(ev.Alert(moment, user, D(50), D(51), D(100), T0))
            found.append(ev.Over(moment, None, D(501), D(500), T0))
        if number == 30:
            start, end = T0 - MINUTE, moment
            found.append(ev.PeriodClosed(moment, "alice", start, end, D(5), D(100), "reset"))
            found.append(ev.Delete(moment, "bob"))
        if number == 50:
            found.append(ev.HoldReleased(moment, "h1", "alice", D("0.5"), True))
            found.append(ev.CapClear(moment))
            found.append(ev.Set(moment, "alice", D(200), "weekly", "Europe/Paris"))
    if timeless:
        found.append(ev.Charge(None, "alice", D("0.07")))  # from before 0.2: no time
    found.append(ev.Charge(T0 + timedelta(days=1), "carol", D("1.5"), "gpt-4o", 1, 2, 3))
    return found


@pytest.fixture(params=["json", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Projects on the JSON store, or on a fresh PostgreSQL schema."""
    if request.param == "json":
        names = iter(range(1000))
        yield lambda: JsonStore(f"p{next(names)}", tmp_path / "data", lock_timeout=10)
        return
    from budgetctl.store.postgres.store import Database, PostgresStore
    from tests.helpers.postgres import fresh_schema

    with fresh_schema() as url:
        database = Database(url)
        names = iter(range(1000))
        yield lambda: PostgresStore(f"p{next(names)}", database, use_database_clock=False)
        database.close()


def _restored(store: Store, found: list[ev.Event]) -> Store:
    named = [user for user in USERS if user.isprintable() and user != "bob"]  # bob was deleted
    budgets = [rules.new_budget(user, D(100), T0 - MINUTE) for user in named]
    snap = snapshot.snapshot(store.project, budgets, None, [], [], found)
    store.restore(snap, T0 + timedelta(days=2))
    return store


def _typed(store: Store, user: str | None, since: datetime | None, until: datetime | None) -> list:
    return sp.from_events(reversed(store.history(user, None, since, until)))


BOUNDS = [
    (None, None),
    (T0 + 7 * MINUTE, None),  # on a charge's second, before its microseconds
    (None, T0 + 14 * MINUTE + timedelta(microseconds=199_982)),  # a charge's exact time
    (T0 + 14 * MINUTE + timedelta(microseconds=199_982), None),
    (T0 - timedelta(hours=6), T0 + timedelta(hours=2)),
    (T0 + timedelta(days=3), None),
]


@pytest.mark.parametrize(("since", "until"), BOUNDS)
@pytest.mark.parametrize("user", [None, "alice", "zoë", 'q"uote', "bob", "carol", "nobody"])
def test_the_spend_read_is_the_typed_one(
    make_store: Callable[[], Store],
    user: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    store = _restored(make_store(), _crafted())
    found = store.spend(user, since, until)
    assert found == _typed(store, user, since, until)
    assert [row.cost for row in found] == [
        e.cost  # type: ignore[union-attr]
        for e in reversed(store.history(user, None, since, until))
        if ev.spend(e) is not None
    ]


def test_every_kind_of_row_is_read(make_store: Callable[[], Store]) -> None:
    store = _restored(make_store(), _crafted())
    found = store.spend()
    assert len(found) == 72
    assert {row.type for row in found} == {"charge", "commit"}
    assert D("-0.3") in {row.cost for row in found}  # refunds are spend too, subtracted
    assert {row.model for row in found} >= {None, "", "modèle", 'm"odel', "claude\\x"}
    assert {row.request_id for row in found} >= {None, "", "r\n1", "ré"}
    assert {row.held for row in found if row.type == "commit"} == {None, D("0.50")}
    assert any(row.time is None for row in found)
    assert add(*(row.cost for row in found)) == add(
        *(e.cost for e in store.history() if isinstance(e, (ev.Charge, ev.Commit)))
    )


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("by", reports.GROUPINGS)
@pytest.mark.parametrize("timeless", [False, True])
def test_report_totals_are_the_typed_ones(
    make_store: Callable[[], Store], by: str, zone: str, timeless: bool
) -> None:
    """Whoever sums (PostgreSQL's GROUP BY, or the rows in Python: a row without a time, or
    local midnight inside a UTC hour, makes PostgreSQL hand over to the rows), the totals are
    those of the typed path, and of one row at a time."""
    store = _restored(make_store(), _crafted(timeless))
    ledger = Ledger(store=store, clock=lambda: T0 + timedelta(days=2))
    for since, until in BOUNDS:
        expected = reports.totals(_typed(store, None, since, until), by, zone)
        assert reports.report(ledger, by, since, until, timezone=zone).rows == expected
        assert expected == _reference_totals(_typed(store, None, since, until), by, zone)
        for user in ("alice", 'q"uote', "bob"):
            expected = reports.totals(_typed(store, user, since, until), by, zone)
            try:
                found = reports.report(ledger, by, since, until, timezone=zone, user=user)
            except UnknownUserError:  # deleted, and nothing of theirs in the range
                assert user == "bob" and not store.history(user, 1, since, until)
                continue
            assert found.rows == expected
    # both stores sum (the JSON store from its file's text, PostgreSQL in SQL), except that
    # PostgreSQL hands a row without a time over to the rows
    database = not isinstance(store, JsonStore)
    assert (store.spend_totals("user") is None) == (database and timeless)  # type: ignore[attr-defined]
    assert (store.spend_totals("hour") is None) == (database and timeless)  # type: ignore[attr-defined]


def _reference_totals(rows: list[sp.Spend], by: str, zone: str) -> list[reports.Total]:
    """The totals, one row at a time, each time converted on its own: what the report's
    grouping (text keys in UTC, one conversion an hour elsewhere) must equal."""
    with localcontext(EXACT):
        return _reference_sums(rows, by, zone)


def _reference_sums(rows: list[sp.Spend], by: str, zone: str) -> list[reports.Total]:
    sums: dict[object, list[object]] = {}
    for row in rows:
        if by in ("user", "model"):
            key: object = row.user if by == "user" else row.model
        elif row.time is None:
            continue
        else:
            day = row.moment.astimezone(ZoneInfo(zone)).date()  # type: ignore[union-attr]
            if by == "week":
                day -= timedelta(days=day.weekday())
            elif by == "month":
                day = day.replace(day=1)
            key = day
        acc = sums.setdefault(key, [0, D(0), 0, 0, 0])
        for position, value in enumerate((1, row.cost, *row[4:7])):
            acc[position] += value  # type: ignore[operator]
    if by in ("user", "model"):
        order = sorted(sums, key=lambda k: (-sums[k][1], k is None, k or ""))  # type: ignore
        return [reports.Total(k, *sums[k]) for k in order]  # type: ignore[arg-type]
    if not sums:
        return []
    first, last = min(sums), max(sums)  # type: ignore[type-var]
    found, day = [], first
    while day <= last:  # type: ignore[operator]
        acc = sums.get(day, [0, D(0), 0, 0, 0])
        text = day.isoformat()[:7] if by == "month" else day.isoformat()  # type: ignore[union-attr]
        found.append(reports.Total(text, *acc))  # type: ignore[arg-type]
        if by == "month":
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)  # type: ignore
        else:
            day += timedelta(days=7 if by == "week" else 1)  # type: ignore[operator]
    return found


@pytest.mark.parametrize("zone", [*ZONES, "Australia/Lord_Howe", "America/New_York"])
def test_a_day_in_a_zone_is_the_time_converted_on_its_own(zone: str) -> None:
    """Every minute of two days around each of the zone's 2026 offset changes, and every hour
    boundary's last microsecond: the day the report puts a time in is its own local day."""
    zone_info = ZoneInfo(zone)
    changes = [
        moment
        for moment in (
            datetime(2026, 1, 1, tzinfo=UTC) + k * timedelta(hours=1) for k in range(8760)
        )
        if zone_info.utcoffset(moment) != zone_info.utcoffset(moment - timedelta(hours=1))
    ]
    day_of = reports._day_function(zone)
    for change in changes or [datetime(2026, 6, 1, tzinfo=UTC)]:
        for step in range(-24 * 60, 24 * 60):
            for moment in (
                change + step * MINUTE,
                change + step * MINUTE - timedelta(microseconds=1),
            ):
                text = format_utc(moment)
                expected = moment.astimezone(zone_info).date()
                got = day_of(text)
                assert (date.fromisoformat(got) if isinstance(got, str) else got) == expected, text


class _Jump(tzinfo):
    """+00:30 until 2026-06-01 22:45 UTC, then +01:30: local midnight passes inside a UTC hour,
    at an offset change (its wall clock jumps from 23:15 to 00:15)."""

    CHANGE = datetime(2026, 6, 1, 22, 45)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        wall = (dt or datetime.min).replace(tzinfo=None)
        # the wall times the jump skips (23:15 to 00:15) read at the old offset
        return timedelta(minutes=30 if wall < self.CHANGE + timedelta(minutes=90) else 90)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def fromutc(self, dt: datetime) -> datetime:
        moment = dt.replace(tzinfo=None)
        shift = timedelta(minutes=30 if moment < self.CHANGE else 90)
        return (moment + shift).replace(tzinfo=self)


def test_an_hour_split_by_an_offset_change_at_midnight_is_on_no_one_day() -> None:
    day_of_hour = reports._hours(_Jump())
    assert day_of_hour("2026-06-01T21") == date(2026, 6, 1)
    assert day_of_hour("2026-06-01T22") is None  # 22:30 local on the 1st, then 00:15 on the 2nd
    assert day_of_hour("2026-06-01T23") == date(2026, 6, 2)


# --- the text a store keeps -------------------------------------------------------------------


def _line(**changes: object) -> str:
    raw = ev.Charge(T0, "alice", D("0.25"), "gpt-4o", 10, 5, 0, "r1").to_json()
    raw.update(changes)
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)


def _typed_text(text: str) -> list[sp.Spend] | None:
    """What the typed path reads from ``text``; None when it says a line is wrong."""
    try:
        found = [ev.from_json(json.loads(line)) for line in text.splitlines()]
    except (ValueError, ev.EventError):
        return None
    return sp.from_events(found)


SHAPES = [
    _line(),
    _line(time="2026-03-28T22:30:00.5Z"),  # not format_utc's (6 digits) but read all the same
    _line(time="2026-03-28T22:30:00+00:00"),
    _line(time="2026-03-28 22:30:00Z"),
    _line(time="2024-02-29T10:00:00Z"),
    _line(time="2026-02-29T10:00:00Z"),  # no such day: the typed path refuses it
    _line(time="2026-04-31T10:00:00Z"),
    _line(time="0000-01-01T10:00:00Z"),
    _line(time="2026-01-01T24:00:00Z"),
    _line(time=None),
    _line(cost=3),  # an amount as a JSON number
    _line(cost="1e-3"),
    _line(cost="1_000"),
    _line(cost=" 1"),
    _line(cost="NaN"),
    _line(cost="-0.000000000000000001"),
    _line(cost="abc"),
    _line(cost=0.5),
    _line(model=None),
    _line(model=""),
    _line(user=""),
    _line(user="zo\u00eb"),
    _line(request_id=None),
    _line(request_id=""),
    _line(estimated=False),
    _line(estimated=True),
    _line(prompt_tokens=-1),
    _line(prompt_tokens=True),
    _line(prompt_tokens=10**30),
    _line(hold_id="h1"),  # a charge with a commit's key: still a charge
    _line(extra="x"),
    json.dumps(ev.Charge(T0, "alice", D("0.25")).to_json()),  # spaces, non-ASCII escaped
    json.dumps(ev.Charge(T0, "zoë", D("0.25")).to_json(), separators=(",", ":")),
    _line().replace('"user":"alice"', '"user":"al\\u0069ce"'),
    _line().replace('"user":"alice"', '"user":"al\tice"'),  # a raw tab: not JSON
    _line().replace('"user":"alice"', '"user":"al\x7fice"'),  # a raw DEL: JSON
    _line().replace('"prompt_tokens":10', '"prompt_tokens":010'),
    _line().replace('"cost":"0.25"', '"cost":"0.25","cost":"9"'),
    _line().replace('{"type":"charge",', '{"type":"charge","type":"charge",'),
    _line()[:-1],  # cut short
    _line() + " ",
    _line() + "\r",
    _line().replace('"type":"charge"', '"type":"commit"')[:-1] + ',"hold_id":"h","held":null}',
    _line().replace('"type":"charge"', '"type":"commit"')[:-1] + ',"hold_id":"h","held":"0.3"}',
    _line().replace('"type":"charge"', '"type":"commit"')[:-1] + ',"hold_id":"h"}',
    _line().replace('"type":"charge"', '"type":"commit"')[:-1] + ',"hold_id":"","held":null}',
    _line().replace('"type":"charge"', '"type":"hold"'),
    json.dumps(ev.Delete(T0, "alice").to_json()),
    "",
    "[]",
    "{}",
    '{"type":"charge"}',
]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_line_in_any_shape_is_read_as_the_typed_path_reads_it(shape: str) -> None:
    plain = _line(user="bob")
    text = "\n".join([plain, shape, plain])
    assert sp.parse(text) == _typed_text(text), shape


def test_lines_in_many_chunks_and_a_newline_after_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sp, "_CHUNK", 150)
    lines = [
        _line(user=f"u{k}", cost=str(k))
        if k % 3
        else json.dumps({"type": "cap-clear", "time": None})
        for k in range(40)
    ]
    text = "\n".join(lines)
    assert sp.parse(text) == sp.parse(text + "\n") == _typed_text(text)
    assert len(sp.parse(text) or []) == 26
    assert sp.parse("") == sp.parse("\n") == []


@pytest.mark.parametrize("key", ["user", "model", "day", "hour"])
def test_sums_of_the_text_are_the_sums_of_its_rows(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """In chunks of a few lines, some read the general way (a quote in a name, a charge without
    a time, other events): only the user's, only the range's, as their rows add up."""
    monkeypatch.setattr(sp, "_CHUNK", 700)
    found = _crafted()
    text = "\n".join(json.dumps(e.to_json(), ensure_ascii=False) for e in found)
    rows = sp.parse(text)
    assert rows == sp.from_events(found)
    index = {"user": 1, "model": 3}.get(key)
    for user in (None, "alice", 'q"uote', "nobody"):
        for since, until in BOUNDS:
            span = sp.TimeRange(since, until) if since or until else None
            expected: dict[object, list[object]] = {}
            with localcontext(EXACT):
                for row in sp.in_range(rows, since, until):
                    if user is not None and row.user != user:
                        continue
                    if index is not None:
                        grouped: object = row[index]
                    elif row.time is None:
                        continue
                    else:
                        grouped = row.time[: 10 if key == "day" else 13]
                    sp.add_sums(expected, grouped, [1, row.cost, *row[4:7]])
            assert sp.sums(text, key, user, span) == expected, (user, since, until)


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.spend(),
        lambda s: s.spend("alice"),
        lambda s: s.spend(None, T0, None),
    ],
)
def test_a_corrupt_history_is_named_as_the_typed_read_names_it(
    tmp_path: Path, read: Callable[[JsonStore], object]
) -> None:
    store = JsonStore("p", tmp_path, lock_timeout=5)
    store.create(rules.new_budget("alice", D(100), T0 - MINUTE, duration=parse_duration("monthly")))
    for number in range(6):
        store.charge(ChargeRequest("alice", D(number + 1)), T0 + number * MINUTE)
    path = store.history_path
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"cost":"3"', b'"cost":"X"')  # same size: the state counts it
    path.write_bytes(b"".join(lines))
    with pytest.raises(CorruptStateError, match="'cost' is not an amount") as typed:
        store.history()
    with pytest.raises(CorruptStateError) as quick:
        read(store)
    assert str(quick.value) == str(typed.value)
    lines[3] = b"X" + lines[3][1:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(CorruptStateError, match="line 4 is not valid JSON"):
        read(store)


def test_the_history_file_read_skips_what_the_range_and_user_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    found = _crafted()
    path.write_text("".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in found))
    size = path.stat().st_size
    for user in (None, "alice", "zoë"):
        for since, until in BOUNDS:
            got = history.read_spend([path], size, user, since, until)
            assert got == sp.from_events(
                e
                for e in found
                if (user is None or getattr(e, "user", None) == user)
                and (since is None or (e.time is not None and e.time >= since))
                and (until is None or (e.time is not None and e.time < until))
            )


def test_spend_through_the_ledger_adds_up_to_show(make_store: Callable[[], Store]) -> None:
    """Charges made by the ledger (one sent twice under its request id, a hold committed, one
    released, a reset, a deleted user): the report's totals are the typed path's, and show's
    spend where nothing was reset."""
    store = make_store()
    now = [T0]
    ledger = Ledger(store=store, clock=lambda: now[0])
    for user in ("alice", "bob", "carol"):
        ledger.create(user, 100, duration="monthly")
    costs = {user: D(0) for user in ("alice", "bob", "carol")}
    for number in range(12):
        now[0] += 13 * MINUTE
        user = ("alice", "bob", "carol")[number % 3]
        ledger.charge_cost(user, f"0.{number}1", model="gpt-4o", request_id=f"r{number}")
        costs[user] += D(f"0.{number}1")
    again = ledger.charge_cost("alice", "0.01", model="gpt-4o", request_id="r0")
    assert again.duplicate  # not charged twice, and not recorded twice
    held = ledger.reserve("alice", "2", ttl="1h").hold
    assert held is not None
    now[0] += MINUTE
    ledger.commit(held.hold_id, "alice", "1.000000000001", model="gpt-4o")
    costs["alice"] += D("1.000000000001")
    released = ledger.reserve("bob", "1", ttl="1h").hold
    assert released is not None
    ledger.release([released.hold_id])
    ledger.reset(["carol"])
    ledger.charge_cost("carol", "0.5")
    costs["carol"] += D("0.5")
    ledger.delete(["bob"])
    found = reports.report(ledger, "user")
    assert found.rows == reports.totals(_typed(store, None, None, None), "user", "UTC")
    assert {row.key: row.cost for row in found.rows} == costs
    assert costs["alice"] == ledger.get("alice").current_cost
    assert ledger.get("carol").current_cost == D("0.5")
    assert sum((row.cost for row in reports.export(ledger)), D(0)) == found.total.cost


def test_a_report_adds_exactly_where_28_digits_would_round(make_store: Callable[[], Store]) -> None:
    """Amounts of 15 digits before the point and 40 after (what a charge takes) add up to more
    than the default context's 28 digits: the report's totals are still show's spend."""
    store = make_store()
    ledger = Ledger(store=store, clock=lambda: T0)
    ledger.create("alice", "1e15", duration="none")
    ledger.create("bob", "1e15", duration="none")
    tiny = "0." + "0" * 39 + "1"
    for cost in ("999999999999.5", tiny, "0.1", tiny):
        ledger.charge_cost("alice", cost, model="m")
        ledger.charge_cost("bob", "0.25", model="m")
    spent = ledger.get("alice").current_cost
    assert spent == D("999999999999.6000000000000000000000000000000000000002")
    for by in reports.GROUPINGS:
        found = reports.report(ledger, by)
        assert found.total.cost == add(spent, D(1)), by
        if by == "user":
            assert found.rows[0].cost == spent
    assert add(*(row.cost for row in reports.export(ledger, "alice"))) == spent


def test_the_line_pattern_takes_only_what_to_json_writes() -> None:
    """Every line it takes is one ``to_json`` could have written, compactly: the types' keys in
    order, text without escapes, a time format_utc writes."""
    pattern = re.compile(sp._LINE, re.MULTILINE)
    for event in _crafted():
        if isinstance(event, (ev.Charge, ev.Commit)) and event.time is not None:
            line = json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False)
            match = pattern.fullmatch(line)
            assert match is not None
            plain = all(
                text and '"' not in text and "\\" not in text and min(map(ord, text)) >= 0x20
                for text in (event.user, *("x" if t is None else t for t in event[3:8:4]))
            )
            assert bool(match.group(2)) == (plain and max(event[4:7]) < 10**18), line
