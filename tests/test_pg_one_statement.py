"""The PostgreSQL store's one-statement charge (budgetctl/store/postgres/one_statement.py).

A charge whose outcome the core's rules make a plain increment is written by one conditional
statement; every other charge takes the locked transaction, where the core decides. These tests
show that the statement is taken where it should be and nowhere else, that the two paths leave the
same ledger after the same operations (a seeded random walk over budgets, caps, thresholds,
holds, periods and refusals), and that the ``held`` column it relies on follows the holds.
Processes racing it against holds are in tests/test_pg_processes.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from helpers.postgres import fresh_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl import Ledger
from budgetctl.core import events
from budgetctl.core.rules import ChargeRequest
from budgetctl.errors import BudgetExceededError, StorageIOError, UnknownUserError
from budgetctl.store.postgres import one_statement, schema
from budgetctl.store.postgres.store import Database, PostgresStore

T0 = datetime(2026, 3, 30, 20, 0, tzinfo=timezone.utc)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ledger(url: str, project: str, clock: Callable[[], datetime], one: bool = True) -> Ledger:
    book = Ledger(project, store=PostgresStore(project, url, use_database_clock=False))
    book.clock = clock
    assert isinstance(book.store, PostgresStore)
    book.store.one_statement = one
    return book


class Paths:
    """Counts, on a store, the charges the statement took and those the transaction took."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at_once = 0
        self.fell_back = 0
        self.locked = 0
        at_once, run = PostgresStore._charge_at_once, PostgresStore._run

        def spy_at_once(store: PostgresStore, *args: Any) -> Any:
            outcome = at_once(store, *args)
            if outcome is None:
                self.fell_back += 1
            else:
                self.at_once += 1
            return outcome

        def spy_run(store: PostgresStore, *args: Any, **kwargs: Any) -> Any:
            self.locked += 1
            return run(store, *args, **kwargs)

        monkeypatch.setattr(PostgresStore, "_charge_at_once", spy_at_once)
        monkeypatch.setattr(PostgresStore, "_run", spy_run)

    def taken(self, action: Callable[[], object]) -> str:
        before = (self.at_once, self.fell_back, self.locked)
        try:
            action()
        finally:
            after = (self.at_once, self.fell_back, self.locked)
        if after[0] > before[0] and after[2] == before[2]:
            return "statement"
        if after[1] > before[1]:
            return "fell back"
        return "locked"


