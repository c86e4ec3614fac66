"""Budget periods: durations, calendar boundaries, and the period that contains a moment.

Pure functions of their arguments; the clock is always a parameter. Rules (docs/periods.md):

- named durations (daily, weekly, monthly, yearly) align to calendar boundaries in the budget's
  time zone: 00:00, Monday 00:00, the 1st 00:00, Jan 1 00:00;
- ``<N>h``, ``<N>d``, ``<N>w``, ``<N>mo``, ``<N>y`` are anchored at creation time, or at a given
  start; a named duration with a start is anchored there too;
- boundaries are ``anchor + k * period`` for every integer k. Days, weeks, months and years are
  added in local wall time and then converted to UTC (so a daily budget resets at local midnight on
  both sides of a DST change); hours are exact elapsed hours. Months clamp to the month's end and
  return to the anchor day (Jan 31 -> Feb 28/29 -> Mar 31), because every boundary is computed
  from the anchor's local wall time, never from the previous boundary; a boundary whose wall time
  a DST gap skipped resolves forward, for that boundary only (:func:`anchor_wall`).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Literal

from budgetctl.core.record import Record
from budgetctl.errors import InvalidDurationError, InvalidTimeError

UTC = timezone.utc
Unit = Literal["h", "d", "w", "mo", "y"]

NAMED: dict[str, tuple[int, Unit]] = {
    "daily": (1, "d"),
    "weekly": (1, "w"),
    "monthly": (1, "mo"),
    "yearly": (1, "y"),
}
_NAMES = {unit: name for name, (_, unit) in NAMED.items()}  # a named duration's unit -> name
_FORM = r"^([1-9][0-9]{0,5})(h|d|w|mo|y)$"  # compiled on first use (named durations need none)
_UNITS: dict[str, Unit] = {"h": "h", "d": "d", "w": "w", "mo": "mo", "y": "y"}
_MAX_COUNT = {"h": 24 * 366 * 100, "d": 366 * 100, "w": 53 * 100, "mo": 1200, "y": 100}
MAX_DAYS = _MAX_COUNT["d"]  # the longest ``<N>d`` (about 100 years)
ACCEPTED = "daily, weekly, monthly, yearly, <N>h, <N>d, <N>w, <N>mo, <N>y (N >= 1), or none"

# The calendar anchor of named durations without a start: a Monday, Jan 1 (2001-01-01).
_CALENDAR_EPOCH = date(2001, 1, 1)
# Times budgetctl takes (given, or read from a file): far from datetime's year 1 and 9999, so that
# a period of up to 100 years (+ a time zone's offset) around any of them stays computable.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


class Duration(Record):
    """How long a budget period lasts. ``calendar`` is True for the named durations."""

    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    unit: Unit
    calendar: bool

    @property
    def text(self) -> str:
        if self.calendar:
            return _NAMES[self.unit]
        return f"{self.count}{self.unit}"

    def __str__(self) -> str:
        return self.text

    @property
    def approx_days(self) -> float:
        """Rough length in days, for conversions such as LiteLLM's ``duration`` field."""
        per = {"h": 1 / 24, "d": 1, "w": 7, "mo": 30.436875, "y": 365.2425}[self.unit]
        return self.count * per


@lru_cache(maxsize=256)
def parse_duration(text: str | None) -> Duration | None:
    """A :class:`Duration` from its text, or None for a lifetime budget (``none`` or empty)."""
    if text is None:
        return None
    cleaned = text.strip().lower()
    if cleaned in ("", "none", "lifetime"):
        return None
    if cleaned in NAMED:
        count, unit = NAMED[cleaned]
        return Duration(count, unit, calendar=True)
    match = re.match(_FORM, cleaned)
    if match:
        count, form = int(match.group(1)), match.group(2)
        if count <= _MAX_COUNT[form]:
            return Duration(count, _UNITS[form], calendar=False)
    raise InvalidDurationError(
        f"unknown duration {text!r}{_duration_hint(cleaned)}; accepted: {ACCEPTED}"
    )


# What people write for a named duration: the noun, or LiteLLM-proxy style with a bare "m".
_NOUNS = {
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "year": "yearly",
    "hour": "1h",
    "hourly": "1h",
    "annual": "yearly",
    "annually": "yearly",
}


