"""The PostgreSQL store: projects are rows, every ledger operation one transaction.

How an operation runs (docs/scale-out.md has the SQL):

1. ``BEGIN``; lock the rows the operation touches, in one order everywhere (the users' budget
   rows by name, then the project cap's row, then the project's holds: ``SELECT ... FOR UPDATE``),
   then read the database's clock (``clock_timestamp()``): every transaction that touches a row
   reads a later time than the one before it, whatever the hosts' clocks say;
2. the operation of :mod:`budgetctl.core.operations` decides, on those rows (:class:`PgState`);
3. what it changed is written (``UPDATE``/``INSERT``/``DELETE``) with its history rows and
   request ids, and ``COMMIT``: the balance and the history that explains it commit together.

Reads and locks go to the server as one pipeline, and so do the writes and the commit: an
operation is two or three round trips. A charge that is a plain increment is one statement instead
(one round trip, ``one_statement.py``), and falls back to the above when it is not.
A serialization failure, a deadlock, or a unique key taken by a
concurrent transaction (the same request id, the same new user) rolls back and runs the whole
operation again, which then sees what the other one committed.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from budgetctl.core import events, operations, rules
from budgetctl.core import hooks as core_hooks
from budgetctl.core.money import ZERO, add, to_text
from budgetctl.core.operations import (
    ChargeOutcome,
    CommitOutcome,
    ProjectView,
    ReserveOutcome,
    ResetDue,
    Standing,
)
from budgetctl.core.periods import UTC, Duration, parse_duration
from budgetctl.core.rules import (
    CAP,
    KEEP,
    Budget,
    ChargeRequest,
    ClosedPeriod,
    Hold,
    Keep,
    RememberedCharge,
)
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    CorruptStateError,
    ProjectExistsError,
    StateError,
    StorageIOError,
    UnknownModelError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
)
from budgetctl.store import prices_file, snapshot
from budgetctl.store import spend as spending
from budgetctl.store.postgres import one_statement, schema

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TABLES = (  # a project's rows, the project's own last
    "budgetctl_hooks",
    "budgetctl_outbox",
    "budgetctl_budgets",
    "budgetctl_caps",
    "budgetctl_holds",
    "budgetctl_request_ids",
    "budgetctl_history",
    "budgetctl_prices",
    "budgetctl_projects",
)
RETRIES = 30  # attempts of one operation against serialization failures and deadlocks
_COLUMNS = (
    "total_budget, current_cost, model_cost, duration, timezone, start_at, created_at, "
    "period_start, next_reset_at, alert_at"
)
_SET = ", ".join(f"{column.strip()} = %s" for column in _COLUMNS.split(","))
_HISTORY_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s)"


def history_rows(
    project: str,
    user: str | None,
    since: datetime | None,
    until: datetime | None,
    *,
    spend: bool = False,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of a project's history rows: only ``user``'s, only
    ``charge`` and ``commit`` rows with ``spend``, and ``at`` in [since, until), which the primary
    key (project, at, ...) or, for one user, (project, name, at) serves."""
    where = "project = %s"
    params: list[Any] = [project]
    if spend:
        where += " AND type IN ('charge', 'commit')"
    if user is not None:
        where += " AND name = %s"
        params.append(user)
    if since is not None:
        where += " AND at >= %s"
        params.append(since)
    if until is not None:
        where += " AND at < %s"
        params.append(until)
    return where, params


class SchemaMissingError(StateError):
    """The database has no budgetctl schema, or an older one."""


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError(
            "a database URL needs the PostgreSQL driver: pip install 'budgetctl[postgres]'"
        ) from None
    return psycopg


def redact(url: str) -> str:
    """``url`` without its password (for messages)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "the database URL"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, ""))


def check_url(url: str) -> str:
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(
            f"{url!r} is not a PostgreSQL URL: give postgresql://USER@HOST:PORT/DATABASE"
        )
    return url


class Database:
    """One connection to the database at ``url`` (opened on first use), and the schema's state.
    The connection is in autocommit: every transaction is an explicit ``conn.transaction()`` or
    ``BEGIN`` (a charge in one statement is its own)."""

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        self.url = check_url(url)
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._checked = False
        self._driver: _Driver | None = None  # run_prepared's, for _conn

    @property
    def where(self) -> str:
        return redact(self.url)

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            psycopg = _import_psycopg()
            try:
                self._conn = psycopg.connect(
                    self.url, connect_timeout=max(1, int(self.connect_timeout)), autocommit=True
                )
            except psycopg.Error as exc:
                raise self.unreachable(exc) from None
        return self._conn

    def run_prepared(
        self, name: bytes, sql: bytes, types: Sequence[int], params: Sequence[bytes | None]
    ) -> tuple[Any, ...] | None:
        """Run one statement, prepared under ``name`` on the connection the first time, with
        ``params`` in PostgreSQL's text form; its first row (binary, loaded by psycopg's own
        loaders), None when it returns none. A driver error goes up as psycopg's.

        This is what ``conn.execute(sql, params, prepare=True)`` does, through libpq's calls
        and psycopg's wait loop (so Ctrl-C still cancels the statement in the server), without
        the cursor, the query's conversion and the parameters' adaptation: about 40 µs of the
        client's CPU a charge (docs/performance.md). For the hot path only."""
        conn = self.connection()
        driver = self._driver
        if driver is None or driver.conn is not conn:  # a new session: nothing prepared
            self._driver = driver = _Driver(conn)
        pgconn = conn.pgconn
        with conn.lock:
            for attempt in (1, 2):
                if name not in driver.prepared:
                    pgconn.send_prepare(name, sql, types)
                    (prepared,) = conn.wait(driver.execute(pgconn))
                    # the name is the text's (one_statement.prepared): a session that has it
                    # (a pooler's, handed over) has this statement
                    if prepared.status != driver.COMMAND_OK:
                        error = driver.error(prepared)
                        if not isinstance(error, driver.errors.DuplicatePreparedStatement):
                            raise error
                    driver.prepared.add(name)
                pgconn.send_query_prepared(name, params, result_format=driver.BINARY)
                (result,) = conn.wait(driver.execute(pgconn))
                if result.status == driver.TUPLES_OK:
                    break
                error = driver.error(result)
                if attempt == 1 and isinstance(error, driver.errors.InvalidSqlStatementName):
                    driver.prepared.discard(name)  # DEALLOCATE ALL or DISCARD ALL ran
                    continue
                raise error
            if not result.ntuples:
                return None
            loader = driver.loader  # one per connection: used under its lock
            loader.set_pgresult(result)
            row: tuple[Any, ...] = loader.load_row(0, tuple)
        return row

    def unreachable(self, exc: Exception) -> StorageIOError:
        return self._failed(
            exc,
            "cannot reach the PostgreSQL server",
            "nothing was changed; check the server and the URL (--database-url, "
            "BUDGETCTL_DATABASE_URL)",
        )

    def _failed(self, exc: Exception, what: str, hint: str) -> StorageIOError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return StorageIOError(self.where, f"{what} ({reason})", hint)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def version(self) -> int:
        """The schema version of the database (0: none)."""
        conn = self.connection()
        with self.failures():
            try:
                with conn.transaction():
                    row = conn.execute(
                        f"SELECT max(version) FROM {schema.VERSION_TABLE}"
                    ).fetchone()
            except _import_psycopg().errors.UndefinedTable:
                return 0
        return int(row[0] or 0) if row else 0

    def check_schema(self) -> None:
        if self._checked:
            return
        found = self.version()
        if found < schema.VERSION:
            raise SchemaMissingError(
                self.where,
                f"the database has budgetctl schema version {found}, this budgetctl needs "
                f"{schema.VERSION}",
                "run 'budgetctl db migrate' first",
            )
        if found > schema.VERSION:
            raise SchemaMissingError(
                self.where,
                f"the database has budgetctl schema version {found}, newer than this "
                f"budgetctl knows ({schema.VERSION})",
                "upgrade budgetctl",
            )
        self._checked = True

    def migrate(self) -> tuple[int, int]:
        """Apply the migrations the database lacks; (version before, version after). Safe to
        run at once from several hosts: each migration commits with its version row, and a
        second runner's insert of the same version fails and rolls its copy back."""
        before = self.version()
        conn = self.connection()
        psycopg = _import_psycopg()
        for number, statements in enumerate(schema.MIGRATIONS, start=1):
            if number <= before:
                continue
            try:
                with self.failures(), conn.transaction():
                    if number == 1:
                        conn.execute(statements[0])
                        rest = statements[1:]
                    else:
                        rest = statements
                    conn.execute(
                        f"INSERT INTO {schema.VERSION_TABLE} VALUES (%s, clock_timestamp())",
                        (number,),
                    )
                    for statement in rest:
                        conn.execute(statement)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                continue  # another runner applied it
        self._checked = False
        return before, self.version()

    def projects(self) -> list[str]:
        """The names of the projects in the database, sorted (as the data dir's are)."""
        self.check_schema()
        conn = self.connection()
        with self.failures(), conn.transaction():
            rows = conn.execute("SELECT project FROM budgetctl_projects").fetchall()
        return sorted(row[0] for row in rows)

    @contextmanager
    def failures(self) -> Iterator[None]:
        """Driver errors as budgetctl's: a lost connection is StorageIOError (exit 1); a
        serialization failure or a deadlock goes up as it is (the operation is run again)."""
        psycopg = _import_psycopg()
        try:
            yield
        except psycopg.Error as exc:
            # psycopg 3 derives these from OperationalError, as it does a lost connection: they
            # must be told apart first, or a deadlock would read as "cannot reach the server".
            if _retryable(exc) and not _broken(self._conn):
                raise
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                self.close()
                raise self.unreachable(exc) from None
            if isinstance(exc, psycopg.OperationalError):
                # the server answered, and failed the operation (a protocol violation behind a
                # pooler, a statement timeout, ...): not "cannot reach"
                self.close()
                raise self._failed(
                    exc,
                    "the PostgreSQL server failed the operation",
                    "nothing was changed; run it again, and check the server's log if it fails "
                    "again",
                ) from None
            raise


