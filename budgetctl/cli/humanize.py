"""Times and amounts in words a person scans: "in 3 days", "Fri 1 Jan 2027 00:00 CET", "$0.0012"."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from budgetctl.core.money import format_usd, percent, shown_figures
from budgetctl.core.periods import format_utc

_STEPS = (  # (unit, seconds in it, use it below this many seconds)
    ("minute", 60, 90 * 60),
    ("hour", 3600, 36 * 3600),
    ("day", 86400, 14 * 86400),
    ("week", 7 * 86400, 8 * 7 * 86400),
    ("month", 30.436875 * 86400, 23 * 30.436875 * 86400),
    ("year", 365.2425 * 86400, float("inf")),
)


def relative(moment: datetime, now: datetime) -> str:
    """``moment`` from ``now`` in words: "in 3 days", "5 hours ago", "now"."""
    seconds = (moment - now).total_seconds()
    distance = abs(seconds)
    if distance < 60:
        return "now"
    for unit, size, below in _STEPS:
        if distance < below:
            count = max(1, round(distance / size))
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {words}" if seconds > 0 else f"{words} ago"
    raise AssertionError("unreachable")


@lru_cache(maxsize=64)
def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    from budgetctl.core.periods import parse_timezone

    return parse_timezone(name)


@lru_cache(maxsize=4096)
def local(moment: datetime, zone: str | None = None) -> str:
    """``moment`` in the time zone ``zone`` (a budget's own; None: this machine's), with the
    zone's name: "Fri 1 Jan 2027 00:00 CET". Cached: budgets share their boundaries."""
    here = moment.astimezone(_zone(zone))
    return f"{here:%a} {here.day} {here:%b %Y %H:%M} {here.tzname() or ''}".rstrip()


@lru_cache(maxsize=4096)
def stamp(moment: datetime, zone: str | None = None) -> str:
    """An event time to the second in ``zone``: "2026-12-01 22:25:37 CET" (history)."""
    here = moment.astimezone(_zone(zone))
    return f"{here:%Y-%m-%d %H:%M:%S} {here.tzname() or ''}".rstrip()


def when(moment: datetime | None, now: datetime, zone: str | None = None) -> str:
    """A reset time for people: "in 3 days (Fri 1 Jan 2027 00:00 CET)", or "never"."""
    if moment is None:
        return "never (lifetime budget)"
    return f"{relative(moment, now)} ({local(moment, zone)})"


def utc(moment: datetime | None) -> str:
    return format_utc(moment) if moment is not None else "-"


@lru_cache(maxsize=1024)
def usd(amount: Decimal) -> str:
    """Money for people (cached: a report of many budgets repeats a few amounts)."""
    return format_usd(amount)


@lru_cache(maxsize=1024)
def figures(total: Decimal, spent: Decimal) -> tuple[str, str, str]:
    """Budget, spent and remaining as shown side by side: each rounded to the digits shown, and
    spent + remaining = the budget shown (see :func:`~budgetctl.core.money.shown_figures`)."""
    return shown_figures(total, spent)


def pct(part: Decimal, whole: Decimal) -> str:
    """``part`` of ``whole`` as "42%" (one decimal under 10%, never a false "0%" or "100%":
    "<0.1%", "99.9%", ">99.9%"), or "-" for nothing of a zero budget ("over" for something)."""
    value = percent(part, whole)
    if value is None:
        return "-" if part == 0 else "over"
    if 0 < value < Decimal("0.1"):
        return "<0.1%"
    if value < 10:
        return f"{value:.1f}%" if value else "0%"
    shown = f"{value:.0f}"
    if shown == "100" and value != 100:  # neither full nor over budget unless it is
        shown = f"{value:.1f}"
        if shown == "100.0":
            return ">99.9%" if value < 100 else ">100%"
    return f"{shown}%"


def share(part: Decimal, whole: Decimal) -> float | None:
    """``part / whole`` for drawing a bar (a float is fine for pixels); None for a zero budget."""
    value = percent(part, whole)
    if value is None:
        return 1.0 if part > 0 else None
    return float(value) / 100