def _duration_hint(cleaned: str) -> str:
    from budgetctl.core.nearest import did_you_mean, hint

    match = re.fullmatch(r"(\d+)\s*(m|mon|mons|month|months|min)", cleaned)
    if match and not cleaned.endswith("min"):
        return hint(f"{match.group(1)}mo")
    match = re.fullmatch(r"(\d+)\s*(hours?|days?|weeks?|years?)", cleaned)
    if match:
        return hint(f"{match.group(1)}{match.group(2)[0]}")
    singular = cleaned[:-1] if cleaned.endswith("s") else cleaned
    if singular in _NOUNS:
        return hint(_NOUNS[singular])
    return did_you_mean(cleaned, [*NAMED, "none"])


@lru_cache(maxsize=64)
def parse_timezone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Paris``); InvalidTimeError if unknown."""
    cleaned = name.strip()
    if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
        raise InvalidTimeError(f"unknown time zone {name!r}; use an IANA name such as Europe/Paris")
    if cleaned == "UTC":
        # The common case needs no zoneinfo (whose import pulls in sysconfig): a one-shot command
        # on a UTC budget stays cheaper. The same instants as ZoneInfo("UTC").
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimeError(
            f"unknown time zone {name!r}{_zone_hint(cleaned)}; use an IANA name such as UTC or "
            "Europe/Paris"
        ) from None


def _zone_hint(cleaned: str) -> str:
    """The IANA name meant by ``europe/paris``, ``Paris`` or ``Europe/Pariss``."""
    from zoneinfo import available_timezones

    from budgetctl.core.nearest import did_you_mean, hint, nearest

    names = sorted(available_timezones())
    exact = nearest(cleaned, names, cutoff=1.0)  # only a difference of case
    if exact is not None:
        return hint(exact)
    cities = {name.rsplit("/", 1)[-1].replace("_", " "): name for name in names if "/" in name}
    city = nearest(cleaned.replace("_", " "), cities, cutoff=0.9)
    if city is not None:
        return hint(cities[city])
    return did_you_mean(cleaned, names)


def parse_datetime(text: str, tz: tzinfo = UTC) -> datetime:
    """An aware UTC datetime from ISO 8601 text; a date or a naive time is read in ``tz``.

    Accepts ``2026-01-15``, ``2026-01-15T09:30``, ``2026-01-15 09:30:00+01:00``, ``...Z``, and
    ``@<epoch seconds>``.
    """
    cleaned = text.strip()
    try:
        if cleaned.startswith("@"):
            moment = datetime.fromtimestamp(float(cleaned[1:]), UTC)
        else:
            if cleaned.endswith(("Z", "z")):
                cleaned = cleaned[:-1] + "+00:00"
            parsed = datetime.fromisoformat(cleaned)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=tz)
            # inside the try: 0001-01-01T00:00+01:00 is before year 1 in UTC (OverflowError)
            moment = parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidTimeError(
            f"cannot read time {text[:40]!r}; use ISO 8601 such as 2026-01-15 or "
            "2026-01-15T09:30:00Z"
        ) from None
    return check_moment(moment, text)


def check_moment(moment: datetime, text: object = None) -> datetime:
    """``moment`` if it is between :data:`EARLIEST` and :data:`LATEST` (years 1970 to 9000)."""
    if not EARLIEST <= moment <= LATEST:
        shown = moment.isoformat() if text is None else str(text)[:40]
        raise InvalidTimeError(
            f"time {shown!r} is out of range: budgetctl takes times from 1970 to 9000"
        )
    return moment


@lru_cache(maxsize=4096)
def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2026-11-28T00:00:00Z`` (microseconds kept if any).

    Cached: budgets on the same grid share their boundaries, and a large reset-due formats the
    same few instants for every user.
    """
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


@lru_cache(maxsize=4096)
def parse_utc(text: str) -> datetime:
    """Inverse of :func:`format_utc` for trusted stored text (cached like it)."""
    return datetime.fromisoformat(text[:-1] if text.endswith("Z") else text).replace(tzinfo=UTC)


def default_anchor(duration: Duration, tz: tzinfo, created_at: datetime) -> datetime:
    """Where a budget's periods are anchored when no start is given.

    Named durations: a calendar boundary (a Monday that is also Jan 1, at local midnight), so
    boundaries fall on calendar days, weeks, months and years. Others: the creation time.
    """
    if duration.calendar:
        return _calendar_anchor(tz)
    return created_at.astimezone(UTC)