def test_the_statement_takes_plain_charges_and_nothing_else(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    book = ledger(pg_url, "p", clock)
    book.create("alice", "10", duration="daily", alert_at="50")
    book.create("bob", "10")
    book.create("carol", "100", duration="daily")
    book.set_cap("1000", duration="monthly")
    paths = Paths(monkeypatch)
    # alice has thresholds: the store learns it from the transaction, the first time
    assert paths.taken(lambda: book.charge_cost("alice", "0.5")) == "fell back"
    assert paths.taken(lambda: book.charge_cost("alice", "0.5")) == "statement"
    assert paths.taken(lambda: book.charge_cost("alice", "1", model="gpt-4o")) == "statement"
    assert paths.taken(lambda: book.charge_cost("alice", "1", enforce=True)) == "statement"
    # what the core decides: the transaction
    assert paths.taken(lambda: book.charge_cost("alice", "1", request_id="r-1")) == "locked"
    assert paths.taken(lambda: book.charge_cost("alice", "1", dry_run=True)) == "locked"
    assert paths.taken(lambda: book.charge_cost("alice", "2")) == "fell back"  # crosses 50%
    assert book.history("alice", limit=2)[0].type == "alert"
    # lands on the total exactly: fits (rules.fits), in the statement
    assert paths.taken(lambda: book.charge_cost("alice", "4", enforce=True)) == "statement"
    with pytest.raises(BudgetExceededError):
        book.charge_cost("alice", "0.01", enforce=True)
    assert paths.fell_back == 3  # and the core refused it
    assert paths.taken(lambda: book.charge_cost("bob", "11")) == "fell back"  # goes over
    assert book.history("bob", limit=1)[0].type == "over"
    assert paths.taken(lambda: book.charge_cost("bob", "1")) == "statement"  # over already
    held = book.reserve("carol", "0.5")
    assert held.hold is not None
    assert paths.taken(lambda: book.charge_cost("carol", "0.1")) == "fell back"  # a hold exists
    book.release([held.hold.hold_id])
    assert paths.taken(lambda: book.charge_cost("carol", "0.1")) == "statement"
    clock.now += timedelta(days=1)  # carol's period ended
    assert paths.taken(lambda: book.charge_cost("carol", "0.1")) == "fell back"
    assert book.history("carol", limit=2)[1].type == "period"
    assert paths.taken(lambda: book.charge_cost("carol", "0.1")) == "statement"
    assert book.get("carol").current_cost == Decimal("0.2")
    with pytest.raises(UnknownUserError):
        book.charge_cost("nobody", "0.1")
    assert paths.fell_back == 7


def test_a_refusal_by_the_cap_after_the_user_fits_writes_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's row is updated first; the cap's refusal must undo it (the statement fails)."""
    book = ledger(pg_url, "p", Clock())
    book.create("alice", "10")
    book.set_cap("1")
    paths = Paths(monkeypatch)
    with pytest.raises(BudgetExceededError) as refused:
        paths.taken(lambda: book.charge_cost("alice", "2", enforce=True))
    assert refused.value.scope == "project"
    assert paths.fell_back == 1 and paths.at_once == 0
    assert book.get("alice").current_cost == 0
    assert [e.type for e in book.history()] == ["cap", "create"]


def test_the_same_events_and_the_same_text_as_the_transaction(pg_url: str) -> None:
    """A charge's history row is the locked transaction's, byte for byte, whichever path."""
    import psycopg

    for project, one in (("one", True), ("locked", False)):
        clock = Clock(T0.replace(microsecond=0))
        book = ledger(pg_url, project, clock, one)
        book.create("alice", "10")
        book.set_cap("100")
        book.charge_cost("alice", "0.0010", model="gpt-4o")
        clock.now += timedelta(microseconds=123)
        book.charge_cost("alice", "1.50", model="gpt-4o")
        book.charge_cost("alice", "2")
    with psycopg.connect(pg_url) as conn:

        def rows(project: str) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT at, ord, name, type, cost, event FROM budgetctl_history "
                "WHERE project = %s ORDER BY at, tx, ord",
                (project,),
            ).fetchall()

        def budgets(project: str) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT b.name, b.current_cost, b.model_cost, c.current_cost FROM "
                "budgetctl_budgets b JOIN budgetctl_caps c USING (project) WHERE project = %s",
                (project,),
            ).fetchall()

        assert rows("one") == rows("locked")
        assert budgets("one") == budgets("locked")
        assert budgets("one")[0][2] == '{"gpt-4o": "1.501"}'


def _walk(book: Ledger, clock: Clock, rng: random.Random, steps: int) -> list[object]:
    """A seeded random walk over one project; what each step returned or raised."""
    users = ["ann", "ben", "cy"]
    seen: list[object] = []
    holds: list[tuple[str, str]] = []

    def amount() -> Decimal:
        return Decimal(rng.choice(["0.001", "0.01", "0.5", "1", "2.5", "3", "4.999", "5"]))

    for user in users:
        book.create(
            user,
            rng.choice(["5", "10", "12.5"]),
            duration=rng.choice(["daily", "weekly", None]),
            alert_at=rng.choice([None, "50", "25,50,100", "80"]),
        )
    if rng.random() < 0.5:  # without a cap, other users' holds are on no row of this charge's
        book.set_cap(rng.choice(["20", "30"]), duration="daily", alert_at=rng.choice([None, "90"]))
    for _ in range(steps):
        kind = rng.choices(
            ["charge", "enforce", "reserve", "commit", "release", "time", "reset"],
            [30, 30, 8, 6, 3, 6, 1],
        )[0]
        user = rng.choice(users)
        try:
            if kind in ("charge", "enforce"):
                result = book.charge_cost(
                    user,
                    amount(),
                    model=rng.choice([None, "m1", "m2"]),
                    enforce=kind == "enforce",
                )
                seen.append(
                    (
                        kind,
                        result.budget.current_cost,
                        result.budget.model_cost,  # compared as numbers: "5.5" == "5.500"
                        result.cap.current_cost if result.cap else None,
                        result.alerts,
                    )
                )
            elif kind == "reserve":
                placed = book.reserve(user, amount(), ttl=timedelta(minutes=rng.choice([5, 90])))
                if placed.hold is not None:
                    holds.append((placed.hold.hold_id, user))
                seen.append(f"reserve {placed.allowed} {placed.reserved} {placed.cap_reserved}")
            elif kind == "commit" and holds:
                hold_id, owner = holds.pop(rng.randrange(len(holds)))
                result = book.commit(hold_id, owner, amount())
                seen.append(f"commit {result.budget.current_cost} {result.held}")
            elif kind == "release" and holds:
                hold_id, _ = holds.pop(rng.randrange(len(holds)))
                seen.append(("release", [h._replace(hold_id="") for h in book.release([hold_id])]))
            elif kind == "time":
                clock.now += timedelta(minutes=rng.choice([1, 30, 240, 1440]))
                seen.append("time")
            elif kind == "reset":
                done = book.reset_due()
                seen.append(("reset", done.checked, done.reset, done.cap, done.expired))
        except Exception as exc:
            # the message names the project and a random hold id: the kind of error is compared
            seen.append((kind, "raised", type(exc).__name__, getattr(exc, "scope", None)))
    return seen


def _anonymous(event: dict[str, Any]) -> dict[str, Any]:
    """An event without its hold id (a random one, different on each path)."""
    return {key: "" if key == "hold_id" else value for key, value in event.items()}


@pytest.mark.parametrize("seed", range(8))
def test_both_paths_leave_the_same_ledger(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The same random walk through the statement and through the transaction only: the same
    answers at every step, the same budgets, holds and history at the end."""
    paths = Paths(monkeypatch)
    found = {}
    for project, one in (("one", True), ("locked", False)):
        clock = Clock()
        book = ledger(pg_url, project, clock, one)
        steps = _walk(book, clock, random.Random(seed), 250)
        view = book.view()
        found[project] = (
            steps,
            view.users,
            view.cap,
            [hold._replace(hold_id="") for hold in book.holds()],
            [_anonymous(e.to_json()) for e in book.history()],
        )
    one, locked = found["one"], found["locked"]
    for n, (a, b) in enumerate(zip(one[0], locked[0], strict=True)):
        assert a == b, f"step {n}: statement path {a!r}, transaction {b!r}"
    assert one[1:] == locked[1:]
    # not vacuous: the walk went through the statement, and fell back from it, many times
    assert paths.at_once > 30 and paths.fell_back > 10, (paths.at_once, paths.fell_back)


def _held(url: str) -> dict[str, Decimal]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, held FROM budgetctl_budgets").fetchall()
        cap = conn.execute("SELECT held FROM budgetctl_caps").fetchall()
    found = {name: held for name, held in rows}
    if cap:
        found["(cap)"] = cap[0][0]
    return found


def test_held_follows_the_holds(pg_url: str) -> None:
    clock = Clock()
    book = ledger(pg_url, "p", clock)
    book.create("ann", "10")
    book.create("ben", "10")
    book.set_cap("100")
    first = book.reserve("ann", "1.5", ttl=timedelta(minutes=5)).hold
    second = book.reserve("ann", "2", ttl=timedelta(hours=2)).hold
    third = book.reserve("ben", "0.25", ttl=timedelta(hours=2)).hold
    assert first and second and third
    assert _held(pg_url) == {"ann": Decimal("3.5"), "ben": Decimal("0.25"), "(cap)": 3.75}
    book.commit(second.hold_id, "ann", "1")
    assert _held(pg_url) == {"ann": Decimal("1.5"), "ben": Decimal("0.25"), "(cap)": 1.75}
    book.release([third.hold_id])
    assert _held(pg_url) == {"ann": Decimal("1.5"), "ben": 0, "(cap)": Decimal("1.5")}
    clock.now += timedelta(minutes=10)  # ann's first hold expired
    import psycopg

    with psycopg.connect(pg_url) as other:  # a transaction has ann's row locked meanwhile
        other.execute("SELECT 1 FROM budgetctl_budgets WHERE name = 'ann' FOR UPDATE")
        book.charge_cost("ben", "1")  # archives the hold on the way, without waiting for ann's
        assert book.holds() == []
        assert _held(pg_url) == {"ann": Decimal("1.5"), "ben": 0, "(cap)": 0}
    # ann's charges take the transaction until one that locks her row mends it: the first
    assert book.store.one_statement
    book.charge_cost("ann", "1")
    assert _held(pg_url) == {"ann": 0, "ben": 0, "(cap)": 0}
    assert book.get("ann").current_cost == 2
    # a hold archived when no one has its user's row: mended at once
    book.reserve("ben", "0.5", ttl=timedelta(minutes=5))
    clock.now += timedelta(minutes=10)
    book.charge_cost("ann", "1")
    assert _held(pg_url) == {"ann": 0, "ben": 0, "(cap)": 0}


def test_restore_and_migration_set_held_and_capped(pg_url: str) -> None:
    import psycopg

    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    book.set_cap("100")
    book.create("bob", "10")  # after the cap: capped too
    book.reserve("ann", "1.5", ttl=timedelta(hours=1))
    book.reserve("ann", "2", ttl=timedelta(hours=1))
    snap = book.store.export()
    copy = ledger(pg_url, "q", Clock())
    copy.store.restore(snap, T0)
    plain = ledger(pg_url, "r", Clock())
    plain.create("cid", "10")  # no cap in its project
    query = (
        "SELECT project || '/' || name, held, capped FROM budgetctl_budgets UNION ALL "
        "SELECT project || '-cap', held, NULL FROM budgetctl_caps ORDER BY 1"
    )
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(query).fetchall()
        assert rows == [
            ("p-cap", 3.5, None),
            ("p/ann", 3.5, True),
            ("p/bob", 0, True),
            ("q-cap", 3.5, None),
            ("q/ann", 3.5, True),
            ("q/bob", 0, True),
            ("r/cid", 0, False),
        ]
        # a database of version 2, its holds already there: the migrations fill held and
        # capped in
        conn.execute("ALTER TABLE budgetctl_budgets DROP COLUMN held, DROP COLUMN capped")
        conn.execute("ALTER TABLE budgetctl_caps DROP COLUMN held")
        conn.execute("DELETE FROM budgetctl_schema WHERE version > 2")
        conn.commit()
    database = Database(pg_url)
    assert database.migrate() == (2, schema.VERSION)
    database.close()
    with psycopg.connect(pg_url) as conn:
        again = conn.execute(query).fetchall()
    assert again == rows


def race(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    first: Ledger,
    holding: Callable[[], object],
    waiting: Callable[[], object],
    query: str = "%",
) -> None:
    """Run ``holding`` on ``first``'s store until it has locked its rows and not written them
    (paused in PgState.flush), then ``waiting`` until the database shows it waiting for a lock
    (its statement's text LIKE ``query``); then let both finish."""
    import threading

    import psycopg

    from budgetctl.store.postgres.store import PgState

    in_flush, go_on = threading.Event(), threading.Event()
    flush = PgState.flush

    def paused_flush(state: PgState) -> None:
        if state.store is first.store:
            in_flush.set()
            assert go_on.wait(30)
        flush(state)

    monkeypatch.setattr(PgState, "flush", paused_flush)
    holder = threading.Thread(target=holding)
    holder.start()
    assert in_flush.wait(30)  # the rows are locked, nothing written
    other = threading.Thread(target=waiting)
    other.start()
    with psycopg.connect(url, autocommit=True) as watch:
        for _ in range(300):
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE %s",
                (query,),
            ).fetchone()
            if row and row[0]:
                break
            threading.Event().wait(0.02)
        else:
            raise AssertionError("the second never waited for the first's locks")
    go_on.set()
    holder.join(30)
    other.join(30)


