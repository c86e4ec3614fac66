"""Spend as ``export`` and ``report`` read it: the charges and commits of a range of history, as
:class:`Spend` rows, without building typed events.

A report of 100,000 charges spent half its time building :class:`~budgetctl.core.events.Charge`
values from parsed JSON (every field checked, a datetime and a Decimal each). A store that keeps
events as the JSON text ``to_json`` writes (the JSON store's history lines, PostgreSQL's
``event`` column) reads them here instead (:func:`parse`): one regular expression over the whole
text picks out the lines in exactly the shape ``Charge.to_json``/``Commit.to_json`` write, which
are valid JSON whose values are the captured texts (no escapes, no spaces, a time ending in
``Z``); every other line (another event, or a charge written some other way) is decoded as
before, with ``json`` and :func:`~budgetctl.core.events.from_json`. So the rows are those of the
typed events, to the last digit, and a line the typed path would reject is not read here at all:
:func:`parse` answers None and the store reads its typed path, which says what is wrong
(tests/test_spend.py compares the two on the JSON store and PostgreSQL).

What spend is stays decided by :func:`budgetctl.core.events.spend` (a ``charge`` or a ``commit``);
stores only read it.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import compress, repeat
from operator import and_, itemgetter
from typing import Any

from budgetctl.core import events, jsontext
from budgetctl.core.money import EXACT
from budgetctl.core.periods import format_utc, parse_utc
from budgetctl.core.record import Record


class Spend(Record):
    """A charge or a commit as a report reads it: :class:`~budgetctl.core.events.Charge`'s
    fields in its order, then a commit's, with the time as text (most reports never need it as a
    datetime, and parsing 100,000 costs a tenth of the report)."""

    time: str | None  # UTC, as format_utc writes it ("2026-11-30T09:00:00Z"); None: before 0.2
    user: str
    cost: Decimal
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    request_id: str | None = None
    estimated: bool = False
    hold_id: str | None = None  # the hold a commit settled; None for a charge
    held: Decimal | None = None  # what that hold reserved (None: it was no longer open)

    @property
    def type(self) -> str:
        """``charge``, or ``commit`` (a charge that settled a hold), as the event's JSON says."""
        return "charge" if self.hold_id is None else "commit"

    @property
    def moment(self) -> datetime | None:
        """The time as an aware UTC datetime."""
        return None if self.time is None else parse_utc(self.time)


def of_event(event: events.Event) -> Spend | None:
    """``event`` as a spend row, or None when it is not spend (:func:`events.spend`)."""
    if events.spend(event) is None:
        return None
    assert isinstance(event, (events.Charge, events.Commit))
    time = None if event.time is None else format_utc(event.time)
    return Spend(time, *event[1:])  # a commit's hold_id and held follow the charge's fields


def from_events(found: Iterable[events.Event]) -> list[Spend]:
    """The spend rows of ``found``, in its order."""
    rows = (of_event(event) for event in found)
    return [row for row in rows if row is not None]


def read(
    store: Any,
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Spend]:
    """The charges and commits of ``store`` (only ``user``'s) recorded in [since, until), oldest
    first: the store's own ``spend`` read when it has one, else from its ``history``."""
    if getattr(type(store), "spend", None) is not None:  # the class's: a proxy's __getattr__
        found: list[Spend] = store.spend(user, since, until)  # (client mode) is not asked
        return found
    return from_events(reversed(store.history(user, None, since, until)))


# --- the events' JSON text -----------------------------------------------------------------------

_TEXT = r'[^"\\\x00-\x1f]+'  # a JSON string's content without escapes, never empty
_AMOUNT = r"-?\d+(?:\.\d+)?"  # text Decimal reads exactly (to_text writes "0.000123", "-1.5")
_COUNT = r"(?:0|[1-9]\d{0,17})"  # a JSON integer >= 0 (json refuses leading zeros)
_TIME = (  # format_utc's text, of a day that exists (a 29 February is read the general way)
    r"(?!0000)\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8]))"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{6})?Z"
)
# A charge or commit line exactly as to_json writes it and json.dumps encodes it compactly (keys
# in to_json's order: hold_id and held on a commit only), else any line. Groups: 1 "commit",
# 2 time, 3 user, 4 model, 5 cost, 6-8 tokens, 9 request_id, 10 estimated, 11 hold_id, 12 held,
# 13 any other line. An empty group is an absent value: the texts captured are never empty.
_LINE = (
    r'^\{"type":"(?:charge|(commit))","time":"(' + _TIME + r')","user":"(' + _TEXT + r')",'
    r'"model":(?:null|"(' + _TEXT + r')"),"cost":"(' + _AMOUNT + r')",'
    r'"prompt_tokens":(' + _COUNT + r'),"completion_tokens":(' + _COUNT + r"),"
    r'"cached_tokens":(' + _COUNT + r')(?:,"request_id":"(' + _TEXT + r')")?'
    r'(,"estimated":true)?(?(1),"hold_id":"('
    + _TEXT
    + r')","held":(?:null|"('
    + _AMOUNT
    + r')"))\}$|^(.*)$'
)  # compiled on first use (re caches it): a charge, which imports this module, never pays


