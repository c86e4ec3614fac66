"""The project's history file: append-only JSON Lines, and the links that chain closed periods.

Writing: events become compact JSON lines, appended by the store after the ones the state already
counts. Each ``period`` (``cap-period``) event carries ``prev``, the byte offset of its budget's
previous one, and the budget's record carries ``last_period``, the offset of its latest: closed
periods are read back by following those links, never by scanning the history.

Reading: only the bytes the state counts (``history.size``) are read; a tail beyond them belongs
to a transaction that never committed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from budgetctl.core import jsontext
from budgetctl.errors import CorruptStateError, StorageIOError
from budgetctl.store import files, spend

# One encoder for everything written: json.dumps() with options builds a new one per call.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The same, set up once for every history line (see encode_lines); None without json's C part.
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_EVENT_ENCODER: Any = _C_MAKE_ENCODER and _C_MAKE_ENCODER(
    None, ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
)


LINK = "last_period"  # a record's link: the history offset of its latest closed period


def relink(record: dict[str, Any], previous: Any) -> dict[str, Any]:
    """``record`` with the history link of the record it replaces (if that had one)."""
    if isinstance(previous, dict) and LINK in previous:
        record[LINK] = previous[LINK]
    return record


def link_and_encode(events: Iterable[dict[str, Any]], doc: dict[str, Any], offset: int) -> bytes:
    """The history lines of ``events``, appended at byte ``offset``, with the closed periods
    chained: each ``period`` (``cap-period``) event gets ``prev``, the offset of its budget's
    previous one, and the budget's record gets this one's offset as ``last_period``.

    So the state file keeps no closed periods (they would soon be most of it, and every charge
    rewrites it), and reading one budget's recent periods is a dozen seeks into the history.
    """
    users = doc["users"]
    lines: list[str] = []
    for event in events:
        kind = event["type"]
        record = None
        if kind == "period":
            record = users.get(event.get("user"))
        elif kind == "cap-period":
            record = doc.get("cap")
        if isinstance(record, dict):
            event["prev"] = record.get(LINK)
            record[LINK] = offset
        line = _period_line(event) if kind == "period" else None
        if line is None:
            line = _encode_one(event) + "\n"
        lines.append(line)
        offset += len(line) if line.isascii() else len(line.encode("utf-8"))  # bytes, not chars
    return "".join(lines).encode("utf-8")


# A closed period's event as PeriodClosed.to_json writes it, with its link: the keys in this order.
_PERIOD_KEYS = ("type", "time", "user", "start", "end", "spent", "budget", "reason", "prev")
_PERIOD_LINE = "{" + ",".join(f'"{key}":%s' for key in _PERIOD_KEYS) + "}\n"
_quote = json.encoder.encode_basestring  # what ENCODER quotes a string with (ensure_ascii=False)


def _period_line(event: dict[str, Any]) -> str | None:
    """``event``'s history line, exactly as ENCODER writes it, when it is a closed period's in
    the usual shape (else None): a reset-due writes one per due budget, and the general encoder
    builds a list of twenty strings for each (a fifth of the time here)."""
    if tuple(event) != _PERIOD_KEYS:
        return None
    kind, time, user, start, end, spent, budget, reason, prev = event.values()
    if prev is None:
        prev = "null"
    elif prev.__class__ is int:
        prev = str(prev)
    else:
        return None
    try:  # (_quote takes text only: anything else is the general encoder's)
        return _PERIOD_LINE % (
            _quote(kind),
            "null" if time is None else _quote(time),
            _quote(user),
            _quote(start),
            _quote(end),
            _quote(spent),
            _quote(budget),
            _quote(reason),
            prev,
        )
    except TypeError:
        return None


def _encode_one(event: dict[str, Any]) -> str:
    if _EVENT_ENCODER is None:  # an interpreter without json's C accelerator
        return ENCODER.encode(event)
    return "".join(_EVENT_ENCODER(event, 0))


def encode_lines(events: list[dict[str, Any]]) -> bytes:
    """History events as JSON Lines, compact, exactly as ``ENCODER`` writes each one.

    One C encoder serves every event: ``JSONEncoder.encode`` sets up a new one per call, and that
    was 40% of encoding the 100,000 events of a reset-due (0.29 s -> 0.17 s). Events are flat
    dicts of text, numbers and None, so the circular-reference check is not needed.
    """
    if _EVENT_ENCODER is None:  # an interpreter without json's C accelerator
        encode = ENCODER.encode
        return "".join([encode(e) + "\n" for e in events]).encode("utf-8")
    encode_one = _EVENT_ENCODER
    return "".join(["".join(encode_one(e, 0)) + "\n" for e in events]).encode("utf-8")


def read_periods(paths: Sequence[Path], size: int, offset: Any, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` closed-period events, newest first, following links from ``offset``.

    ``paths``: the history's name, then the one budgetctl 0.1 gave it (the first that exists).
    """
    found: list[dict[str, Any]] = []
    path = paths[0]
    try:
        fd, path = files.open_first(paths, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            while offset is not None and len(found) < limit:
                if (
                    not isinstance(offset, int)
                    or isinstance(offset, bool)
                    or not 0 <= offset < size
                ):
                    raise CorruptStateError(
                        path, f"a state's link into the history ({offset!r}) is wrong"
                    )
                handle.seek(offset)
                try:
                    event = jsontext.loads(handle.readline())
                    if event["type"] not in ("period", "cap-period"):
                        raise ValueError(event["type"])
                except (ValueError, KeyError, TypeError):
                    raise CorruptStateError(path, f"no closed period at byte {offset}") from None
                found.append(event)
                offset = event.get("prev")
    except FileNotFoundError:
        raise CorruptStateError(
            path, "the history is missing but the state links into it"
        ) from None
    except OSError as exc:
        raise StorageIOError(path, f"cannot read ({exc.strerror})") from None
    return found


def read_events(
    paths: Sequence[Path],
    size: int,
    user: str | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The first ``size`` bytes' events, newest first (only ``user``'s, recorded at ``since`` or
    later and before ``until``, at most ``limit``).

    ``paths`` as for :func:`read_periods`. The file is read once. When every event is wanted
    (no ``limit``), the lines are parsed in one ``json.loads``; with a user or a range, lines
    that cannot hold a match are skipped before they are parsed (see :class:`Sieve`).
    """
    path, data = _read(paths, size)
    lines = data.splitlines()
    numbers: Sequence[int] = range(len(lines))
    sieve = Sieve(user, since, until)
    if sieve.active and limit is None:
        numbers = [n for n in numbers if sieve.may_match(lines[n])]
        lines = [lines[n] for n in numbers]
    whole = _parse_all(lines) if limit is None else None
    if whole is not None and user is None and not sieve.timed:
        whole.reverse()
        return whole
    events: list[dict[str, Any]] = []
    for index in range(len(lines) - 1, -1, -1):
        if whole is not None:
            event = whole[index]
        else:
            if sieve.active and not sieve.may_match(lines[index]):
                continue
            try:
                event = jsontext.loads(lines[index])
            except (json.JSONDecodeError, UnicodeDecodeError):
                number = numbers[index] + 1
                raise CorruptStateError(path, f"line {number} is not valid JSON") from None
        if user is not None and event.get("user") != user:
            continue
        if sieve.timed and not sieve.in_range(event.get("time")):
            continue
        events.append(event)
        if limit is not None and len(events) >= limit:
            break
    return events


def read_spend(
    paths: Sequence[Path],
    size: int,
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[spend.Spend] | None:
    """The charges and commits of the first ``size`` bytes, oldest first (only ``user``'s,
    recorded in [since, until)), read without typed events (:func:`budgetctl.store.spend.parse`);
    None when a line is not one the typed path reads: :func:`read_events` then says which.

    With a user or a range, the lines that cannot hold a match are skipped first, as for
    :func:`read_events`."""
    text = _spend_text(paths, size, user, since, until)
    rows = None if text is None else spend.parse(text)
    if rows is None:
        return None
    if user is not None:
        rows = [row for row in rows if row.user == user]
    return spend.in_range(rows, since, until)


def read_spend_totals(
    paths: Sequence[Path],
    size: int,
    key: str,
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[Any, list[Any]] | None:
    """The sums of :func:`read_spend`'s rows per ``key`` (:func:`budgetctl.store.spend.sums`),
    without building the rows; None where :func:`read_spend` would be."""
    text = _spend_text(paths, size, user, since, until)
    if text is None:
        return None
    timed = since is not None or until is not None
    return spend.sums(text, key, user, spend.TimeRange(since, until) if timed else None)


def _spend_text(
    paths: Sequence[Path],
    size: int,
    user: str | None,
    since: datetime | None,
    until: datetime | None,
) -> str | None:
    """The history's text, less the lines that cannot hold ``user``'s spend in [since, until)
    (:class:`Sieve`); None when it is not UTF-8."""
    data = _read(paths, size)[1]
    sieve = Sieve(user, since, until)
    if sieve.active:
        data = b"\n".join([line for line in data.splitlines() if sieve.may_match(line)])
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _read(paths: Sequence[Path], size: int) -> tuple[Path, bytes]:
    """The history's first ``size`` bytes (and the name it was read under)."""
    path = paths[0]
    try:
        fd, path = files.open_first(paths, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(size)
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise StorageIOError(path, f"cannot read ({exc.strerror})") from None
    if len(data) < size:
        raise CorruptStateError(
            path, f"the history is shorter than the {size} bytes the state counts"
        )
    return path, data


def _parse_all(lines: list[bytes]) -> list[Any] | None:
    """Every line's JSON value, from one ``json.loads`` of the lines as an array: a third of
    the time of a call per line (0.65 s -> 0.2 s for 100,000 charges). None when that is not
    exactly one value a line (a line that is not JSON, or two values on one): the caller then
    reads line by line and names the bad one."""
    try:
        found = jsontext.loads(b"[" + b",".join(lines) + b"]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return found if isinstance(found, list) and len(found) == len(lines) else None


_TIME_KEY = b'"time":"'


class Sieve:
    """Which history lines may hold an event of ``user`` in [since, until), and which parsed
    events do.

    On the raw line (:meth:`may_match`, a superset: a line it cannot read is kept): the user's
    name in quotes must appear (for a name written the same by every JSON encoder: printable
    ASCII without quotes or backslashes), and the time's second (``YYYY-MM-DDTHH:MM:SS``, the
    first 19 characters of :func:`~budgetctl.core.periods.format_utc` text, which sort as the
    times do) must not be before ``since``'s or after ``until``'s. A quote inside a JSON string
    is escaped, so ``"time":"`` can only be the key. On the parsed event (:meth:`in_range`):
    exact, parsing only the times in the seconds ``since`` and ``until`` fall in (``.5Z`` sorts
    before ``Z`` as text, so the fraction cannot be compared that way).
    """

    def __init__(self, user: str | None, since: datetime | None, until: datetime | None) -> None:
        self.span = spend.TimeRange(since, until)
        self.timed = since is not None or until is not None
        self.low, self.high = self.span.low, self.span.high
        self.low_bytes = self.low.encode() if self.low is not None else None
        self.high_bytes = self.high.encode() if self.high is not None else None
        name = user or ""
        plain = name.isascii() and name.isprintable() and '"' not in name and "\\" not in name
        self.needle = f'"{name}"'.encode() if name and plain else None
        self.active = self.timed or self.needle is not None

    def may_match(self, line: bytes) -> bool:
        if not (line.startswith(b"{") and line.endswith(b"}")):
            return True  # not an event as written: kept, so that parsing it says what is wrong
        if self.needle is not None and self.needle not in line:
            return False
        if self.timed:
            at = line.find(_TIME_KEY)
            if at >= 0:
                second = line[at + 8 : at + 27]
                if self.low_bytes is not None and second < self.low_bytes:
                    return False
                if self.high_bytes is not None and second > self.high_bytes:
                    return False
        return True

    def in_range(self, text: Any) -> bool:
        return text in self.span
