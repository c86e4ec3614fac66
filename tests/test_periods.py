"""Budget periods: calendar boundaries in the budget's zone, anchors, clamping, DST."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from budgetctl.core.periods import (
    UTC,
    Duration,
    default_anchor,
    format_utc,
    next_boundary,
    parse_datetime,
    parse_duration,
    parse_timezone,
    parse_utc,
    period_containing,
)
from budgetctl.errors import InvalidDurationError, InvalidTimeError, UsageError

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # DST of 30 minutes
    "Pacific/Apia",  # skipped 2011-12-30 entirely, had DST until 2021
    "America/Santiago",  # DST changes at local midnight: the day starts at 01:00 once a year
    "Asia/Kathmandu",  # +05:45
]
NAMED = ["daily", "weekly", "monthly", "yearly"]

zones = st.sampled_from(ZONES).map(parse_timezone)
moments = st.datetimes(
    min_value=datetime(2005, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
counted = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.integers(min_value=1, max_value=40),
    st.sampled_from(["h", "d", "w", "mo", "y"]),
)
durations = st.one_of(st.sampled_from(NAMED), counted).map(parse_duration)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day (a midnight in a DST gap resolves past the gap)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def expected_calendar_period(name: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """An independent oracle for the named durations: local calendar arithmetic on dates."""
    today = now.astimezone(tz).date()
    if name == "daily":
        first, nxt = today, today + timedelta(days=1)
    elif name == "weekly":
        first = today - timedelta(days=today.weekday())
        nxt = first + timedelta(days=7)
    elif name == "monthly":
        first = today.replace(day=1)
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    else:
        first = date(today.year, 1, 1)
        nxt = date(today.year + 1, 1, 1)
    start, end = local_midnight(first, tz), local_midnight(nxt, tz)
    # A local day that never happened (Apia, 2011-12-30) has a start equal to the next day's.
    while end <= now:
        nxt += timedelta(days=1)
        end = local_midnight(nxt, tz)
    return start, end


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(durations, zones, moments, moments, st.booleans())
def test_period_contains_now_and_next_boundary_is_after(
    duration: Duration, tz: ZoneInfo, now: datetime, anchor_at: datetime, anchored: bool
) -> None:
    anchor = anchor_at if anchored or not duration.calendar else default_anchor(duration, tz, now)
    start, end = period_containing(duration, anchor, tz, now)
    assert start <= now < end
    assert next_boundary(duration, anchor, tz, now) == end > now
    # periods tile the line: the next one starts where this one ends, the previous ends here
    assert period_containing(duration, anchor, tz, end)[0] == end
    before = start - timedelta(microseconds=1)
    assert period_containing(duration, anchor, tz, before)[1] == start
    # the anchor itself is a boundary (anchors in the past and in the future alike)
    assert period_containing(duration, anchor, tz, anchor)[0] == anchor


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(NAMED), zones, moments)
def test_named_durations_align_to_the_calendar(name: str, tz: ZoneInfo, now: datetime) -> None:
    duration = parse_duration(name)
    assert duration is not None
    anchor = default_anchor(duration, tz, created_at=now)
    assert period_containing(duration, anchor, tz, now) == expected_calendar_period(name, now, tz)


@settings(max_examples=300, deadline=None)
@given(durations, zones, moments, moments, moments)
def test_periods_are_monotone_in_now(
    duration: Duration, tz: ZoneInfo, anchor: datetime, a: datetime, b: datetime
) -> None:
    first, second = sorted((a, b))
    s1, e1 = period_containing(duration, anchor, tz, first)
    s2, e2 = period_containing(duration, anchor, tz, second)
    assert s1 <= s2 and e1 <= e2
    if second < e1:
        assert (s1, e1) == (s2, e2)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=500), zones, moments, moments)
def test_hours_are_exact_elapsed_hours(
    n: int, tz: ZoneInfo, anchor: datetime, now: datetime
) -> None:
    duration = parse_duration(f"{n}h")
    assert duration is not None
    start, end = period_containing(duration, anchor, tz, now)
    assert end - start == timedelta(hours=n)
    assert (start - anchor) % timedelta(hours=n) == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.sampled_from(["mo", "y"]),
    zones,
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    moments,
)
# Santiago's clocks jump from 00:00 to 01:00 on 2036-09-07: the anchor (that midnight) is stored as
# 01:00, and the periods stayed at 01:00 for ever after (issue 8, item 4).
@example(1, "mo", parse_timezone("America/Santiago"), date(2036, 9, 7), utc(2037, 9, 20))
@example(1, "mo", parse_timezone("America/Santiago"), date(2036, 9, 7), utc(2026, 3, 10))
# Apia skipped 2011-12-30 entirely: the anchor day is the 30th, not the 31st it resolves to.
@example(1, "mo", parse_timezone("Pacific/Apia"), date(2011, 12, 30), utc(2012, 3, 1))
def test_months_return_to_the_anchor_day(
    n: int, unit: str, tz: ZoneInfo, anchor_day: date, now: datetime
) -> None:
    """Every boundary is on the anchor's day of month, clamped to the month's end."""
    import calendar

    duration = parse_duration(f"{n}{unit}")
    assert duration is not None
    anchor = local_midnight(anchor_day, tz)
    start, end = period_containing(duration, anchor, tz, now)
    for edge in (start, end):
        local = edge.astimezone(tz)
        last = calendar.monthrange(local.year, local.month)[1]
        # the first instant of the anchor's day in that month (a day or midnight that a DST gap
        # or Apia's 2011 jump skipped resolves to the first instant after it)
        expected = local_midnight(date(local.year, local.month, min(anchor_day.day, last)), tz)
        assert edge == expected


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", ["monthly", "1mo", "1y", "7d", "daily"])
def test_an_anchor_on_a_skipped_midnight_comes_back_to_midnight(duration: str) -> None:
    """Santiago, 2036-09-07: clocks jump from 00:00 to 01:00. That day's period starts at 01:00
    (the first instant of the day); every other period starts at local midnight, except on the
    Sundays when the clocks skip it again."""
    tz = parse_timezone("America/Santiago")
    anchor = parse_datetime("2036-09-07", tz)
    assert anchor.astimezone(tz).hour == 1  # the midnight that does not exist, resolved forward
    every = parse_duration(duration)
    assert every is not None
    for now in (utc(2026, 3, 10), utc(2036, 9, 7, 12), utc(2036, 10, 20), utc(2037, 9, 20)):
        start, end = period_containing(every, anchor, tz, now)
        for edge in (start, end):
            local = edge.astimezone(tz)
            # the first instant of its local day: 00:00, or 01:00 where the clocks skipped midnight
            assert edge == local_midnight(local.date(), tz), (duration, local)
            assert local.hour == 0 or local.date().weekday() == 6, (duration, local)  # a Sunday


def test_month_end_clamping_returns_to_the_anchor_day() -> None:
    monthly = parse_duration("monthly")
    assert monthly is not None
    anchor = utc(2025, 1, 31)
    ends = [period_containing(monthly, anchor, UTC, utc(2025, m, 1, 12))[1] for m in range(2, 7)]
    # Jan 31 -> Feb 28 -> Mar 31 (not Mar 28) -> Apr 30 -> May 31 -> Jun 30
    expected = [(2, 28), (3, 31), (4, 30), (5, 31), (6, 30)]
    assert ends == [utc(2025, month, day) for month, day in expected]
    assert period_containing(monthly, anchor, UTC, utc(2025, 2, 10)) == (
        utc(2025, 1, 31),
        utc(2025, 2, 28),
    )
    assert period_containing(monthly, anchor, UTC, utc(2025, 3, 1)) == (
        utc(2025, 2, 28),
        utc(2025, 3, 31),
    )
    # a leap year clamps to Feb 29
    assert period_containing(monthly, utc(2024, 1, 31), UTC, utc(2024, 2, 29, 12)) == (
        utc(2024, 2, 29),
        utc(2024, 3, 31),
    )


def test_feb_29_anchor_yearly() -> None:
    yearly = parse_duration("1y")
    assert yearly is not None
    anchor = utc(2024, 2, 29, 6)
    assert period_containing(yearly, anchor, UTC, utc(2025, 6, 1)) == (
        utc(2025, 2, 28, 6),
        utc(2026, 2, 28, 6),
    )
    assert period_containing(yearly, anchor, UTC, utc(2028, 3, 1)) == (
        utc(2028, 2, 29, 6),
        utc(2029, 2, 28, 6),
    )
    # and backwards from a future anchor
    assert period_containing(yearly, utc(2028, 2, 29), UTC, utc(2026, 5, 1)) == (
        utc(2026, 2, 28),
        utc(2027, 2, 28),
    )


def test_anchor_in_the_future_and_the_past() -> None:
    monthly = parse_duration("monthly")
    assert monthly is not None
    # a budget "started" 2030-01-15: today's period is still on its grid
    assert period_containing(monthly, utc(2030, 1, 15), UTC, utc(2026, 5, 20)) == (
        utc(2026, 5, 15),
        utc(2026, 6, 15),
    )
    assert period_containing(monthly, utc(2001, 1, 15), UTC, utc(2026, 5, 10)) == (
        utc(2026, 4, 15),
        utc(2026, 5, 15),
    )


def test_daily_stays_at_local_midnight_across_dst() -> None:
    tz = parse_timezone("America/New_York")
    daily = parse_duration("daily")
    assert daily is not None
    anchor = default_anchor(daily, tz, utc(2024, 1, 1))
    # spring forward (2024-03-10): a 23-hour day; fall back (2024-11-03): a 25-hour day
    start, end = period_containing(daily, anchor, tz, utc(2024, 3, 10, 12))
    assert (start, end) == (utc(2024, 3, 10, 5), utc(2024, 3, 11, 4))
    assert start.astimezone(tz).hour == end.astimezone(tz).hour == 0
    start, end = period_containing(daily, anchor, tz, utc(2024, 11, 3, 12))
    assert end - start == timedelta(hours=25)
    assert (start, end) == (utc(2024, 11, 3, 4), utc(2024, 11, 4, 5))


def test_24h_is_not_daily_across_dst() -> None:
    tz = parse_timezone("America/New_York")
    hours = parse_duration("24h")
    assert hours is not None
    anchor = utc(2024, 3, 9, 5)  # local midnight, March 9
    start, end = period_containing(hours, anchor, tz, utc(2024, 3, 10, 12))
    assert (start, end) == (utc(2024, 3, 10, 5), utc(2024, 3, 11, 5))
    assert end.astimezone(tz).hour == 1  # exact elapsed hours, not wall time


def test_lord_howe_half_hour_dst() -> None:
    tz = parse_timezone("Australia/Lord_Howe")
    daily = parse_duration("daily")
    assert daily is not None
    anchor = default_anchor(daily, tz, utc(2024, 1, 1))
    # DST starts 2024-10-06 02:00 -> 02:30 local: that day lasts 23.5 hours
    now = datetime(2024, 10, 6, 12, tzinfo=tz).astimezone(UTC)
    start, end = period_containing(daily, anchor, tz, now)
    assert end - start == timedelta(hours=23, minutes=30)
    assert start.astimezone(tz).time() == end.astimezone(tz).time() == time(0)


def test_apia_skipped_day() -> None:
    tz = parse_timezone("Pacific/Apia")
    daily = parse_duration("daily")
    assert daily is not None
    anchor = default_anchor(daily, tz, utc(2011, 1, 1))
    # local 2011-12-29 was followed by 2011-12-31: the period of the 29th ends at the 31st
    start, end = period_containing(daily, anchor, tz, utc(2011, 12, 30, 9))
    assert start.astimezone(tz).date() == date(2011, 12, 29)
    assert end.astimezone(tz).date() == date(2011, 12, 31)
    assert end - start == timedelta(hours=24)


def test_weekly_starts_monday() -> None:
    weekly = parse_duration("weekly")
    assert weekly is not None
    tz = parse_timezone("Europe/London")
    start, end = period_containing(
        weekly, default_anchor(weekly, tz, utc(2026, 1, 1)), tz, utc(2026, 3, 29, 12)
    )
    # 2026-03-29 is a Sunday (and the day BST starts): the week began Monday 23rd, UTC midnight
    assert start == utc(2026, 3, 23) and start.astimezone(tz).weekday() == 0
    assert end == utc(2026, 3, 29, 23)  # Monday 30th 00:00 BST


def test_yearly_in_a_zone() -> None:
    yearly = parse_duration("yearly")
    assert yearly is not None
    tz = parse_timezone("Asia/Kathmandu")
    start, end = period_containing(
        yearly, default_anchor(yearly, tz, utc(2026, 1, 1)), tz, utc(2026, 6, 1)
    )
    assert start == datetime(2026, 1, 1, tzinfo=tz).astimezone(UTC) == utc(2025, 12, 31, 18, 15)
    assert end == utc(2026, 12, 31, 18, 15)


def test_counted_durations_without_start_anchor_at_creation() -> None:
    d3 = parse_duration("3d")
    assert d3 is not None
    created = utc(2026, 1, 15, 9, 30)
    anchor = default_anchor(d3, UTC, created)
    assert anchor == created
    assert period_containing(d3, anchor, UTC, utc(2026, 1, 20)) == (
        utc(2026, 1, 18, 9, 30),
        utc(2026, 1, 21, 9, 30),
    )


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily", Duration(1, "d", calendar=True)),
        ("weekly", Duration(1, "w", calendar=True)),
        ("monthly", Duration(1, "mo", calendar=True)),
        ("yearly", Duration(1, "y", calendar=True)),
        ("Daily", Duration(1, "d", calendar=True)),
        ("12h", Duration(12, "h", calendar=False)),
        ("1d", Duration(1, "d", calendar=False)),
        (" 30d ", Duration(30, "d", calendar=False)),
        ("2w", Duration(2, "w", calendar=False)),
        ("3mo", Duration(3, "mo", calendar=False)),
        ("1y", Duration(1, "y", calendar=False)),
        ("none", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_duration_accepts(text: str | None, expected: Duration | None) -> None:
    assert parse_duration(text) == expected
    if expected is not None:
        assert parse_duration(expected.text) == expected  # the stored text reads back


@pytest.mark.parametrize(
    "text",
    [
        "0d",
        "-1d",
        "1.5d",
        "d",
        "1m",
        "1 d",
        "1D1",
        "monthly2",
        "fortnightly",
        "7",
        "1s",
        "01d",
        "9999999h",
        "1e3d",
        "daily;rm",
    ],
)
def test_parse_duration_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidDurationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    for form in ("daily", "weekly", "monthly", "yearly", "<N>h", "<N>d", "<N>w", "<N>mo", "<N>y"):
        assert form in message
    assert isinstance(caught.value, UsageError)


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus", "", " ", "/etc/passwd", "../../etc/passwd", "Europe/../UTC", "EST5EDT6"],
)
def test_parse_timezone_rejects_unknown(name: str) -> None:
    with pytest.raises(InvalidTimeError) as caught:
        parse_timezone(name)
    assert "time zone" in str(caught.value)


def test_parse_timezone_known() -> None:
    assert parse_timezone("Europe/Paris") == ZoneInfo("Europe/Paris")
    # UTC comes back as datetime.timezone.utc (no zoneinfo import on the common path): it must
    # give exactly the instants ZoneInfo("UTC") gives.
    utc_zone = parse_timezone("UTC")
    for moment in (datetime(2026, 3, 29, 1, 30), datetime(2026, 10, 25, 1, 30), datetime(1, 1, 2)):
        assert moment.replace(tzinfo=utc_zone) == moment.replace(tzinfo=ZoneInfo("UTC"))
        assert utc_zone.utcoffset(moment) == timedelta(0)


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-01-15", "UTC", utc(2026, 1, 15)),
        ("2026-01-15", "Europe/Paris", utc(2026, 1, 14, 23)),
        ("2026-01-15T09:30", "America/New_York", utc(2026, 1, 15, 14, 30)),
        ("2026-01-15 09:30:00+01:00", "America/New_York", utc(2026, 1, 15, 8, 30)),
        ("2026-01-15T09:30:00Z", "Europe/Paris", utc(2026, 1, 15, 9, 30)),
        ("2026-01-15T09:30:00z", "UTC", utc(2026, 1, 15, 9, 30)),
        ("@0", "Europe/Paris", utc(1970, 1, 1)),
        ("@1768469400", "UTC", utc(2026, 1, 15, 9, 30)),
        ("  2026-07-01  ", "UTC", utc(2026, 7, 1)),
    ],
)
def test_parse_datetime_forms(text: str, tz: str, expected: datetime) -> None:
    parsed = parse_datetime(text, parse_timezone(tz))
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "2026-13-01",
        "2026-02-30",
        "15/01/2026",
        "@",
        "@abc",
        "@nan",
        "@1e20",
        "2026-01-15T25:00",
        "0001-01-01T00:00+01:00",
        "9999-12-31T23:00-05:00",
    ],
)
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(InvalidTimeError) as caught:
        parse_datetime(text)
    assert repr(text) in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    )
)
def test_format_and_parse_utc_round_trip(moment: datetime) -> None:
    text = format_utc(moment)
    assert text.endswith("Z") and "+" not in text
    assert parse_utc(text) == moment
    assert parse_datetime(text) == moment


def test_format_utc_converts_to_utc() -> None:
    paris = datetime(2026, 11, 28, 1, tzinfo=ZoneInfo("Europe/Paris"))
    assert format_utc(paris) == "2026-11-28T00:00:00Z"
    assert format_utc(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2026-01-01T05:00:00Z"
    )


def test_duration_text_round_trip_and_approx_days() -> None:
    for text in ["daily", "weekly", "monthly", "yearly", "5h", "2d", "3w", "6mo", "2y"]:
        duration = parse_duration(text)
        assert duration is not None and str(duration) == text
    assert parse_duration("weekly").approx_days == 7  # type: ignore[union-attr]
    assert parse_duration("12h").approx_days == 0.5  # type: ignore[union-attr]


def test_an_anchor_in_the_autumn_overlap_starts_its_own_period() -> None:
    """01:00 EST on 2016-11-06 (the second 01:00 of that night in New York): the period that
    contains the anchor starts at the anchor, not an hour before it at the first 01:00."""
    tz = parse_timezone("America/New_York")
    anchor = datetime(2016, 11, 6, 6, tzinfo=timezone.utc)
    start, end = period_containing(parse_duration("daily"), anchor, tz, anchor)
    assert (start, end) == (anchor, datetime(2016, 11, 7, 6, tzinfo=timezone.utc))
