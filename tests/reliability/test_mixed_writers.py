"""Processes and threads charging one project at once, with readers watching: nothing is lost.

Worker processes (tests/_worker.py) and threads of this process, each thread with a Ledger of its
own, charge the same users concurrently while reader threads load the state and the history over
and over, or while cron-style reset-due processes close periods (``Ledger.reset_due(now=...)`` in
a worker: the command line refuses a ``--now`` later than the clock). Every charge carries
a request id; afterwards every id is recorded once, the balances (plus the closed periods) are the
exact Decimal sums, and the history's replay equals them.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from _support import DEADLINE, PROJECT, Counts, children, consistent, spawn

from budgetctl import Ledger
from budgetctl.core import rules
from budgetctl.core.periods import format_utc

pytestmark = pytest.mark.reliability

PROCESSES = [("shared", "0.01"), ("shared", "1.23456789"), ("other", "0.0001")]
THREADS = [("shared", "0.001"), ("other", "0.3"), ("shared", "0.000000000000000001")]
PER_WORKER = 60
READERS = 2


def test_processes_and_threads_charging_together_lose_nothing(
    data_dir: Path, counts: Counts
) -> None:
    book = Ledger(PROJECT)
    book.create("shared", "1000000")
    book.create("other", "5")  # goes over budget: charges still record
    book.set_cap("1000000")
    failures: list[BaseException] = []
    reads = [0] * READERS
    stop = threading.Event()

    def charge_in_thread(index: int, user: str, cost: str) -> None:
        ledger = Ledger(PROJECT, lock_timeout=DEADLINE)  # its own Ledger, its own lock fd
        try:
            for n in range(PER_WORKER):
                assert not ledger.charge_cost(user, cost, request_id=f"t{index}-{n}").duplicate
        except BaseException as exc:  # reported by the test thread below
            failures.append(exc)

    def read_in_thread(index: int) -> None:
        ledger = Ledger(PROJECT)
        try:
            while not stop.is_set():
                view = ledger.view()  # never a half-written file
                assert {b.user for b in view.users} == {"shared", "other"}
                ledger.history(limit=5)
                reads[index] += 1
        except BaseException as exc:
            failures.append(exc)

    with children() as procs:
        procs.extend(
            spawn("charge", PROJECT, user, cost, str(PER_WORKER), f"p{i}")
            for i, (user, cost) in enumerate(PROCESSES)
        )
        threads = [
            threading.Thread(target=charge_in_thread, args=(i, user, cost))
            for i, (user, cost) in enumerate(THREADS)
        ]
        readers = [threading.Thread(target=read_in_thread, args=(i,)) for i in range(READERS)]
        for thread in threads + readers:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE)
        for proc in procs:
            out, err = proc.communicate(timeout=DEADLINE)
            assert proc.returncode == 0, err.decode()
            assert out.count(b"done ") == PER_WORKER
        stop.set()
        for thread in readers:
            thread.join(timeout=DEADLINE)
    assert not any(t.is_alive() for t in threads + readers), "a thread did not finish in time"
    assert not failures, failures[0]

    balances, events = consistent(book, data_dir)
    charged = [e for e in events if e["type"] == "charge"]
    ids = {e["request_id"] for e in charged}
    tried = (len(PROCESSES) + len(THREADS)) * PER_WORKER
    expected: dict[str, Decimal] = {"shared": Decimal(0), "other": Decimal(0)}
    for user, cost in PROCESSES + THREADS:
        expected[user] += Decimal(cost) * PER_WORKER
    line = counts(
        operations=tried,
        reads=sum(reads),
        writers=len(PROCESSES) + len(THREADS),
        charges_lost=tried - len(ids),
    )
    assert len(charged) == len(ids) == tried, line
    assert balances["shared"] == expected["shared"] == book.get("shared").current_cost, line
    assert balances["other"] == expected["other"], line
    assert balances[rules.CAP] == expected["shared"] + expected["other"], line
    assert all(r > 0 for r in reads), f"a reader never completed a read; {line}"


def test_charges_racing_cron_reset_due_lose_nothing(data_dir: Path, counts: Counts) -> None:
    """Charges from processes and threads while cron-style ``budgetctl reset-due`` processes close
    periods: every charge ends up in exactly one period, the current one or a closed one."""
    book = Ledger(PROJECT)
    book.create("shared", "1000000", duration="daily")
    book.set_cap("1000000", duration="daily")
    start = book.now()
    failures: list[BaseException] = []
    resets = 8

    def charge_in_thread(index: int) -> None:
        ledger = Ledger(PROJECT, lock_timeout=DEADLINE)
        try:
            for n in range(PER_WORKER):
                ledger.charge_cost("shared", "0.07", request_id=f"t{index}-{n}")
        except BaseException as exc:
            failures.append(exc)

    def cron() -> None:
        try:
            for day in range(1, resets + 1):
                done = spawn("reset-due", PROJECT, format_utc(start + timedelta(days=day)))
                _, err = done.communicate(timeout=DEADLINE)
                assert done.returncode == 0, err.decode()
        except BaseException as exc:
            failures.append(exc)

    with children() as procs:
        procs.extend(
            spawn("charge", PROJECT, "shared", "0.5", str(PER_WORKER), f"p{i}") for i in (0, 1)
        )
        threads = [threading.Thread(target=charge_in_thread, args=(i,)) for i in (0, 1)]
        threads.append(threading.Thread(target=cron))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE)
        for proc in procs:
            _, err = proc.communicate(timeout=DEADLINE)
            assert proc.returncode == 0, err.decode()
    assert not any(t.is_alive() for t in threads), "a thread did not finish in time"
    assert not failures, failures[0]

    balances, events = consistent(book, data_dir)
    charged = [e for e in events if e["type"] == "charge"]
    closed = [e for e in events if e["type"] == "period" and e["user"] == "shared"]
    cap_closed = [e for e in events if e["type"] == "cap-period"]
    total = sum((Decimal(e["cost"]) for e in charged), Decimal(0))
    tried = 4 * PER_WORKER
    line = counts(
        operations=tried,
        periods_closed=len(closed),
        charges_lost=tried - len({e["request_id"] for e in charged}),
    )
    assert len(charged) == tried and total == (Decimal("0.5") + Decimal("0.07")) * 2 * PER_WORKER
    in_periods = sum((Decimal(e["spent"]) for e in closed), Decimal(0)) + balances["shared"]
    in_cap = sum((Decimal(e["spent"]) for e in cap_closed), Decimal(0)) + balances[rules.CAP]
    assert in_periods == total == in_cap, line
    assert len(closed) == resets, line  # one roll-over per day crossed, whatever raced it