@pytest.mark.parametrize("binding", ["user", "cap"])
def test_a_charge_waiting_on_a_hold_being_placed_sees_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, binding: str
) -> None:
    """The race the ``held`` column closes, made to happen: a hold's transaction has locked the
    rows and not committed yet when the charge's statement starts (its snapshot has no hold);
    the statement waits for the row, and must then see the hold on it and leave the charge to
    the core, which refuses it: the hold reserved everything."""
    clock = Clock()
    placing, charging = ledger(pg_url, "p", clock), ledger(pg_url, "p", clock)
    placing.create("ann", "1" if binding == "user" else "100")
    placing.create("ben", "1" if binding == "user" else "100")
    if binding == "cap":
        placing.set_cap("1")
    found: dict[str, Any] = {}

    def place() -> None:
        found["hold"] = placing.reserve("ann", "1").hold

    def charge() -> None:
        try:
            found["charge"] = charging.charge_cost(
                "ann" if binding == "user" else "ben", "0.5", enforce=True
            )
        except BudgetExceededError as exc:
            found["charge"] = exc

    paths = Paths(monkeypatch)
    # the charge's statement waits for the row the hold's transaction locked
    race(monkeypatch, pg_url, placing, place, charge, "WITH u AS (UPDATE budgetctl_budgets%")
    assert found["hold"] is not None
    assert isinstance(found["charge"], BudgetExceededError), found["charge"]
    assert found["charge"].scope == ("user" if binding == "user" else "project")
    assert paths.fell_back == 1 and paths.at_once == 0


