"""Faults on the PostgreSQL store (issue 11): deadlocks retried, clients killed with kill -9.

Each test has its own schema (tests/helpers/postgres.py); the workers are tests/_pg_worker.py,
each a host with its own ``Ledger(project, database_url=URL)`` and connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers.postgres import fresh_schema
from pg_hosts import checked
from test_holds_race import Child

from budgetctl import Ledger
from budgetctl.core import rules

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