def parse(text: str) -> list[Spend] | None:
    """The spend rows of ``text``, events' JSON one a line (``\\n``; one after the last is
    allowed), in its order; None when a line is not an event the typed path reads (the caller
    then reads that way, and says which line is wrong)."""
    rows: list[Spend] = []
    with jsontext.gc_paused():  # 100,000 rows, no cycles: the collector's passes only cost time
        for found in _chunks(text):
            others = [match[12] for match in found if not match[1]]  # read the general way
            quick = _rows([match for match in found if match[1]] if others else found)
            if not others:
                rows += quick
                continue
            decoded = _decode(others)
            if decoded is None:
                return None
            fast, general = iter(quick), iter(decoded)
            merged = [next(fast) if match[1] else next(general) for match in found]
            rows += [row for row in merged if row is not None]
    return rows


def sums(
    text: str, key: str, user: str | None = None, span: TimeRange | None = None
) -> dict[Any, list[Any]] | None:
    """What summing :func:`parse`'s rows (only ``user``'s, only those in ``span``) per ``key``
    gives, without building the rows: [charges, cost, prompt tokens, completion tokens, cached
    tokens] per user, model, UTC day (``2026-11-30``) or UTC hour (``2026-11-30T09``), a row
    without a time in no day or hour; None where :func:`parse` would be. Each chunk's columns
    are summed and dropped, so a report's memory does not grow with the history."""
    found_sums: dict[Any, list[Any]] = {}
    counts = _Counts().__getitem__
    absent = {"": None}.get
    with jsontext.gc_paused(), localcontext(EXACT):
        for found in _chunks(text):
            others = [match[12] for match in found if not match[1]]
            extra: list[Spend] = []
            if others:
                decoded = _decode(others)
                if decoded is None:
                    return None
                extra = [row for row in decoded if row is not None]
                found = [match for match in found if match[1]]
            if found:
                (_, times, users, models, costs, prompts, completions, cached, *_) = zip(
                    *found, strict=True
                )
                keep: Iterable[bool] | None = None
                if user is not None:
                    keep = map(user.__eq__, users)
                if span is not None:
                    inside = map(span.__contains__, times)
                    keep = inside if keep is None else map(and_, keep, inside)
                picked: Sequence[int] = range(len(times))
                if keep is not None:
                    picked = list(compress(picked, keep))
                keys = {
                    "user": users,
                    "model": list(map(absent, models, models)) if key == "model" else (),
                    "day": list(map(_DAY, times)) if key == "day" else (),
                    "hour": list(map(_HOUR, times)) if key == "hour" else (),
                }[key]
                groups: defaultdict[Any, list[int]] = defaultdict(list)
                deque(
                    map(
                        list.append, map(groups.__getitem__, map(keys.__getitem__, picked)), picked
                    ),
                    maxlen=0,
                )
                for grouped, indices in groups.items():
                    add_sums(found_sums, grouped, [
                        len(indices),
                        sum(map(Decimal, map(costs.__getitem__, indices)), Decimal(0)),
                        sum(map(counts, map(prompts.__getitem__, indices))),
                        sum(map(counts, map(completions.__getitem__, indices))),
                        sum(map(counts, map(cached.__getitem__, indices))),
                    ])  # fmt: skip
            for row in extra:
                if (user is None or row.user == user) and (span is None or row.time in span):
                    if key in ("day", "hour"):
                        if row.time is None:
                            continue
                        grouped = row.time[: 10 if key == "day" else 13]
                    else:
                        grouped = row.user if key == "user" else row.model
                    add_sums(found_sums, grouped, [1, row.cost, *row[4:7]])
    return found_sums


_DAY, _HOUR = itemgetter(slice(0, 10)), itemgetter(slice(0, 13))


