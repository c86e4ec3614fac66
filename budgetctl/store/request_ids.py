"""The request ids a project has charged, indexed so a charge looks one up without reading them all.

``<project>+request-ids.sqlite`` (the standard library's sqlite3; WAL journal, ``synchronous=FULL``)
maps each id to the byte offset of its ``charge`` event in the history, and the charge's time:

    CREATE TABLE request_ids (id TEXT PRIMARY KEY, offset INTEGER, seen INTEGER) WITHOUT ROWID

The history is the truth and the index only points into it. An id counts as remembered only when
its offset is inside the history the state counts and the line there is a charge with that id;
the charge's user, cost, model and token counts are read from that line. The store writes an id's
row after appending its charge to the history and before replacing the state, so whatever instant
a process is killed at:

- before the state's replace: the row points past the history the state counts (or, once the next
  writer has cut that tail off and appended, at a line that is not this charge): not remembered,
  and the charge is not in the balance either;
- after it: the charge and its id are both there.

So an id is remembered if and only if its charge committed, and a state restored from a backup
forgets, with the charges it lost, their ids. Rows older than :data:`rules.REQUEST_ID_TTL` (by
:func:`rules.request_id_horizon`, never by a time a user supplies) are deleted when new ids are
written.

An index that is missing, or was never finished (``user_version`` 0: a process killed while
building it), is built from the history the state counts, in one sqlite transaction; so is the
index of a 0.1 state, whose ids were kept inline (``request_ids``, id -> time) and are moved here
on its first write. A charge thus reads one B-tree path and one history line, at any number of ids.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budgetctl.core.periods import UTC, format_utc
from budgetctl.core.rules import RememberedCharge, hold_key
from budgetctl.errors import CorruptStateError, StorageIOError

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE request_ids (id TEXT PRIMARY KEY NOT NULL, offset INTEGER, seen INTEGER NOT "
    "NULL) WITHOUT ROWID",
    "CREATE INDEX request_ids_seen ON request_ids (seen)",
)
_MARK = b'"request_id":'  # how a history line that may carry an id is spotted before parsing it
_HOLD_MARK = b'"hold_id":'  # a commit: remembered under its hold's key too


def wall_clock() -> datetime:
    """The machine's clock, the bound a supplied time cannot pass (see request_id_horizon)."""
    return datetime.now(UTC)