@lru_cache(maxsize=64)
def _calendar_anchor(tz: tzinfo) -> datetime:
    return _local_to_utc(datetime.combine(_CALENDAR_EPOCH, time(0)), tz)


def _local_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    # A wall time in a DST gap or overlap resolves with fold=0, as zoneinfo does: deterministic,
    # and monotone because calendar steps are at least a day apart.
    return wall.replace(tzinfo=tz).astimezone(UTC)


_INSTANT = timedelta(microseconds=1)


@lru_cache(maxsize=1024)
def anchor_wall(anchor: datetime, tz: tzinfo) -> datetime:
    """The local wall time (naive) that an anchor stands for, from which every boundary is built.

    Usually the anchor's local time. But a wall time that a spring-forward gap skipped resolves to
    the instant the gap ends, and that instant is also the first wall time after the gap: local
    midnight on a day whose clocks jump from 00:00 to 01:00 (``--start 2036-09-07 --tz
    America/Santiago``) is stored as 01:00. An anchor exactly at such a jump therefore stands for
    the start of the gap (that midnight), so the boundaries come back to it in every month where
    it exists, and each boundary that falls in a gap resolves forward on its own.
    """
    local = anchor.astimezone(tz)
    before = (anchor - _INSTANT).astimezone(tz).utcoffset()
    after = local.utcoffset()
    if before is not None and after is not None and before < after:
        return (anchor + before).replace(tzinfo=None)  # the gap's start, as the clock read it
    return local.replace(tzinfo=None)


def _add_months(wall: datetime, months: int) -> datetime:
    total = wall.year * 12 + (wall.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    day = min(wall.day, calendar.monthrange(year, month)[1])
    return wall.replace(year=year, month=month, day=day)


def boundary(duration: Duration, anchor: datetime, tz: tzinfo, k: int) -> datetime:
    """The k-th boundary: ``anchor + k * duration`` (k may be negative), in UTC."""
    if duration.unit == "h":
        return anchor + timedelta(hours=duration.count * k)
    wall = anchor_wall(anchor, tz)
    if k == 0 and wall == anchor.astimezone(tz).replace(tzinfo=None):
        # The anchor itself: a wall time the autumn overlap repeats (01:00 EST, after 01:00 EDT)
        # would resolve to its first occurrence, an hour before the anchor.
        return anchor
    if duration.unit == "d":
        wall = wall + timedelta(days=duration.count * k)
    elif duration.unit == "w":
        wall = wall + timedelta(weeks=duration.count * k)
    elif duration.unit == "mo":
        wall = _add_months(wall, duration.count * k)
    else:
        wall = _add_months(wall, 12 * duration.count * k)
    return _local_to_utc(wall, tz)


def _estimate_k(duration: Duration, anchor: datetime, tz: tzinfo, now: datetime) -> int:
    if duration.unit == "h":
        return int((now - anchor) // timedelta(hours=duration.count))
    if duration.unit in ("d", "w"):
        days = duration.count * (7 if duration.unit == "w" else 1)
        return int((now - anchor) // timedelta(days=days))
    a = anchor_wall(anchor, tz)
    n = now.astimezone(tz)
    months = (n.year - a.year) * 12 + (n.month - a.month)
    per = duration.count * (12 if duration.unit == "y" else 1)
    return months // per


@lru_cache(maxsize=1024)
def period_containing(
    duration: Duration, anchor: datetime, tz: tzinfo, now: datetime
) -> tuple[datetime, datetime]:
    """The period ``[start, end)`` with ``start <= now < end``, on the anchor's grid.

    Cached: a reset-due over many budgets on one grid asks the same question for each of them.
    """
    k = _estimate_k(duration, anchor, tz, now)
    # The estimate is off by at most a step or two (DST hours, month lengths); walk to the truth.
    while boundary(duration, anchor, tz, k) > now:
        k -= 1
    while boundary(duration, anchor, tz, k + 1) <= now:
        k += 1
    return boundary(duration, anchor, tz, k), boundary(duration, anchor, tz, k + 1)


def next_boundary(duration: Duration, anchor: datetime, tz: tzinfo, now: datetime) -> datetime:
    """The first boundary strictly after ``now``."""
    return period_containing(duration, anchor, tz, now)[1]