# --- the statement as the store runs it: its event's text, and a prepared statement's life ---

_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    user=_names,
    model=st.none() | _names,
    cost=st.decimals(min_value=0, max_value=10**9, places=7, allow_nan=False),
    tokens=st.tuples(*[st.integers(0, 10**12)] * 3),
    request_id=st.none() | _names,
    estimated=st.booleans(),
)
def test_the_event_text_is_what_json_writes(
    user: str,
    model: str | None,
    cost: Decimal,
    tokens: tuple[int, int, int],
    request_id: str | None,
    estimated: bool,
) -> None:
    request = ChargeRequest(user, cost, model, *tokens, request_id=request_id, estimated=estimated)
    expected = json.dumps(events.Charge(None, *request).to_json(), separators=(",", ":"))
    assert one_statement.event(request) == expected


def _session(book: Ledger) -> Any:
    assert isinstance(book.store, PostgresStore)
    return book.store.db.connection()


def test_a_session_that_lost_its_prepared_statement_prepares_it_again(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "statement"
    conn = _session(book)
    names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]
    assert [n for n in names if n.startswith("budgetctl_charge_")], names
    conn.execute("DEALLOCATE ALL")  # as a pooler's reset or another library would
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "statement"
    assert book.get("ann").current_cost == Decimal("2")
    assert [e.type for e in book.history("ann")].count("charge") == 2