class _Driver:
    """What Database.run_prepared keeps for one connection: the statements prepared on it, the
    loader of their rows, and what it uses of psycopg, looked up once."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        psycopg = _import_psycopg()
        from psycopg import pq
        from psycopg.adapt import Transformer
        from psycopg.generators import execute

        self.conn = conn
        self.prepared: set[bytes] = set()
        self.errors = psycopg.errors
        self.execute = execute
        self.loader = Transformer(conn)
        self.encoding = conn.info.encoding
        self.COMMAND_OK = pq.ExecStatus.COMMAND_OK
        self.TUPLES_OK = pq.ExecStatus.TUPLES_OK
        self.BINARY = pq.Format.BINARY

    def error(self, result: Any) -> Exception:
        error: Exception = self.errors.error_from_result(result, self.encoding)
        return error


def _lock_all_if_no_cap(state: PgState) -> None:
    """Before a cap is set where there is none: lock every budget row of the project. A charge
    that has a row locked then commits first, and the new cap's spend (counted from the history
    after these locks) has it; a charge in one statement that waits for a row sees its
    ``capped`` change and falls back, to be counted against the cap. No cap row exists to be
    locked before the users', so the lock order (users, then the cap) is kept. The project's
    row is locked before all of it (FOR UPDATE), as a creation of users locks it (FOR SHARE):
    no user is created meanwhile, unlocked here and without ``capped``."""
    if state.cap() is None:
        state.lock(list(state.users()), cap=False, holds=False)


# How many users' "has alert thresholds" a store keeps (PostgresStore._alerting).
_ALERTING_KEPT = 100_000


def _retryable(exc: BaseException) -> bool:
    """A serialization failure, a deadlock, a lock not granted or a key a concurrent
    transaction took: the transaction was rolled back and may run again."""
    psycopg = _import_psycopg()
    return isinstance(
        exc,
        (
            psycopg.errors.TransactionRollback,  # 40xxx, SerializationFailure included
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.UniqueViolation,
            psycopg.errors.LockNotAvailable,
        ),
    )


def _broken(conn: psycopg.Connection[Any] | None) -> bool:
    return conn is None or conn.closed or conn.broken


def _budget(user: str, row: Sequence[Any]) -> Budget:
    (total, spent, model_cost, duration, tz, start, created, period_start, next_reset, alert) = row
    return Budget(
        user=user,
        total_budget=total,
        duration=parse_duration(duration) if duration else None,
        timezone=tz,
        start=start.astimezone(UTC) if start else None,
        created_at=created.astimezone(UTC),
        period_start=period_start.astimezone(UTC),
        next_reset_at=next_reset.astimezone(UTC) if next_reset else None,
        current_cost=spent,
        # sorted: the column's key order is json.dumps's (sort_keys) or jsonb's (one_statement.py)
        model_cost={m: Decimal(c) for m, c in sorted(json.loads(model_cost).items())}
        if model_cost != "{}"
        else {},
        alert_at=_decode_alerts(alert),
    )


def _encode_alerts(alerts: Sequence[Decimal]) -> str | None:
    """Alert thresholds in their column: ``"80"``, or ``"50,80,100"`` (schema version 2)."""
    return ",".join(to_text(a) for a in alerts) if alerts else None


def _decode_alerts(text: str | None) -> tuple[Decimal, ...]:
    if not text:
        return ()
    return tuple(sorted(Decimal(part) for part in text.split(",")))


def _values(budget: Budget) -> tuple[Any, ...]:
    return (
        budget.total_budget,
        budget.current_cost,
        json.dumps({m: to_text(c) for m, c in sorted(budget.model_cost.items())}),
        budget.duration.text if budget.duration else None,
        budget.timezone,
        budget.start,
        budget.created_at,
        budget.period_start,
        budget.next_reset_at,
        _encode_alerts(budget.alert_at),
    )


def _held_totals(holds: Iterable[Hold]) -> dict[str | None, Decimal]:
    """What ``holds`` reserve per user, and (under None) in all: the rows' ``held``."""
    totals: dict[str | None, Decimal] = {}
    for hold in holds:
        totals[hold.user] = add(totals.get(hold.user, ZERO), hold.amount)
        totals[None] = add(totals.get(None, ZERO), hold.amount)
    return totals


