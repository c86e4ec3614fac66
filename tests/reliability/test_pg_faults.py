"""Faults on the PostgreSQL store (issue 11): deadlocks retried, clients killed with kill -9.

Each test has its own schema (tests/helpers/postgres.py); the workers are tests/_pg_worker.py,
each a host with its own ``Ledger(project, database_url=URL)`` and connection.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers.postgres import fresh_schema
from pg_hosts import Host, acknowledged, checked, in_flight
from test_holds_race import Child

from budgetctl import Ledger
from budgetctl.core import rules
from budgetctl.core.operations import ResetDue
from budgetctl.core.periods import UTC

pytestmark = pytest.mark.reliability


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def hosts() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def test_a_deadlocked_charge_is_run_again(pg_url: str, counts: Any) -> None:
    """Another transaction holds the cap's row and then asks for the user's, which the charge
    holds while it waits for the cap's: PostgreSQL ends the charge's transaction as the deadlock's
    victim (its deadlock_timeout is the shorter), and the store runs the charge again."""
    book = Ledger("p", database_url=pg_url)
    book.create("a", 100)
    book.set_cap(1000)
    outcome: list[object] = []
    with psycopg.connect(pg_url) as other:
        other.execute("SET deadlock_timeout = '20s'")  # this side waits: the charge is the victim
        other.execute("SELECT 1 FROM budgetctl_caps WHERE project = 'p' FOR UPDATE")

        def charge() -> None:
            try:
                outcome.append(book.charge_cost("a", 3, request_id="r1"))
            except Exception as exc:  # reported below
                outcome.append(exc)

        thread = threading.Thread(target=charge)
        thread.start()
        time.sleep(0.5)  # the charge holds "a" and waits for the cap's row
        other.execute(
            "SELECT 1 FROM budgetctl_budgets WHERE project = 'p' AND name = 'a' FOR UPDATE"
        )  # returns once the deadlock ended the charge's transaction
        other.commit()
        thread.join(timeout=30)
    assert not thread.is_alive()
    failed = not outcome or isinstance(outcome[0], Exception)
    counts(operations=1, faults=1, lost=int(failed))
    assert not failed, outcome
    _, balances, charged = checked(book)
    assert balances == {"a": Decimal(3), rules.CAP: Decimal(3)}
    assert charged == {"r1": 1}


def _wait_until_blocked_by(
    conn: psycopg.Connection[Any], outcome: list[object], timeout: float = 20
) -> None:
    """Wait until some backend waits for a lock ``conn``'s transaction holds (AssertionError if
    none does, or the operation expected to wait ended: ``outcome``). Polled from a connection of
    its own: within ``conn``'s transaction, pg_stat_activity would stay as first read."""
    pid = conn.info.backend_pid
    with psycopg.connect(conn.info.dsn, autocommit=True) as watcher:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not outcome:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (pid,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"nothing waited for the lock: {outcome}")