def test_a_session_that_has_the_statement_already_runs_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session handed over by a pooler keeps what the last client prepared: the name is the
    statement's text, so the store runs what is there."""
    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    name, sql, _, types = one_statement.prepared(False, False, False)
    conn = _session(book)
    conn.pgconn.prepare(name, sql, types)  # prepared before the store knew it
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "statement"
    assert book.get("ann").current_cost == Decimal("1")


def test_a_lost_session_fails_closed_and_the_next_charge_prepares_anew(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    book.charge_cost("ann", "1")
    pid = _session(book).info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StorageIOError):
        book.charge_cost("ann", "1")
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "statement"
    assert _session(book).info.backend_pid != pid
    assert book.get("ann").current_cost == Decimal("2")


def test_ctrl_c_cancels_a_charge_waiting_on_a_lock_in_the_server(pg_url: str) -> None:
    """The statement runs through psycopg's wait loop, not libpq's blocking call: Ctrl-C while it
    waits for a row lock cancels it in the server (nothing written) and the session goes on."""
    import signal
    import threading

    import psycopg

    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    book.charge_cost("ann", "1")  # prepared
    pid = _session(book).info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as holder, holder.transaction():
        holder.execute("SELECT 1 FROM budgetctl_budgets WHERE name = 'ann' FOR UPDATE")

        def interrupt() -> None:
            with psycopg.connect(pg_url, autocommit=True) as watch:
                for _ in range(500):
                    row = watch.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    if row and row[0] == "Lock":
                        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                        return
                    threading.Event().wait(0.01)

        thread = threading.Thread(target=interrupt)
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            book.charge_cost("ann", "1")
        thread.join(10)
    assert book.get("ann").current_cost == Decimal("1")
    book.charge_cost("ann", "1")
    assert book.get("ann").current_cost == Decimal("2")
    assert _session(book).info.backend_pid == pid