def add_sums(into: dict[Any, list[Any]], key: Any, sums: list[Any]) -> None:
    """``sums`` ([charges, cost, tokens...]) added to ``into[key]``, in the current decimal
    context (:data:`~budgetctl.core.money.EXACT` for money: the default one rounds)."""
    acc = into.get(key)
    if acc is None:
        into[key] = list(sums)
    else:
        for position in range(5):
            acc[position] += sums[position]


def _chunks(text: str) -> Iterator[list[tuple[str, ...]]]:
    """``_LINE``'s matches in ``text``, a megabyte of lines at a time: a chunk's matches (13
    strings a line) are dropped before the next is read, so their memory is reused instead of
    growing the process by 60 MB a 100,000 charges (the page faults of which cost as much as a
    tenth of a report)."""
    end = len(text) - 1 if text.endswith("\n") else len(text)
    pattern = re.compile(_LINE, re.MULTILINE | re.ASCII)  # \\d: 0-9, not any digit
    start = 0
    while start < end:
        stop = text.find("\n", start + _CHUNK, end)
        stop = end if stop < 0 else stop
        yield pattern.findall(text, start, stop)
        start = stop + 1


_CHUNK = 1 << 20


def _rows(found: list[tuple[str, ...]]) -> list[Spend]:
    """The rows of lines matched by ``_LINE``, built column by column by C code (``map``,
    ``zip``): no Python code runs per row, which halves the time of a loop that builds each."""
    if not found:
        return []
    (_, times, users, models, costs, prompts, completions, cached, request_ids, estimated,
     hold_ids, held, _) = zip(*found, strict=True)  # fmt: skip
    absent = {"": None}.get  # absent(text, text): None for "" (a group that matched nothing)
    counts = _Counts().__getitem__  # token counts repeat: int() once a distinct text
    columns = zip(
        times,
        users,
        map(Decimal, costs),
        map(absent, models, models),
        map(counts, prompts),
        map(counts, completions),
        map(counts, cached),
        map(absent, request_ids, request_ids),
        map(bool, estimated),
        map(absent, hold_ids, hold_ids),
        map(_amount, held) if any(held) else repeat(None, len(held)),
        strict=True,
    )
    return list(map(tuple.__new__, repeat(Spend), columns))


class _Counts(dict[str, int]):
    """Token counts by their text, each converted once (a dict lookup is a fifth of ``int()``)."""

    def __missing__(self, text: str) -> int:
        value = self[text] = int(text)
        return value


def _amount(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _decode(lines: list[str]) -> list[Spend | None] | None:
    """Each line's spend row (None for another event), read the general way; None when one is
    not an event."""
    try:
        whole = jsontext.loads("[" + ",".join(lines) + "]")
        if not isinstance(whole, list) or len(whole) != len(lines):
            return None
        return [of_event(events.from_json(raw)) for raw in whole]
    except (ValueError, events.EventError):  # JSONDecodeError is a ValueError
        return None


class TimeRange:
    """[since, until) decided on a time's text as format_utc writes it, exactly: compared to the
    second as text (``YYYY-MM-DDTHH:MM:SS``, the first 19 characters, sort as the times do),
    parsed only in the seconds ``since`` and ``until`` fall in (``.5Z`` sorts before ``Z`` as
    text, so the fraction cannot be compared that way)."""

    def __init__(self, since: datetime | None, until: datetime | None) -> None:
        self.since, self.until = since, until
        self.low = format_utc(since)[:19] if since is not None else None
        self.high = format_utc(until)[:19] if until is not None else None

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False  # no time (an event written before 0.2): in no range
        second = text[:19]
        if self.low is not None and second <= self.low:
            if second < self.low:
                return False
            assert self.since is not None
            if parse_utc(text) < self.since:
                return False
        if self.high is not None and second >= self.high:
            if second > self.high:
                return False
            assert self.until is not None
            if parse_utc(text) >= self.until:
                return False
        return True


def in_range(rows: list[Spend], since: datetime | None, until: datetime | None) -> list[Spend]:
    """The rows recorded in [since, until) (one without a time is in no range)."""
    if since is None and until is None:
        return rows
    span = TimeRange(since, until)
    return [row for row in rows if row.time in span]


__all__ = [
    "Spend",
    "TimeRange",
    "add_sums",
    "from_events",
    "in_range",
    "of_event",
    "parse",
    "read",
    "sums",
]