def test_reset_due_takes_the_rows_in_the_charges_order(pg_url: str, counts: Any) -> None:
    """A charge holds its user's row and then asks for the cap's. ``reset-due`` must not hold the
    cap's row while it waits for that user's (it deadlocked with charges: 11 deadlocks in one run
    of four runners against eight charging hosts): here the other transaction holds a due user's
    row, reset-due waits for it, and the cap's row is still free."""
    day = Ledger("p", database_url=pg_url, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    day.create("a", 100, duration="1d")
    day.set_cap(1000, duration="1d")
    later = Ledger("p", database_url=pg_url, clock=lambda: datetime(2024, 1, 3, tzinfo=UTC))
    outcome: list[object] = []
    with psycopg.connect(pg_url) as other:
        other.execute(
            "SELECT 1 FROM budgetctl_budgets WHERE project = 'p' AND name = 'a' FOR UPDATE"
        )

        def reset() -> None:
            try:
                outcome.append(later.reset_due(now=datetime(2024, 1, 3, tzinfo=UTC)))
            except Exception as exc:  # reported below
                outcome.append(exc)

        thread = threading.Thread(target=reset)
        thread.start()
        _wait_until_blocked_by(other, outcome)
        try:  # the cap's row is free: reset-due has not taken it before the user's
            other.execute("SELECT 1 FROM budgetctl_caps WHERE project = 'p' FOR UPDATE NOWAIT")
            free = True
        except psycopg.errors.LockNotAvailable:
            free = False
        other.rollback()
        thread.join(timeout=30)
    counts(operations=1, faults=int(not free), lost=0)
    assert free, "reset-due held the cap's row while it waited for a user's"
    assert outcome and not isinstance(outcome[0], Exception), outcome
    result = outcome[0]
    assert isinstance(result, ResetDue)
    assert [user for user, _ in result.reset] == ["a"] and result.cap is not None


USERS = "4*u"  # the loop workers charge u0 .. u3 at random
COST = Decimal("0.01")


def _users(book: Ledger) -> None:
    for n in range(4):
        book.create(f"u{n}", 1_000_000)
    book.set_cap(1_000_000)


def _settle(book: Ledger, url: str, killed: list[list[str]]) -> dict[str, int]:
    """After the kills: retry each charge a killed worker had not acknowledged (as a client that
    lost its answer does), then check that every acknowledged charge is in the history exactly
    once, no id twice, nothing charged that no client sent, and the balances replay. Returns the
    figures."""
    done: dict[str, str] = {}
    pending: dict[str, list[str]] = {}
    for lines in killed:
        done.update(acknowledged(lines))
        open_ = in_flight(lines)
        if open_ is not None:
            pending.setdefault(open_[1], []).append(open_[0])
    _, _, committed = checked(book)  # before the retries: which in-flight charges committed
    retried: dict[str, str] = {}
    for user, ids in pending.items():
        lines = Host("retry", url, "p", user, str(COST), *ids).finish()
        retried.update(acknowledged(lines))
        for key in ids:  # committed before the kill: a duplicate now; else charged now, once
            word = "duplicate" if key in committed else "ok"
            assert f"{word} {key} {user}" in lines, (key, lines)
    duplicates = sum(
        line.startswith("duplicate ") for lines in killed for line in lines
    )  # a client's retry after its answer was lost
    _, balances, charged = checked(book)
    missing = set(done) - set(charged)
    assert not missing, f"acknowledged charges lost: {sorted(missing)[:10]}"
    assert set(charged) == set(done) | set(retried), "a charge no client sent, or one lost"
    assert balances[rules.CAP] == COST * len(charged)
    applied_in_flight = sum(1 for key in retried if key in committed)
    return {
        "acknowledged": len(done),
        "in_flight": len(retried),
        "in_flight_committed_before_the_kill": applied_in_flight,
        "answers_lost_then_duplicate": duplicates,
        "charged": len(charged),
    }


def test_clients_killed_at_random_lose_and_double_nothing(
    pg_url: str, hosts: list[Child], counts: Any
) -> None:
    """8 hosts charge 4 users (and the cap) in a loop; 24 times a random one is killed with
    kill -9 at a random moment and replaced. Every acknowledged charge is there once, and
    retrying the charge a killed client was making charges it at most once."""
    book = Ledger("p", database_url=pg_url)
    _users(book)
    rng = random.Random(11)
    started = time.monotonic()
    generation = 0

    def spawn() -> Child:
        nonlocal generation
        generation += 1
        host = Host("loop", pg_url, "p", USERS, str(COST), f"g{generation}", str(generation))
        hosts.append(host)
        return host

    running = [spawn() for _ in range(8)]
    killed: list[list[str]] = []
    kills = 24
    for _ in range(kills):
        victim = running.pop(rng.randrange(len(running)))
        if "ready" not in victim.lines:
            victim.wait_for("ready")
        victim.drain()
        time.sleep(rng.uniform(0, 0.06))  # a random point of its charge loop
        killed.append(victim.kill())
        running.append(spawn())
    for host in running:  # the rest too, at whatever they were doing
        if "ready" not in host.lines:
            host.wait_for("ready")
        time.sleep(rng.uniform(0, 0.02))
        killed.append(host.kill())
    figures = _settle(book, pg_url, killed)
    took = time.monotonic() - started
    counts(operations=figures["charged"], faults=kills + len(running), lost=0)
    print(f"kill -9: {kills + len(running)} kills of 8 hosts; {figures}; {took:.1f} s")
    assert figures["acknowledged"] > 0


# --- a PostgreSQL restarted with -m immediate ---------------------------------------------------

BIN = Path("/usr/lib/postgresql/15/bin")


def _server_binaries() -> Path:
    """The directory of initdb, pg_ctl and postgres (PATH, pg_config --bindir, Debian's)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    config = shutil.which("pg_config")
    if config:
        out = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += [*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True), BIN]
    for where in candidates:
        if all((where / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return where
    pytest.fail(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: " + str(candidates)
    )


class Cluster:
    """A throwaway PostgreSQL cluster in a temp dir, run as the ``postgres`` OS user when the
    tests run as root (initdb refuses root); always stopped and removed by :meth:`remove`."""

    def __init__(self) -> None:
        self.bin = _server_binaries()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.fail("running as root, and no runuser to run the server as postgres")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="bc_pgcluster_"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        with socket.socket() as probe:  # a free port (binding is no network access)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"{args[0]} failed ({done.returncode}): {done.stderr}{done.stdout}{log}")
        return done

    def init(self) -> None:
        self.run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on "
            "-c synchronous_commit=on -c max_connections=40 -c shared_buffers=16MB"
        )
        self.run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "50",
            "-o", options, "start",
        )  # fmt: skip

    def crash(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop",
                check=False,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.init()
        made.start()
        yield made
    finally:
        made.remove()


def test_a_server_stopped_with_immediate_loses_no_acknowledged_charge(
    cluster: Cluster, hosts: list[Child], counts: Any
) -> None:
    """8 hosts charge in a loop against a cluster of the test's own; mid-load it is stopped with
    ``pg_ctl stop -m immediate`` (no checkpoint, no clean shutdown: crash recovery at the next
    start) and started again. Clients retry what failed with the same request id. Every charge
    acknowledged before the crash, or after it, is there exactly once."""
    from budgetctl.store.postgres.store import Database

    database = Database(cluster.url)
    database.migrate()
    database.close()
    book = Ledger("p", database_url=cluster.url)
    _users(book)
    started = time.monotonic()
    for n in range(8):
        hosts.append(Host("loop", cluster.url, "p", USERS, str(COST), f"w{n}", str(n)))
    for host in hosts:
        host.wait_for("ok ")  # every host is charging
    time.sleep(1.0)
    for host in hosts:
        host.drain()
    before = sum(len(acknowledged(host.lines)) for host in hosts)
    cluster.crash()
    crashed = time.monotonic()
    time.sleep(0.5)  # the clients see the server gone
    cluster.start()
    for host in hosts:  # every host acknowledges a charge after the restart
        host.drain()
        seen = len(host.lines)
        while not any(line.startswith("ok ") for line in host.lines[seen:]):
            host.next_line()
    down = time.monotonic() - crashed
    killed = [host.kill() for host in hosts]
    failed = sum(line.startswith("failed ") for lines in killed for line in lines)
    book = Ledger("p", database_url=cluster.url)  # a new connection to the restarted server
    figures = _settle(book, cluster.url, killed)
    took = time.monotonic() - started
    counts(operations=figures["charged"], faults=1, lost=0)
    print(
        f"-m immediate: {before} charges acknowledged before the crash; {failed} calls failed"
        f" while the server was down ({down:.1f} s to every host charging again); {figures};"
        f" {took:.1f} s"
    )
    assert failed > 0, "no client saw the server go: the crash came at no load"