def test_a_cap_set_elsewhere_is_charged_by_a_store_that_saw_none(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that found no cap runs the statement without one; a cap another process sets
    makes that statement fail (nothing written), and the charge is counted against the cap."""
    clock = Clock()
    worker, admin = ledger(pg_url, "p", clock), ledger(pg_url, "p", clock)
    admin.create("ann", "10")
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: worker.charge_cost("ann", "1")) == "statement"
    assert paths.taken(lambda: worker.charge_cost("ann", "1")) == "statement"  # without a cap
    admin.set_cap("100")
    result = paths.taken(lambda: worker.charge_cost("ann", "1"))
    assert result == "fell back"
    charged = worker.charge_cost("ann", "1")
    assert paths.at_once == 3
    # the cap starts from what the users spent (2), then both charges since
    assert charged.cap is not None and charged.cap.current_cost == Decimal("4")
    admin.clear_cap()
    assert paths.taken(lambda: worker.charge_cost("ann", "1")) == "statement"
    assert worker.charge_cost("ann", "1").cap is None
    assert worker.get("ann").current_cost == Decimal("6")


@pytest.mark.parametrize("whose", ["user", "cap"])
def test_thresholds_set_elsewhere_are_never_skipped(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, whose: str
) -> None:
    """A store that saw a row without alert thresholds sends the statement that does not test
    them, which requires the row to have none: thresholds another process sets make it write
    nothing, the transaction records the alert, and the store tests them from then on; once
    they are gone, it stops."""
    clock = Clock()
    worker, admin = ledger(pg_url, "p", clock), ledger(pg_url, "p", clock)
    admin.create("ann", "10")
    admin.set_cap("10")
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: worker.charge_cost("ann", "1")) == "statement"
    assert paths.taken(lambda: worker.charge_cost("ann", "1")) == "statement"
    if whose == "user":
        admin.set("ann", alert_at="50")
    else:
        admin.set_cap(alert_at="50")
    assert paths.taken(lambda: worker.charge_cost("ann", "0.5")) == "fell back"  # learnt
    assert paths.taken(lambda: worker.charge_cost("ann", "0.5")) == "statement"  # tests them
    assert paths.taken(lambda: worker.charge_cost("ann", "2")) == "fell back"  # crosses 50%
    alerts = [e for e in worker.history() if e.type == "alert"]
    assert [(a.user, a.threshold) for a in alerts] == [
        ("ann" if whose == "user" else None, Decimal("50"))
    ]
    assert paths.taken(lambda: worker.charge_cost("ann", "0.5")) == "statement"
    if whose == "user":
        admin.set("ann", alert_at=None)
    else:
        admin.set_cap(alert_at=None)
    assert paths.taken(lambda: worker.charge_cost("ann", "0.5")) == "statement"  # sees none
    assert paths.taken(lambda: worker.charge_cost("ann", "0.5")) == "statement"
    assert worker.get("ann").current_cost == Decimal("6.5")


def test_threads_sharing_a_store_each_get_their_own_charge(pg_url: str) -> None:
    """One store (one connection) charged from several threads: each charge's answer is its
    own row, not another thread's (the statement's result is read under the connection's
    lock)."""
    import threading

    book = ledger(pg_url, "p", Clock())
    users = [f"t{i}" for i in range(4)]
    for user in users:
        book.create(user, "1000")
    seen: dict[str, list[Decimal]] = {user: [] for user in users}

    def work(user: str, cost: Decimal) -> None:
        for _ in range(150):
            seen[user].append(book.charge_cost(user, cost).budget.current_cost)

    threads = [
        threading.Thread(target=work, args=(user, Decimal(i + 1))) for i, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, user in enumerate(users):
        step = Decimal(i + 1)
        assert seen[user] == [step * n for n in range(1, 151)], user


@pytest.mark.parametrize("knows", ["no cap", "nothing", "locked"])
def test_a_charge_during_the_setting_of_a_cap_is_counted_by_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, knows: str
) -> None:
    """A cap set where there was none counts the spend of its period from the history, so a
    charge racing it must either be in that history or be charged to the cap. Made to happen:
    the cap's transaction has locked the rows and not committed when the charge starts (its
    snapshot has no cap); the charge waits for the user's row, sees ``capped`` on it and is
    counted against the new cap. ``knows``: what the charging store believes (a charge
    already found no cap; a new store; every charge in the locked transaction)."""
    clock = Clock()
    admin = ledger(pg_url, "p", clock)
    worker = ledger(pg_url, "p", clock, one=knows != "locked")
    admin.create("ann", "100")
    if knows == "no cap":
        worker.charge_cost("ann", "1")
    found: dict[str, Any] = {}

    def set_cap() -> None:
        found["cap"] = admin.set_cap("1000")

    def charge() -> None:
        found["charge"] = worker.charge_cost("ann", "2")

    race(monkeypatch, pg_url, admin, set_cap, charge)
    # the cap counts from when it was set (no duration; the clock stands still here, so the
    # charge before it, at the same time, is in its spend), then the racing charge
    before = Decimal("1") if knows == "no cap" else Decimal("0")
    assert found["cap"].current_cost == before
    assert found["charge"].cap is not None
    assert found["charge"].cap.current_cost == before + 2
    assert admin.cap() is not None and admin.cap().current_cost == before + 2
    worker.charge_cost("ann", "3")
    assert admin.cap().current_cost == before + 5


def test_a_statement_the_server_cancels_is_not_called_unreachable(pg_url: str) -> None:
    """A live server that fails the operation (here a statement timeout while the row is locked
    elsewhere) is exit 1 naming what it said, not "cannot reach the PostgreSQL server"."""
    from urllib.parse import quote

    import psycopg

    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    timed = ledger(pg_url + quote(" -cstatement_timeout=200"), "p", Clock())
    with psycopg.connect(pg_url, autocommit=True) as holder, holder.transaction():
        holder.execute("SELECT 1 FROM budgetctl_budgets WHERE name = 'ann' FOR UPDATE")
        with pytest.raises(StorageIOError) as caught:
            timed.charge_cost("ann", "1")
    message = str(caught.value)
    assert "failed the operation" in message and "statement timeout" in message, message
    assert "cannot reach" not in message
    assert timed.charge_cost("ann", "1").budget.current_cost == Decimal("1")  # and goes on


def test_a_row_out_of_step_with_the_cap_is_put_right_by_its_next_write(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose ``capped`` disagrees with the project (a user created while a cap was being
    set) only sends its charges to the transaction, which charges the cap and rewrites it."""
    import psycopg

    book = ledger(pg_url, "p", Clock())
    book.create("ann", "10")
    book.set_cap("100")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE budgetctl_budgets SET capped = false")
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "fell back"
    assert paths.taken(lambda: book.charge_cost("ann", "1")) == "statement"
    cap = book.cap()
    assert cap is not None and cap.current_cost == Decimal("2")


@pytest.mark.parametrize("first", ["cap", "user"])
def test_a_user_created_while_a_cap_is_set_is_capped(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """The creation of users and the setting of a cap where there was none wait for each other
    (the project's row), so a new user's row is never left without ``capped`` in a capped
    project, whichever commits first, and its charges take the statement that charges the cap."""
    import psycopg

    clock = Clock()
    admin, hr = ledger(pg_url, "p", clock), ledger(pg_url, "p", clock)
    admin.create("ann", "100")

    def set_cap() -> None:
        admin.set_cap("1000")

    def create() -> None:
        hr.create("bob", "100")

    if first == "cap":
        race(monkeypatch, pg_url, admin, set_cap, create)
    else:
        race(monkeypatch, pg_url, hr, create, set_cap)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT name, capped FROM budgetctl_budgets ORDER BY name").fetchall()
    assert rows == [("ann", True), ("bob", True)]
    paths = Paths(monkeypatch)
    assert paths.taken(lambda: hr.charge_cost("bob", "2")) == "statement"
    cap = admin.cap()
    assert cap is not None and cap.current_cost == Decimal("2")