def remembered(event: Mapping[str, Any]) -> RememberedCharge:
    """The charge a history ``charge`` event (or an inline entry of the same fields) records."""
    try:
        return RememberedCharge(
            user=str(event["user"]),
            cost=Decimal(event["cost"]),
            model=event.get("model"),
            prompt_tokens=int(event.get("prompt_tokens") or 0),
            completion_tokens=int(event.get("completion_tokens") or 0),
            cached_tokens=int(event.get("cached_tokens") or 0),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise ValueError("not a charge") from None


_EPOCH = datetime(1970, 1, 1)
_DECODER = json.JSONDecoder()


def _epoch(time_text: Any) -> int:
    """Epoch seconds of a stored UTC time (``2026-11-03T09:13:02Z``); 0 if it is not one."""
    try:
        return int((datetime.fromisoformat(time_text[:-1]) - _EPOCH).total_seconds())
    except (TypeError, ValueError):
        return 0


class RequestIdIndex:
    """The index of one project (see the module docstring). Used under the project's lock, except
    :meth:`find` with ``build=False`` (a dry run), which only reads."""

    def __init__(self, path: Path, history_path: Path) -> None:
        self.path = path
        self.history_path = history_path
        self._db: sqlite3.Connection | None = None

    # --- the connection --------------------------------------------------------------------------

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """The open index; None when there is no file and ``create`` is False."""
        if self._db is not None:
            return self._db
        import sqlite3  # only a charge with a request id pays for it (about 3 ms)

        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            if not create:
                return None
        except OSError as exc:
            raise StorageIOError(self.path, f"cannot read ({exc.strerror})") from None
        else:
            if not stat.S_ISREG(info.st_mode):
                raise StorageIOError(self.path, "is not a regular file (a link?); move it aside")
        try:
            if create:
                # created 0600 like every other file of the project, before sqlite opens it
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        except OSError as exc:
            raise StorageIOError(self.path, f"cannot open ({exc.strerror})") from None
        self._db = db
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _failure(self, exc: Exception) -> StorageIOError | CorruptStateError:
        import sqlite3

        if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
            return CorruptStateError(self.path, f"not a request id index ({exc})")
        return StorageIOError(self.path, f"cannot use the request id index ({exc})")

    def _built(self, db: sqlite3.Connection) -> bool:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CorruptStateError(
                self.path, f"index version {version} is newer than this budgetctl supports"
            )
        return version == SCHEMA_VERSION

    # --- reading ---------------------------------------------------------------------------------

    def find(
        self, request_id: str, size: int, horizon: datetime, *, build: bool
    ) -> RememberedCharge | None:
        """What ``request_id`` was charged for, if its charge is in the first ``size`` bytes of the
        history and not before ``horizon``; None if it was never charged (or is forgotten).
        ``build``: build a missing index first (under the lock); else (a dry run) read the
        history for it instead."""
        import sqlite3

        try:
            db = self._connect(create=build)
            if db is None or not self._built(db):
                if not build:
                    return self.scan(request_id, size, horizon)
                self.build(size, {})
                assert self._db is not None
                db = self._db
            row = db.execute(
                "SELECT offset, seen FROM request_ids WHERE id = ?", (request_id,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        if row is None or row[1] < int(horizon.timestamp()):
            return None
        if row[0] is None:  # a 0.1 id whose charge was not in the history: details unknown
            return RememberedCharge(user="", cost=Decimal(0), known=False)
        return self._charge_at(row[0], size, request_id)

    def _charge_at(self, offset: int, size: int, request_id: str) -> RememberedCharge | None:
        """The charge of ``request_id`` at ``offset``, if the committed history has it there."""
        if not 0 <= offset < size:
            return None  # written by a transaction that never committed
        try:
            with open(self.history_path, "rb") as handle:
                handle.seek(offset)
                line = handle.readline(max(size - offset, 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageIOError(self.history_path, f"cannot read ({exc.strerror})") from None
        try:
            event = json.loads(line)
            if request_id not in _keys(event):
                return None  # the tail it pointed at was cut, and other events written there
            return remembered(event)
        except (ValueError, AttributeError):
            return None

    def scan(self, request_id: str, size: int, horizon: datetime) -> RememberedCharge | None:
        """:meth:`find` by reading the history (no index yet: a dry run, a 0.1 state)."""
        found = None
        for rid, _, event in _charges(self.history_path, size):
            if rid == request_id:
                found = event
        if found is None or _epoch(found.get("time")) < int(horizon.timestamp()):
            return None
        return remembered(found)

    # --- writing (under the project's lock) ------------------------------------------------------

    def add(self, entries: Iterable[tuple[str, int, datetime]], horizon: datetime) -> None:
        """Remember ``entries`` (id, history offset of its charge, charge time), durably, and
        forget the ids charged before ``horizon``. Called between the history's append and the
        state's replace."""
        import sqlite3

        rows = [(rid, offset, int(moment.timestamp())) for rid, offset, moment in entries]
        try:
            db = self._connect(create=True)
            assert db is not None
            if not self._built(db):
                raise CorruptStateError(self.path, "the index was not built before use")
            with _transaction(db):
                db.executemany("INSERT OR REPLACE INTO request_ids VALUES (?, ?, ?)", rows)
                db.execute("DELETE FROM request_ids WHERE seen < ?", (int(horizon.timestamp()),))
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None

    def build(self, size: int, inline: Mapping[str, Any]) -> None:
        """(Re)build the index from the first ``size`` bytes of the history, plus a 0.1 state's
        ``inline`` ids (id -> time); in one transaction: a kill leaves it unbuilt, never half."""
        import sqlite3

        rows: dict[str, tuple[int | None, int]] = {}
        for rid, offset, event in _charges(self.history_path, size):
            rows[rid] = (offset, _epoch(event.get("time")))
        for rid, seen in inline.items():
            if rid not in rows:
                rows[rid] = (None, _epoch(seen))
        try:
            db = self._connect(create=True)
            assert db is not None
            with _transaction(db):
                db.execute("DROP TABLE IF EXISTS request_ids")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.executemany(
                    "INSERT INTO request_ids VALUES (?, ?, ?)",
                    ((rid, offset, seen) for rid, (offset, seen) in rows.items()),
                )
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed (durably) if the block completes, else rolled back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _keys(event: Any) -> tuple[str, ...]:
    """The idempotency keys of a history event read as JSON (rules.idempotency_keys)."""
    if not isinstance(event, dict):
        return ()
    kind, rid = event.get("type"), event.get("request_id")
    keys: tuple[str, ...] = (rid,) if isinstance(rid, str) and kind in ("charge", "commit") else ()
    hold_id = event.get("hold_id")
    if kind == "commit" and isinstance(hold_id, str):
        keys += (hold_key(hold_id),)
    return keys


def _charges(path: Path, size: int) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(key, offset, event) of every charge or commit with an idempotency key (a request id, a
    hold's) in the first ``size`` bytes."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; a generator)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageIOError(path, f"cannot read ({exc.strerror})") from None
    with handle:
        offset = 0
        while offset < size:
            line = handle.readline(size - offset)
            if not line:
                break
            if _MARK in line or _HOLD_MARK in line:
                try:
                    event = _DECODER.decode(line.decode("utf-8"))
                except ValueError:
                    raise CorruptStateError(path, f"no JSON event at byte {offset}") from None
                for key in _keys(event):
                    yield key, offset, event
            offset += len(line)


# --- ids kept inline in a document (a 0.1 state; the hosted store's budgetctl record) ----------


def inline_find(
    ids: Mapping[str, Any], request_id: str, horizon: datetime
) -> RememberedCharge | None:
    """What an inline entry says ``request_id`` was charged for (None if it is not there or was
    charged before ``horizon``): an entry is the charge's fields and ``time``, or (written by
    0.1) only the time, whose charge is then unknown."""
    entry = ids.get(request_id)
    seen = entry.get("time") if isinstance(entry, dict) else entry
    if entry is None or (isinstance(seen, str) and _epoch(seen) < int(horizon.timestamp())):
        return None
    if isinstance(entry, dict):
        try:
            return remembered(entry)
        except ValueError:
            pass
    return RememberedCharge(user="", cost=Decimal(0), known=False)


def inline_entry(charge: RememberedCharge, now: datetime) -> dict[str, Any]:
    from budgetctl.core.money import to_text

    return {
        "time": format_utc(now),
        "user": charge.user,
        "cost": to_text(charge.cost),
        "model": charge.model,
        "prompt_tokens": charge.prompt_tokens,
        "completion_tokens": charge.completion_tokens,
        "cached_tokens": charge.cached_tokens,
    }


def inline_prune(ids: dict[str, Any], horizon: datetime) -> None:
    """Forget inline ids charged before ``horizon`` (oldest first; stops at the first young one)."""
    limit = format_utc(horizon.replace(microsecond=0))
    stale = []
    for rid, entry in ids.items():
        seen = entry.get("time") if isinstance(entry, dict) else entry
        if isinstance(seen, str) and seen >= limit:
            break
        stale.append(rid)
    for rid in stale:
        del ids[rid]
