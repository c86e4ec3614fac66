"""Faults on the PostgreSQL store (issue 11): deadlocks retried, clients killed with kill -9.

Each test has its own schema (tests/helpers/postgres.py); the workers are tests/_pg_worker.py,
each a host with its own ``Ledger(project, database_url=URL)`` and connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers.postgres import fresh_schema
from pg_hosts import checked
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


def _wait_until_blocked_by(conn: psycopg.Connection[Any], timeout: float = 20) -> None:
    """Wait until some backend waits for a lock ``conn``'s transaction holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY("
            "pg_blocking_pids(pid))"
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.05)
    raise AssertionError("nothing waited for the lock")


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
        _wait_until_blocked_by(other)
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