class PgState:
    """:class:`budgetctl.core.operations.State` over the rows of one transaction."""

    def __init__(
        self,
        store: PostgresStore,
        conn: psycopg.Connection[Any],
        now: datetime,
        pipelined: bool = False,
    ) -> None:
        self.store = store
        self.project = store.project
        self.conn = conn
        # the whole transaction is one pipeline already: no pipeline (and no sync) of its own
        self.pipelined = pipelined
        self.now = now
        self.events: list[events.Event] = []
        self._budgets: dict[str, Budget | None] = {}
        self._existed: set[str] = set()
        self._dirty: dict[str, Budget] = {}
        self._removed: set[str] = set()
        self._cap: Budget | None = None
        self._cap_loaded = False
        self._cap_existed = False
        self._cap_dirty = False
        # the rows' ``held`` as locked (schema version 3): rewritten when the holds change it
        self._held: dict[str, Decimal] = {}
        self._cap_held: Decimal | None = None
        self._holds: dict[str, Hold] | None = None
        self._added: dict[str, Hold] = {}
        self._dropped: set[str] = set()
        self._remember: list[tuple[str, RememberedCharge]] = []
        self._all_users: list[str] | None = None
        self._hooks: list[core_hooks.Hook] | None = None
        self._outbox: list[core_hooks.Delivery] = []
        # Orders this transaction's history rows among those with the same time: the database's
        # clock after the row locks, so transactions that share a row are in commit order.
        self.order = uuid.uuid4().hex

    def _pipeline(self) -> AbstractContextManager[Any]:
        return nullcontext() if self.pipelined else self.conn.pipeline()

    # --- locking reads ---------------------------------------------------------------------------

    def lock(
        self, users: Sequence[str], cap: bool, holds: bool, clock: bool = False
    ) -> datetime | None:
        """Lock (and read) ``users``' rows, the cap's and the project's holds, in that order, in
        one round trip; with ``clock``, then read the database's clock (after the locks)."""
        conn, project = self.conn, self.project
        wanted = sorted(set(users) - set(self._budgets))
        with self._pipeline():
            user_cur = conn.execute(
                f"SELECT name, {_COLUMNS}, held FROM budgetctl_budgets WHERE project = %s "
                "AND name = ANY(%s) ORDER BY name FOR UPDATE",
                (project, wanted),
            )
            cap_cur = (
                conn.execute(
                    f"SELECT {_COLUMNS}, held FROM budgetctl_caps WHERE project = %s FOR UPDATE",
                    (project,),
                )
                if cap and not self._cap_loaded
                else None
            )
            hold_cur = (
                conn.execute(
                    "SELECT hold_id, name, amount, created_at, expires_at FROM budgetctl_holds "
                    "WHERE project = %s ORDER BY created_at, hold_id FOR UPDATE",
                    (project,),
                )
                if holds and self._holds is None
                else None
            )
            clock_cur = conn.execute("SELECT clock_timestamp()") if clock else None
            users_rows = user_cur.fetchall()
            cap_row = cap_cur.fetchone() if cap_cur is not None else None
            hold_rows = hold_cur.fetchall() if hold_cur is not None else None
            clock_row = clock_cur.fetchone() if clock_cur is not None else None
        found = {row[0]: _budget(row[0], row[1:11]) for row in users_rows}
        self._held.update((row[0], row[11]) for row in users_rows)
        for user in wanted:
            self._budgets[user] = found.get(user)
            if user in found:
                self._existed.add(user)
        if cap_cur is not None:
            self._cap_loaded = True
            self._cap = _budget(CAP, cap_row[:10]) if cap_row else None
            self._cap_existed = cap_row is not None
            self._cap_held = cap_row[10] if cap_row else None
        if hold_rows is not None:
            self._holds = {
                row[0]: Hold(row[0], row[1], row[2], row[3].astimezone(UTC), row[4].astimezone(UTC))
                for row in hold_rows
            }
        return clock_row[0].astimezone(UTC) if clock_row else None

    def budget(self, user: str) -> Budget | None:
        if user not in self._budgets:
            self.lock([user], cap=False, holds=False)
        return self._budgets[user]

    def users(self) -> Collection[str]:
        if self._all_users is None:
            rows = self.conn.execute(
                "SELECT name FROM budgetctl_budgets WHERE project = %s ORDER BY name",
                (self.project,),
            ).fetchall()
            self._all_users = [row[0] for row in rows]
        names = [u for u in self._all_users if u not in self._removed]
        names += [u for u in self._dirty if u not in names]
        return names

    def put(self, budget: Budget) -> None:
        self._budgets[budget.user] = budget
        self._dirty[budget.user] = budget
        self._removed.discard(budget.user)

    def remove(self, user: str) -> None:
        self._budgets[user] = None
        self._dirty.pop(user, None)
        self._removed.add(user)

    def cap(self) -> Budget | None:
        if not self._cap_loaded:
            self.lock([], cap=True, holds=False)
        return self._cap

    def put_cap(self, cap: Budget | None) -> None:
        self._cap_loaded = True
        self._cap = cap
        self._cap_dirty = True

    def holds(self) -> Sequence[Hold]:
        if self._holds is None:
            self.lock([], cap=False, holds=True)
        assert self._holds is not None
        return [hold for hold_id, hold in self._holds.items() if hold_id not in self._dropped]

    def put_hold(self, hold: Hold) -> None:
        self.holds()
        assert self._holds is not None
        self._holds[hold.hold_id] = hold
        self._added[hold.hold_id] = hold
        self._dropped.discard(hold.hold_id)

    def drop_hold(self, hold_id: str) -> None:
        if self._added.pop(hold_id, None) is None:
            self._dropped.add(hold_id)
        elif self._holds is not None:
            self._holds.pop(hold_id, None)

    def remembered(self, key: str) -> RememberedCharge | None:
        for known, charge in self._remember:
            if known == key:
                return charge
        horizon = rules.request_id_horizon(self.now, self.store.wall_clock())
        row = self.conn.execute(
            "SELECT name, cost, model, prompt_tokens, completion_tokens, cached_tokens "
            "FROM budgetctl_request_ids WHERE project = %s AND key = %s AND seen_at >= %s",
            (self.project, key, horizon),
        ).fetchone()
        if row is None:
            return None
        return RememberedCharge(row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]))

    def remember(self, key: str, charge: RememberedCharge) -> None:
        self._remember.append((key, charge))

    def spent_since(self, start: datetime) -> Decimal:
        row = self.conn.execute(
            "SELECT coalesce(sum(cost), 0) FROM budgetctl_history WHERE project = %s "
            "AND cost IS NOT NULL AND at >= %s",
            (self.project, start),
        ).fetchone()
        total: Decimal = row[0] if row else Decimal(0)
        for event in self.events:  # not written yet
            cost = events.spend(event)
            if cost is not None and event.time is not None and event.time >= start:
                total += cost
        return total

    def due(self, users: Sequence[str] | None) -> list[str]:
        query = (
            f"SELECT name, {_COLUMNS}, held FROM budgetctl_budgets WHERE project = %s "
            "AND next_reset_at <= %s"
        )
        params: list[Any] = [self.project, self.now]
        if users is not None:
            query += " AND name = ANY(%s)"
            params.append(list(users))
        rows = self.conn.execute(query + " ORDER BY name FOR UPDATE", params).fetchall()
        found = []
        for row in rows:
            name = row[0]
            if name not in self._budgets:
                self._budgets[name] = _budget(name, row[1:11])
                self._held[name] = row[11]
                self._existed.add(name)
            found.append(name)
        return found

    def record(self, event: events.Event) -> None:
        self.events.append(event)

    def hooks(self) -> list[core_hooks.Hook]:
        if self._hooks is None:  # read only when a hook may be for an event: rarely
            self._hooks = self.store._hooks_of(self.conn)
        return self._hooks

    def queue(self, delivery: core_hooks.Delivery) -> None:
        self._outbox.append(delivery)

    def queued(self) -> int:
        return len(self._outbox)

    def outbox_size(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM budgetctl_outbox WHERE project = %s", (self.project,)
        ).fetchone()
        return (int(row[0]) if row else 0) + len(self._outbox)

    # --- writing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the operation changed, with its history and request ids."""
        conn, project = self.conn, self.project
        inserts = [b for u, b in self._dirty.items() if u not in self._existed]
        updates = [b for u, b in self._dirty.items() if u in self._existed]
        removed = [u for u in self._removed if u in self._existed]
        held, cap_held, unlocked = self._held_changes(removed)
        if (
            updates
            and not held
            and not unlocked
            and cap_held is None
            and self.events
            and not inserts
            and not removed
            and not self._dropped
            and not self._added
            and not self._remember
            and not self._outbox
            and (not self._cap_dirty or (self._cap is not None and self._cap_existed))
        ):
            self._flush_at_once(updates)  # a charge: one statement
            return
        with self._pipeline(), conn.cursor() as cur:
            if removed:
                cur.execute(
                    "DELETE FROM budgetctl_budgets WHERE project = %s AND name = ANY(%s)",
                    (project, removed),
                )
            if updates:
                sets, capped = self._user_sets()
                cur.executemany(
                    f"UPDATE budgetctl_budgets SET {sets} WHERE project = %s AND name = %s",
                    [(*_values(b), *capped, project, b.user) for b in updates],
                )
            if inserts:
                cur.executemany(
                    f"INSERT INTO budgetctl_budgets (project, name, {_COLUMNS}, capped) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "EXISTS (SELECT 1 FROM budgetctl_caps WHERE project = %s))",
                    [(project, b.user, *_values(b), project) for b in inserts],
                )
            if self._cap_dirty and (self._cap is None) == self._cap_existed:
                # a cap set where there was none, or cleared: on every row (schema version 4),
                # all of them locked first (PostgresStore.set_cap, clear_cap)
                cur.execute(
                    "UPDATE budgetctl_budgets SET capped = %s WHERE project = %s",
                    (self._cap is not None, project),
                )
            if self._cap_dirty:
                if self._cap is None:
                    cur.execute("DELETE FROM budgetctl_caps WHERE project = %s", (project,))
                elif self._cap_existed:
                    cur.execute(
                        f"UPDATE budgetctl_caps SET {_SET} WHERE project = %s",
                        (*_values(self._cap), project),
                    )
                else:
                    cur.execute(
                        f"INSERT INTO budgetctl_caps (project, {_COLUMNS}) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (project, *_values(self._cap)),
                    )
            if self._dropped:
                cur.execute(
                    "DELETE FROM budgetctl_holds WHERE project = %s AND hold_id = ANY(%s)",
                    (project, sorted(self._dropped)),
                )
            if self._added:
                cur.executemany(
                    "INSERT INTO budgetctl_holds VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (project, h.hold_id, h.user, h.amount, h.created_at, h.expires_at)
                        for h in self._added.values()
                    ],
                )
            if held:
                cur.executemany(
                    "UPDATE budgetctl_budgets SET held = %s WHERE project = %s AND name = %s",
                    [(amount, project, user) for user, amount in held.items()],
                )
            if cap_held is not None:
                cur.execute(
                    "UPDATE budgetctl_caps SET held = %s WHERE project = %s", (cap_held, project)
                )
            if unlocked:
                # rows this transaction did not lock: rewritten if no one holds them, never
                # waited for (that could deadlock: they come after the cap in the lock order)
                cur.execute(
                    "UPDATE budgetctl_budgets b SET held = coalesce((SELECT sum(h.amount) FROM "
                    "budgetctl_holds h WHERE h.project = b.project AND h.name = b.name), 0) "
                    "WHERE b.project = %s AND b.name IN (SELECT name FROM budgetctl_budgets "
                    "WHERE project = %s AND name = ANY(%s) FOR UPDATE SKIP LOCKED)",
                    (project, project, unlocked),
                )
            if self._remember:
                horizon = rules.request_id_horizon(self.now, self.store.wall_clock())
                keys = [key for key, _ in self._remember]
                # an id past its horizon is forgotten: its row makes way for the new charge
                cur.execute(
                    "DELETE FROM budgetctl_request_ids WHERE project = %s AND key = ANY(%s) "
                    "AND seen_at < %s",
                    (project, keys, horizon),
                )
                cur.executemany(
                    "INSERT INTO budgetctl_request_ids VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (project, key, c.user, c.cost, c.model, c.prompt_tokens,
                         c.completion_tokens, c.cached_tokens, self.now)
                        for key, c in self._remember
                    ],
                )  # fmt: skip
            if self._outbox:
                cur.executemany(
                    "INSERT INTO budgetctl_outbox VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [
                        (project, d.event_id, d.hook_id, d.queued_at,
                         json.dumps(dict(d.payload), separators=(",", ":")))
                        for d in self._outbox
                    ],
                )  # fmt: skip
            if self.events:
                cur.executemany(
                    f"INSERT INTO budgetctl_history VALUES {_HISTORY_ROW}", self._history_rows()
                )

    def _held_changes(
        self, removed: Sequence[str]
    ) -> tuple[dict[str, Decimal], Decimal | None, list[str]]:
        """The ``held`` of the locked rows, where the holds after this transaction make it other
        than it was: what the user's holds reserve (the cap's: every hold); and the users, their
        rows not locked by this transaction, whose holds it dropped (a release, an expired hold
        archived on the way). Those rows are rewritten only if no one else has them locked; one
        left too high only sends its charges to the locked transaction (one_statement.py) until
        a transaction that locks the row rewrites it."""
        if self._holds is None:  # the holds were not read, so none changed
            return {}, None, []
        totals = _held_totals(h for i, h in self._holds.items() if i not in self._dropped)
        held = {
            user: totals.get(user, ZERO)
            for user, was in self._held.items()
            if user not in removed and totals.get(user, ZERO) != was
        }
        cap_held = None
        if (
            self._cap_existed
            and self._cap is not None
            and self._cap_held is not None
            and totals.get(None, ZERO) != self._cap_held
        ):
            cap_held = totals.get(None, ZERO)
        unlocked = sorted(
            {self._holds[hold_id].user for hold_id in self._dropped if hold_id in self._holds}
            - set(self._held)
            - set(removed)
        )
        return held, cap_held, unlocked

    def _history_rows(self) -> list[tuple[Any, ...]]:
        rows = []
        for ord_, event in enumerate(self.events):
            data = event.to_json()
            rows.append(
                (
                    self.project,
                    self.now,
                    self.order,
                    ord_,
                    events.subject(event),
                    data["type"],
                    events.spend(event),
                    json.dumps(data, separators=(",", ":")),
                )
            )
        return rows

    def _user_sets(self) -> tuple[str, tuple[bool, ...]]:
        """The SET of a user's row this transaction locked, and its parameters after the
        budget's: with the cap read (locked, or known absent), ``capped`` too, so that a row
        left out of step (created while a cap was being set) is put right by its next write."""
        if not self._cap_loaded:
            return _SET, ()
        return f"{_SET}, capped = %s", (self._cap is not None,)

    def _flush_at_once(self, updates: Sequence[Budget]) -> None:
        """The writes of a charge (budget rows and maybe the cap's updated, history rows added)
        as one statement: the updates are data-modifying CTEs of the history insert (they touch
        different rows, and all of them run to completion whatever the outer statement reads)."""
        parts, params = [], []
        sets, capped = self._user_sets()
        for i, budget in enumerate(updates):
            parts.append(
                f"u{i} AS (UPDATE budgetctl_budgets SET {sets} WHERE project = %s AND name = %s)"
            )
            params += [*_values(budget), *capped, self.project, budget.user]
        if self._cap_dirty:
            assert self._cap is not None
            parts.append(f"c AS (UPDATE budgetctl_caps SET {_SET} WHERE project = %s)")
            params += [*_values(self._cap), self.project]
        rows = self._history_rows()
        for row in rows:
            params += row
        self.conn.execute(
            f"WITH {', '.join(parts)} INSERT INTO budgetctl_history VALUES "
            + ", ".join([_HISTORY_ROW] * len(rows)),
            params,
        )


class PostgresStore:
    """A project's ledger in a PostgreSQL database (see the module docstring)."""

    def __init__(
        self,
        project: str,
        database: Database | str,
        *,
        use_database_clock: bool = True,
        wall_clock: Callable[[], datetime] | None = None,
        one_statement: bool = True,
    ) -> None:
        self.project = rules.check_project_name(project)
        # charges that are a plain increment in one statement (one_statement.py); False: every
        # charge in the locked transaction (tests compare the two)
        self.one_statement = one_statement
        # whether that statement also charges a cap, as the last charge found the project (the
        # statement without one fails if a cap exists, and this goes back to True)
        self._capped = True
        # and whether it tests alert thresholds, of the user's row (users whose row had some
        # when a charge last saw it) and of the cap's: a row with thresholds the statement did
        # not expect makes it write nothing, and the transaction's answer is learnt
        self._alerting: set[str] = set()
        self._cap_alerting = False
        self.db = database if isinstance(database, Database) else Database(database)
        self.where = f"{self.db.where} (project {project!r})"
        self.use_database_clock = use_database_clock
        self._wall_clock = wall_clock
        self._given_now = False

    def clock(self) -> datetime | None:
        """The database's time now, when it decides time (None when the caller's clock does):
        a new budget's period starts there, whatever the creating host's clock says."""
        if not self._database_time:
            return None
        with self._reading() as conn:
            return self._read_now(conn, datetime.now(UTC))

    @contextmanager
    def at_given_time(self) -> Iterator[None]:
        """Use the ``now`` the caller gives, not the database's clock (``reset-due --now``)."""
        self._given_now = True
        try:
            yield
        finally:
            self._given_now = False

    @property
    def _database_time(self) -> bool:
        return self.use_database_clock and not self._given_now

    def wall_clock(self) -> datetime:
        if self._wall_clock is not None:
            return self._wall_clock()
        return datetime.now(UTC)

    # --- transactions --------------------------------------------------------------------------

    def _run(
        self,
        now: datetime,
        body: Callable[[PgState], T],
        *,
        users: Sequence[str] = (),
        cap: bool = False,
        holds: bool = False,
        create: bool = False,
        dry_run: bool = False,
        pipelined: bool = False,
        project_lock: str | None = None,
    ) -> T:
        """``body`` in one transaction, the rows locked first; run again on a retryable error.
        ``pipelined``: the whole transaction as one pipeline (:meth:`_attempt_pipelined`), for
        bodies that only touch the database through :class:`PgState`. ``project_lock`` (SHARE,
        UPDATE): the project's row locked so, before any other (the creation of users and of a
        cap are serialized by it: see :func:`_lock_all_if_no_cap`)."""
        self.db.check_schema()
        conn = self.db.connection()
        for attempt in range(RETRIES):
            try:
                with self.db.failures():
                    if pipelined and not create:
                        return self._attempt_pipelined(conn, now, body, users, cap, holds, dry_run)
                    return self._attempt(
                        conn, now, body, users, cap, holds, create, dry_run, project_lock
                    )
            except Exception as exc:
                if not _retryable(exc) or attempt == RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        raise AssertionError("unreachable")

    def _attempt(
        self,
        conn: psycopg.Connection[Any],
        now: datetime,
        body: Callable[[PgState], T],
        users: Sequence[str],
        cap: bool,
        holds: bool,
        create: bool,
        dry_run: bool,
        project_lock: str | None = None,
    ) -> T:
        class _Rollback(Exception):
            pass

        result: list[T] = []
        try:
            with conn.transaction():
                if project_lock is not None:
                    assert project_lock in ("SHARE", "UPDATE")
                    conn.execute(
                        f"SELECT 1 FROM budgetctl_projects WHERE project = %s FOR {project_lock}",
                        (self.project,),
                    )
                state = PgState(self, conn, now)
                clock = state.lock(users, cap, holds, clock=True)
                assert clock is not None
                state.order = f"{clock:%Y%m%d%H%M%S%f}-{uuid.uuid4().hex[:12]}"
                if self._database_time:
                    state.now = clock
                if create:
                    conn.execute(
                        "INSERT INTO budgetctl_projects VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (self.project, state.now),
                    )
                try:
                    result.append(body(state))
                except UnknownUserError:
                    self._require_project(conn)
                    raise
                if dry_run:
                    raise _Rollback
                if not create and not state.events and not state._dirty:
                    self._require_project(conn)
                state.flush()
        except _Rollback:
            pass
        return result[0]

    def _attempt_pipelined(
        self,
        conn: psycopg.Connection[Any],
        now: datetime,
        body: Callable[[PgState], T],
        users: Sequence[str],
        cap: bool,
        holds: bool,
        dry_run: bool,
    ) -> T:
        """The transaction of :meth:`_attempt` in two round trips: ``BEGIN``, the locks and the
        clock go in the first, the writes and ``COMMIT`` in the second (the connection is in
        autocommit, so that the driver sends no ``BEGIN`` of its own, in a round trip of its
        own). Whatever fails, the transaction is rolled back before this returns."""
        pq = _import_psycopg().pq
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                state = PgState(self, conn, now, pipelined=True)
                clock = state.lock(users, cap, holds, clock=True)
                assert clock is not None
                state.order = f"{clock:%Y%m%d%H%M%S%f}-{uuid.uuid4().hex[:12]}"
                if self._database_time:
                    state.now = clock
                try:
                    result = body(state)
                except UnknownUserError:
                    self._require_project(conn)
                    raise
                if dry_run:
                    conn.execute("ROLLBACK")
                else:
                    if not state.events and not state._dirty:
                        self._require_project(conn)
                    state.flush()
                    conn.execute("COMMIT")
            # leaving the pipeline sent it all and raised the first error, if any
        except BaseException:
            if not _broken(conn) and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise
        return result

    def _require_project(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            "SELECT 1 FROM budgetctl_projects WHERE project = %s", (self.project,)
        ).fetchone()
        if row is None:
            raise UnknownProjectError(self.project, self.db.where)

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        """A read-only snapshot (REPEATABLE READ: every query sees the same commits)."""
        self.db.check_schema()
        conn = self.db.connection()
        with self.db.failures():
            conn.isolation_level = _import_psycopg().IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction():
                    yield conn
            finally:
                conn.isolation_level = None

    def _read_now(self, conn: psycopg.Connection[Any], now: datetime) -> datetime:
        if not self._database_time:
            return now
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        moment: datetime = row[0].astimezone(UTC)
        return moment

    # --- operations ----------------------------------------------------------------------------

    def exists(self) -> bool:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT 1 FROM budgetctl_projects WHERE project = %s", (self.project,)
            ).fetchone()
        return row is not None

    def create(self, budget: Budget, *, replace: bool = False, dry_run: bool = False) -> Budget:
        return self.create_many([budget], replace=replace, dry_run=dry_run)[0]

    def create_many(
        self, budgets: Sequence[Budget], *, replace: bool = False, dry_run: bool = False
    ) -> list[Budget]:
        if not budgets:
            return []
        now = max(b.created_at for b in budgets)

        return self._run(
            now,
            lambda state: operations.create(state, budgets, replace=replace),
            users=[b.user for b in budgets],
            create=True,
            dry_run=dry_run,
            project_lock="SHARE",  # not while a cap is being set (_lock_all_if_no_cap)
        )

    def change(
        self, user: str, now: datetime, changes: rules.Changes, *, dry_run: bool = False
    ) -> Budget:
        return self._run(
            now, lambda s: operations.change(s, user, changes), users=[user], dry_run=dry_run
        )

    def charge(
        self, request: ChargeRequest, now: datetime, *, enforce: bool = False, dry_run: bool = False
    ) -> ChargeOutcome:
        if self.one_statement and not dry_run and request.request_id is None:
            at_once = self._charge_at_once(request, now, enforce)
            if at_once is not None:
                return at_once
        outcome: ChargeOutcome = self._run(
            now,
            lambda s: operations.charge(s, request, enforce=enforce),
            users=[request.user],
            cap=True,
            holds=True,
            dry_run=dry_run,
            pipelined=True,
        )
        self._capped = outcome.cap is not None
        self._learn_alerts(request.user, outcome.budget, outcome.cap)
        return outcome

    def _learn_alerts(self, user: str, budget: Budget, cap: Budget | None) -> None:
        """Which statement the next charge sends: whether ``user``'s row and the cap's have
        alert thresholds, as a charge found them."""
        if budget.alert_at:
            if len(self._alerting) >= _ALERTING_KEPT:
                self._alerting.clear()  # forgotten: at worst a charge falls back to learn again
            self._alerting.add(user)
        else:
            self._alerting.discard(user)
        self._cap_alerting = bool(cap is not None and cap.alert_at)

    def _charge_at_once(
        self, request: ChargeRequest, now: datetime, enforce: bool
    ) -> ChargeOutcome | None:
        """The charge in one statement when the core's decision is a plain increment
        (one_statement.py); None when it is not (nothing was written), or on a serialization
        failure or deadlock: the caller runs the locked transaction then."""
        self.db.check_schema()
        database_time = self._database_time
        capped, user_alerts = self._capped, request.user in self._alerting
        name, sql, names, types = one_statement.prepared(
            bool(request.model), enforce, database_time, capped, user_alerts, self._cap_alerting
        )
        values = {
            "project": self.project,
            "user": request.user,
            "cost": str(request.cost),
            "model": request.model,
            "event": one_statement.event(request),
            "tx": os.urandom(6).hex(),
            "now": None if database_time else now.isoformat(),
        }
        params = [values[key].encode() for key in names]  # type: ignore[union-attr]
        psycopg = _import_psycopg()
        try:
            with self.db.failures():  # in autocommit: one statement, its own transaction
                row = self.db.run_prepared(name, sql, types, params)
        except psycopg.errors.NotNullViolation:
            # a check after the locks failed (nothing was written): a period ended, or the
            # project has a cap the statement without one did not expect
            self._capped = True
            return None
        except psycopg.Error as exc:
            if _retryable(exc):
                return None
            raise
        if row is None:
            return None
        budget = _budget(request.user, row[0:10])
        cap = None
        if capped:
            if row[10] is None:
                self._capped = False  # none in the project (the statement checked)
            else:
                cap = _budget(CAP, row[10:20])
        if user_alerts or self._cap_alerting:
            self._learn_alerts(request.user, budget, cap)
        return ChargeOutcome(budget, cap, duplicate=False)

    def reserve(
        self,
        hold_id: str,
        user: str,
        amount: Decimal,
        ttl: timedelta,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> ReserveOutcome:
        return self._run(
            now,
            lambda s: operations.reserve(s, hold_id, user, amount, ttl),
            users=[user],
            cap=True,
            holds=True,
            dry_run=dry_run,
            pipelined=True,
        )

    def commit_hold(
        self, hold_id: str, request: ChargeRequest, now: datetime, *, dry_run: bool = False
    ) -> CommitOutcome:
        return self._run(
            now,
            lambda s: operations.commit(s, hold_id, request),
            users=[request.user],
            cap=True,
            holds=True,
            dry_run=dry_run,
            pipelined=True,
        )

    def release(
        self, hold_ids: Sequence[str], now: datetime, *, dry_run: bool = False
    ) -> list[Hold]:
        return self._run(
            now,
            lambda s: operations.release(s, hold_ids),
            cap=True,
            holds=True,
            dry_run=dry_run,
        )

    def reset(
        self, users: Sequence[str] | None, now: datetime, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]:
        def body(state: PgState) -> list[tuple[str, ClosedPeriod]]:
            if users is None:
                state.lock(list(state.users()), cap=False, holds=False)
            return operations.reset(state, users)

        return self._run(now, body, users=list(users or ()), dry_run=dry_run)

    def reset_due(
        self, now: datetime, *, users: Sequence[str] | None = None, dry_run: bool = False
    ) -> ResetDue:
        # The due users' rows are locked (by name, in state.due) before the cap's and the holds'
        # (in the operation), the order every other operation takes them in: locking the cap
        # first deadlocked with charges, which hold their user's row when they ask for the cap's.
        return self._run(
            now,
            lambda s: operations.reset_due(s, users),
            users=list(users or ()),
            dry_run=dry_run,
        )

    def delete(self, users: Sequence[str], now: datetime, *, dry_run: bool = False) -> list[str]:
        return self._run(
            now,
            lambda s: operations.delete(s, users),
            users=list(users),
            cap=True,
            holds=True,
            dry_run=dry_run,
        )

    def set_cap(
        self,
        now: datetime,
        total_budget: Decimal | None,
        duration: Duration | Keep | None = KEEP,
        timezone: str | None = None,
        *,
        alert_at: Sequence[Decimal] | Decimal | Keep | None = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        def body(state: PgState) -> Budget:
            _lock_all_if_no_cap(state)
            return operations.set_cap(state, total_budget, duration, timezone, alert_at)

        return self._run(now, body, cap=True, create=True, dry_run=dry_run, project_lock="UPDATE")

    def clear_cap(self, now: datetime, *, dry_run: bool = False) -> bool:
        def body(state: PgState) -> bool:
            # every row's capped changes: the users' rows locked first, then the cap's
            state.lock(list(state.users()), cap=False, holds=False)
            return operations.clear_cap(state)

        return self._run(now, body, dry_run=dry_run)

    # --- reading -------------------------------------------------------------------------------

    def _recent(self, conn: psycopg.Connection[Any], user: str | None) -> tuple[ClosedPeriod, ...]:
        """A budget's most recent closed periods, newest first: those since it was created (a
        user deleted and created again, or replaced, starts afresh; so does a cap cleared and
        set again), as on the JSON store."""
        kind, began = ("period", "create") if user is not None else ("cap-period", "cap-clear")
        who = "AND name = %s " if user is not None else ""
        names: tuple[Any, ...] = (user,) if user is not None else ()
        start = conn.execute(
            f"SELECT at, tx, ord FROM budgetctl_history WHERE project = %s AND type = %s {who}"
            "ORDER BY at DESC, tx DESC, ord DESC LIMIT 1",
            (self.project, began, *names),
        ).fetchone()
        after = "AND (at, tx, ord) > (%s, %s, %s) " if start is not None else ""
        rows = conn.execute(
            f"SELECT event FROM budgetctl_history WHERE project = %s AND type = %s {who}{after}"
            "ORDER BY at DESC, tx DESC, ord DESC LIMIT %s",
            (self.project, kind, *names, *(start or ()), rules.RECENT_PERIODS),
        ).fetchall()
        found = []
        for (text,) in rows:
            event = self._event(text)
            assert isinstance(event, events.PeriodClosed)
            found.append(
                ClosedPeriod(event.start, event.end, event.spent, event.budget, event.reason)
            )
        return tuple(found)

    def _events(self, texts: list[str]) -> list[events.Event]:
        """Rows' events, their JSON parsed in one ``json.loads`` (a third of the time of one a
        row); row by row, to say which is wrong, when that fails."""
        try:
            parsed = json.loads("[" + ",".join(texts) + "]") if len(texts) > 1 else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or len(parsed) != len(texts):
            return [self._event(text) for text in texts]
        try:
            return [events.from_json(raw) for raw in parsed]
        except events.EventError as exc:
            raise CorruptStateError(self.where, f"a history row: {exc}") from None

    def _event(self, text: str) -> events.Event:
        try:
            return events.from_json(json.loads(text))
        except (ValueError, events.EventError) as exc:
            raise CorruptStateError(self.where, f"a history row: {exc}") from None

    # --- hooks and their outbox ----------------------------------------------------------------

    def _hooks_of(self, conn: psycopg.Connection[Any]) -> list[core_hooks.Hook]:
        rows = conn.execute(
            "SELECT hook FROM budgetctl_hooks WHERE project = %s ORDER BY hook_id",
            (self.project,),
        ).fetchall()
        try:
            return [core_hooks.Hook.from_json(json.loads(row[0])) for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStateError(self.where, f"a hook's row is malformed ({exc})") from None

    def hooks(self) -> list[core_hooks.Hook]:
        with self._reading() as conn:
            self._require_project(conn)
            return self._hooks_of(conn)

    def add_hook(self, hook: core_hooks.Hook, now: datetime) -> core_hooks.Hook:
        hook = core_hooks.check_hook(hook)

        def body(state: PgState) -> None:
            self._require_project(state.conn)
            state.conn.execute(
                "INSERT INTO budgetctl_hooks VALUES (%s, %s, %s)",
                (self.project, hook.hook_id, json.dumps(hook.to_json())),
            )

        self._run(now, body)
        return hook

    def remove_hook(self, hook_id: str, now: datetime) -> bool:
        def body(state: PgState) -> bool:
            self._require_project(state.conn)
            gone = state.conn.execute(
                "DELETE FROM budgetctl_hooks WHERE project = %s AND hook_id = %s",
                (self.project, hook_id),
            ).rowcount
            state.conn.execute(
                "DELETE FROM budgetctl_outbox WHERE project = %s AND hook_id = %s",
                (self.project, hook_id),
            )
            return bool(gone)

        return self._run(now, body)

    def pending(self) -> list[core_hooks.Delivery]:
        """The outbox: deliveries not yet made, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT event_id, hook_id, payload, queued_at FROM budgetctl_outbox "
                "WHERE project = %s ORDER BY queued_at, event_id, hook_id",
                (self.project,),
            ).fetchall()
        return [
            core_hooks.Delivery(r[0], r[1], json.loads(r[2]), r[3].astimezone(UTC)) for r in rows
        ]

    def delivered(self, keys: Sequence[str], now: datetime) -> None:
        """Take deliveries (by their ``key``, "EVENT_ID HOOK_ID") out of the outbox."""
        if not keys:
            return
        pairs = [key.split(" ", 1) for key in keys]

        def body(state: PgState) -> None:
            with state.conn.cursor() as cur:
                cur.executemany(
                    "DELETE FROM budgetctl_outbox WHERE project = %s AND event_id = %s "
                    "AND hook_id = %s",
                    [(self.project, event_id, hook_id) for event_id, hook_id in pairs],
                )

        self._run(now, body)

    def _holds_of(self, conn: psycopg.Connection[Any]) -> list[Hold]:
        rows = conn.execute(
            "SELECT hold_id, name, amount, created_at, expires_at FROM budgetctl_holds "
            "WHERE project = %s ORDER BY created_at, hold_id",
            (self.project,),
        ).fetchall()
        return [Hold(r[0], r[1], r[2], r[3].astimezone(UTC), r[4].astimezone(UTC)) for r in rows]

    def _cap_of(self, conn: psycopg.Connection[Any]) -> Budget | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM budgetctl_caps WHERE project = %s", (self.project,)
        ).fetchone()
        return _budget(CAP, row) if row else None

    def _user_of(self, conn: psycopg.Connection[Any], user: str) -> Budget:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM budgetctl_budgets WHERE project = %s AND name = %s",
            (self.project, user),
        ).fetchone()
        if row is None:
            self._require_project(conn)
            names = conn.execute(
                "SELECT name FROM budgetctl_budgets WHERE project = %s ORDER BY name LIMIT 1000",
                (self.project,),
            ).fetchall()
            raise UnknownUserError(user, self.project, [n[0] for n in names])
        return _budget(user, row)

    def standing(self, user: str, now: datetime) -> Standing:
        with self._reading() as conn:
            now = self._read_now(conn, now)
            budget = self._user_of(conn, user)._replace(recent_periods=self._recent(conn, user))
            cap = self._cap_of(conn)
            if cap is not None:
                cap = cap._replace(recent_periods=self._recent(conn, None))
            holds = self._holds_of(conn)
        return operations.standing(budget, cap, holds, now)

    def get(self, user: str, now: datetime) -> Budget:
        return self.standing(user, now).budget

    def get_with_cap(self, user: str, now: datetime) -> tuple[Budget, Budget | None]:
        found = self.standing(user, now)
        return found.budget, found.cap

    def cap(self, now: datetime) -> Budget | None:
        with self._reading() as conn:
            now = self._read_now(conn, now)
            cap = self._cap_of(conn)
            if cap is not None:
                cap = cap._replace(recent_periods=self._recent(conn, None))
        return None if cap is None else rules.roll_over(cap, now)[0]

    def view(self, now: datetime) -> ProjectView:
        with self._reading() as conn:
            now = self._read_now(conn, now)
            self._require_project(conn)
            rows = conn.execute(
                f"SELECT name, {_COLUMNS} FROM budgetctl_budgets WHERE project = %s ORDER BY name",
                (self.project,),
            ).fetchall()
            cap = self._cap_of(conn)
            holds = self._holds_of(conn)
        users = tuple(rules.roll_over(_budget(r[0], r[1:]), now)[0] for r in rows)
        return ProjectView(
            self.project,
            users,
            None if cap is None else rules.roll_over(cap, now)[0],
            tuple(h for h in holds if h.is_open(now)),
        )

    def users(self) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT name FROM budgetctl_budgets WHERE project = %s ORDER BY name",
                (self.project,),
            ).fetchall()
        return [row[0] for row in rows]

    def holds(self, now: datetime, user: str | None = None) -> list[Hold]:
        with self._reading() as conn:
            now = self._read_now(conn, now)
            if user is not None:
                self._user_of(conn, user)
            found = self._holds_of(conn)
        return [h for h in found if h.is_open(now) and (user is None or h.user == user)]

    def history(
        self,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[events.Event]:
        """Events newest first. A range is a WHERE on ``at``, served by the primary key
        (project, at, ...) or, for one user, by (project, name, at): ``at`` is the event's time
        (both are the transaction's clock). Only a restored history whose times went backwards
        has rows whose ``at`` (never earlier than the row before) is later than their time; the
        range is checked on the event's time as well, so such a row is never shown out of it
        (an event without a time, from budgetctl before 0.2, is in no range)."""
        where, params = history_rows(self.project, user, since, until)
        query = (
            f"SELECT event FROM budgetctl_history WHERE {where} ORDER BY at DESC, tx DESC, ord DESC"
        )
        if limit is not None:
            query += " LIMIT %s"
            params.append(limit)
        with self._reading() as conn:
            self._require_project(conn)
            rows = conn.execute(query, params).fetchall()
        found = self._events([text for (text,) in rows])
        if since is None and until is None:
            return found
        return [
            e
            for e in found
            if e.time is not None
            and (since is None or e.time >= since)
            and (until is None or e.time < until)
        ]

    # --- spend, for export and report (reads only) ------------------------------------------------

    def spend(
        self, user: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[spending.Spend]:
        """The charges and commits of :meth:`history` (the same rows, range and order), oldest
        first: only the ``charge`` and ``commit`` rows are read, and their JSON text becomes rows
        without typed events (:func:`budgetctl.store.spend.parse`)."""
        where, params = history_rows(self.project, user, since, until, spend=True)
        query = f"SELECT event FROM budgetctl_history WHERE {where} ORDER BY at, tx, ord"
        with self._reading() as conn:
            self._require_project(conn)
            texts = [text for (text,) in conn.execute(query, params)]
        found = spending.parse("\n".join(texts))
        if found is None:  # a row the quick read does not take: the typed read says what it is
            found = spending.from_events(self._events(texts))
        return spending.in_range(found, since, until)

    def spend_totals(
        self,
        key: str,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[Any, list[Any]] | None:
        """The spend of :meth:`spend`, summed per ``key`` by the database (``report``): see
        :mod:`budgetctl.store.postgres.spending`; None when the rows must be read instead."""
        from budgetctl.store.postgres import spending as sums

        return sums.totals(self, key, user, since, until)

    # --- prices ----------------------------------------------------------------------------------

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None:
        def body(state: PgState) -> None:
            conn = state.conn
            if price is None:
                gone = conn.execute(
                    "DELETE FROM budgetctl_prices WHERE project = %s AND model = %s",
                    (self.project, model),
                )
                if gone.rowcount == 0:
                    rows = conn.execute(
                        "SELECT model FROM budgetctl_prices WHERE project = %s ORDER BY model "
                        "LIMIT 5",
                        (self.project,),
                    ).fetchall()
                    raise UnknownModelError(model, [r[0] for r in rows])
            else:
                text = json.dumps(prices_file.encode_price(price))
                conn.execute(
                    "DELETE FROM budgetctl_prices WHERE project = %s AND model = %s",
                    (self.project, model),
                )
                conn.execute(
                    "INSERT INTO budgetctl_prices VALUES (%s, %s, %s)", (self.project, model, text)
                )

        self._run(datetime.now(UTC), body, create=True, dry_run=dry_run)

    def prices(self) -> dict[str, Price]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT model, price FROM budgetctl_prices WHERE project = %s", (self.project,)
            ).fetchall()
        return {model: prices_file.decode_price(model, json.loads(text)) for model, text in rows}

    # --- a whole project: dump and restore -----------------------------------------------------

    def export(self) -> snapshot.Snapshot:
        """The whole project, from one snapshot (REPEATABLE READ)."""
        with self._reading() as conn:
            self._require_project(conn)
            rows = conn.execute(
                f"SELECT name, {_COLUMNS} FROM budgetctl_budgets WHERE project = %s",
                (self.project,),
            ).fetchall()
            cap = self._cap_of(conn)
            holds = self._holds_of(conn)
            prices = conn.execute(
                "SELECT model, price FROM budgetctl_prices WHERE project = %s", (self.project,)
            ).fetchall()
            found = conn.execute(
                "SELECT event FROM budgetctl_history WHERE project = %s ORDER BY at, tx, ord",
                (self.project,),
            ).fetchall()
        return snapshot.snapshot(
            self.project,
            [_budget(row[0], row[1:]) for row in rows],
            cap,
            [prices_file.decode_price(model, json.loads(text)) for model, text in prices],
            holds,
            [self._event(text) for (text,) in found],
        )

    def restore(
        self,
        snap: snapshot.Snapshot,
        now: datetime,
        *,
        replace: bool = False,
        dry_run: bool = False,
    ) -> bool:
        """Write ``snap`` as this project in one transaction (with ``replace``, the project's
        rows are deleted in it first). History rows keep the snapshot's order: each is stored at
        its event's time (never before the one above it), all under this transaction; request
        ids charged since the horizon are remembered again."""

        def body(state: PgState) -> bool:
            conn, project = state.conn, self.project
            existed = (
                conn.execute(
                    "SELECT 1 FROM budgetctl_projects WHERE project = %s FOR UPDATE", (project,)
                ).fetchone()
                is not None
            )
            if existed and not replace:
                raise ProjectExistsError(project, self.db.where)
            with conn.pipeline(), conn.cursor() as cur:
                if existed:
                    for table in _TABLES:
                        cur.execute(f"DELETE FROM {table} WHERE project = %s", (project,))
                cur.execute("INSERT INTO budgetctl_projects VALUES (%s, %s)", (project, state.now))
                self._insert_snapshot(cur, snap, state)
            return existed

        return self._run(now, body, dry_run=dry_run)

    def _insert_snapshot(
        self, cur: psycopg.Cursor[Any], snap: snapshot.Snapshot, state: PgState
    ) -> None:
        project = self.project
        if snap.budgets:
            cur.executemany(
                f"INSERT INTO budgetctl_budgets (project, name, {_COLUMNS}, capped) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(project, b.user, *_values(b), snap.cap is not None) for b in snap.budgets],
            )
        if snap.cap is not None:
            cur.execute(
                f"INSERT INTO budgetctl_caps (project, {_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (project, *_values(snap.cap)),
            )
        if snap.holds:
            cur.executemany(
                "INSERT INTO budgetctl_holds VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (project, h.hold_id, h.user, h.amount, h.created_at, h.expires_at)
                    for h in snap.holds
                ],
            )
        if snap.holds:
            totals = _held_totals(snap.holds)
            cap_total = totals.pop(None)
            cur.executemany(
                "UPDATE budgetctl_budgets SET held = %s WHERE project = %s AND name = %s",
                [(amount, project, user) for user, amount in totals.items()],
            )
            if snap.cap is not None:
                cur.execute(
                    "UPDATE budgetctl_caps SET held = %s WHERE project = %s", (cap_total, project)
                )
        if snap.prices:
            cur.executemany(
                "INSERT INTO budgetctl_prices VALUES (%s, %s, %s)",
                [(project, p.model, json.dumps(prices_file.encode_price(p))) for p in snap.prices],
            )
        rows = []
        remembered: dict[str, tuple[RememberedCharge, datetime]] = {}
        at = _EPOCH
        for number, event in enumerate(snap.history):
            if event.time is not None and event.time > at:
                at = event.time  # never before the row above: the order is the snapshot's
            raw = event.to_json()
            rows.append(
                (project, at, state.order, number, events.subject(event), raw["type"],
                 events.spend(event), json.dumps(raw, separators=(",", ":")))
            )  # fmt: skip
            if isinstance(event, (events.Charge, events.Commit)):
                charge = RememberedCharge(
                    event.user, event.cost, event.model, event.prompt_tokens,
                    event.completion_tokens, event.cached_tokens,
                )  # fmt: skip
                for key in rules.idempotency_keys(event):
                    remembered[key] = (charge, at)
        if rows:
            cur.executemany(
                "INSERT INTO budgetctl_history VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows
            )
        horizon = rules.request_id_horizon(state.now, self.wall_clock())
        ids = [
            (project, key, c.user, c.cost, c.model, c.prompt_tokens, c.completion_tokens,
             c.cached_tokens, seen)
            for key, (c, seen) in remembered.items()
            if seen >= horizon
        ]  # fmt: skip
        if ids:
            cur.executemany(
                "INSERT INTO budgetctl_request_ids VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", ids
            )
