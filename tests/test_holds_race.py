"""Many processes racing reserve-then-commit against one budget (DESIGN.md section 10).

Each worker (tests/_holds_worker.py) is a real process with its own ``Ledger`` on the test's data
dir. First every worker reserves once at the same moment, with nothing settled in between: exactly
the number of holds that fit is admitted. Then each loops reserve -> a few ms -> commit (an actual
cost at most the hold) or release. The history is then walked event by event: spend plus open
holds never exceeded the budget (or the cap) at any point, every hold was settled once, nothing
stays reserved, and the history replays to the balances.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest
from test_processes import DEADLINE, consistent

from budgetctl import Ledger
from budgetctl.core import events, rules

pytestmark = pytest.mark.process

WORKER = Path(__file__).with_name("_holds_worker.py")
REPO = Path(__file__).resolve().parent.parent
WORKERS = 12
COST = Decimal("1.25")
FIT = 5  # holds of COST that fit the binding budget


class Child:
    """A worker process and the lines it printed (read without blocking past a deadline)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.buffer = b""
        self.lines: list[str] = []  # every complete line read so far

    def next_line(self, timeout: float = DEADLINE) -> str:
        """The next line the worker prints (AssertionError if none comes in ``timeout``)."""
        out = self.process.stdout
        assert out is not None
        end = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(out.fileno(), selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = end - time.monotonic()
                if left <= 0 or not selector.select(timeout=left):
                    raise AssertionError(f"worker printed no line within {timeout} s")
                chunk = os.read(out.fileno(), 65536)
                if not chunk:
                    _, err = self.process.communicate(timeout=DEADLINE)
                    raise AssertionError(f"worker exited: {err.decode()}")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        self.lines.append(line.decode())
        return self.lines[-1]

    def drain(self) -> None:
        """Take in what the worker printed so far, without waiting (so that a :meth:`wait_for`
        after it waits for a line printed from now on)."""
        out = self.process.stdout
        assert out is not None
        with selectors.DefaultSelector() as selector:
            selector.register(out.fileno(), selectors.EVENT_READ)
            while selector.select(timeout=0):
                chunk = os.read(out.fileno(), 65536)
                if not chunk:
                    break
                self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines.extend(line.decode() for line in complete)

    def wait_for(self, expected: str, timeout: float = DEADLINE) -> str:
        """Read lines until one starts with ``expected``; returns it."""
        while True:
            line = self.next_line(timeout)
            if line.startswith(expected):
                return line

    def send(self, line: str = "go") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = DEADLINE) -> list[str]:
        """Wait for the worker to exit; every line it printed."""
        rest, err = self.process.communicate(timeout=timeout)
        text = (self.buffer + rest).decode()
        self.buffer = b""
        self.lines.extend(text.splitlines())
        assert self.process.returncode == 0, err.decode()
        return self.lines

    def kill(self) -> list[str]:
        """SIGKILL the worker unless it exited; every line it printed."""
        if self.process.poll() is None:
            self.process.kill()
        rest, _ = self.process.communicate(timeout=DEADLINE)
        self.lines.extend((self.buffer + (rest or b"")).decode().splitlines())
        self.buffer = b""
        return self.lines


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Workers a test started; any still running at the end are killed (by their own pid)."""
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


class Walk(NamedTuple):
    """What walking a history found: the most holds open at once, and counts of each step."""

    most_open: int
    placed: int
    committed: Counter[str]  # hold id -> commit events
    released: int
    expired: int


def walk(history: Sequence[events.Event]) -> Walk:
    """Replay ``history`` (oldest first) event by event, asserting after each one that the user's
    spend plus their open holds, and the project's spend plus every open hold, are within the
    user's budget and the cap; that a hold is placed once and settled at most once; and that no
    commit went past its hold (the workers commit at most what they held)."""
    budgets: dict[str, Decimal] = {}
    spend: dict[str, Decimal] = {}
    held: Counter[str] = Counter()  # user -> what their open holds reserve
    cap: Decimal | None = None
    cap_spend = Decimal(0)
    open_: dict[str, events.HoldPlaced] = {}
    seen: set[str] = set()
    committed: Counter[str] = Counter()
    most = released = expired = 0
    for n, event in enumerate(history):
        user = getattr(event, "user", None)
        if isinstance(event, events.Create):
            budgets[event.user], spend[event.user] = event.total_budget, event.current_cost
        elif isinstance(event, events.CapSet):
            cap, cap_spend = event.total_budget, event.current_cost
        elif isinstance(event, events.HoldPlaced):
            assert event.hold_id not in seen, f"hold {event.hold_id} placed twice"
            seen.add(event.hold_id)
            open_[event.hold_id] = event
            held[event.user] += event.amount
        elif isinstance(event, (events.Charge, events.Commit)):
            spend[event.user] += event.cost
            cap_spend += event.cost
            if isinstance(event, events.Commit):
                committed[event.hold_id] += 1
                hold = open_.pop(event.hold_id, None)
                assert hold is not None, f"commit of {event.hold_id}, not open"
                assert event.held == hold.amount and event.cost <= hold.amount, event
                held[event.user] -= hold.amount
        elif isinstance(event, events.HoldReleased):
            hold = open_.pop(event.hold_id, None)
            assert hold is not None, f"{event.type} of a hold not open: {event.hold_id}"
            held[event.user] -= hold.amount
            released += not event.expired
            expired += event.expired
        else:
            raise AssertionError(f"unexpected event {event.type}")
        if user is not None:
            assert spend[user] + held[user] <= budgets[user], f"event {n}: {user} over budget"
        if cap is not None:
            assert cap_spend + sum(held.values()) <= cap, f"event {n}: over the cap with holds"
        most = max(most, len(open_))
    return Walk(most, len(seen), committed, released, expired)


def race(
    book: Ledger, data_dir: Path, children: list[Child], users: Sequence[str], rounds: int
) -> str:
    """Start WORKERS workers (round-robin over ``users``), run both phases, check everything;
    returns the figures as one line."""
    started = time.monotonic()
    for n in range(WORKERS):
        children.append(Child("race", "p", users[n % len(users)], str(COST), str(rounds), str(n)))
    for child in children:
        child.wait_for("ready")
    for child in children:  # all at once: nobody settles before every worker has answered
        child.send()
    first = [child.next_line() for child in children]
    admitted = sum(line.startswith("held ") for line in first)
    assert admitted + first.count("refused") == WORKERS, first
    for child in children:
        child.send()
    lines = [line for child in children for line in child.finish()]
    took = time.monotonic() - started

    history = list(reversed(book.history()))
    found = walk(history)
    balances, _ = consistent(book, data_dir)  # the state loads and replays to the balances
    spent = balances.get(rules.CAP, sum(balances.values(), Decimal(0)))
    limit = COST * FIT
    acknowledged = [line.split()[1] for line in lines if line.startswith("committed ")]
    refused = lines.count("refused")
    figures = (
        f"{WORKERS} processes, {len(users)} user(s): first round {admitted} of {WORKERS} admitted"
        f" ({FIT} fit); in all {found.placed} holds placed, {refused} refused, most open at once"
        f" {found.most_open}, {len(acknowledged)} committed, {found.released} released,"
        f" {found.expired} expired; spent {spent} of {limit}; {took:.1f} s"
    )
    print(figures)
    assert admitted == FIT, figures
    assert found.most_open == FIT, figures  # never more at once than fit
    assert found.expired == 0 and book.holds() == [], figures  # nothing stays reserved
    assert set(found.committed) == set(acknowledged) and len(acknowledged) == len(
        set(acknowledged)
    ), figures
    assert all(count == 1 for count in found.committed.values()), figures  # each commit once
    assert found.placed == len(acknowledged) + found.released, figures
    assert spent <= limit, figures
    assert refused > 0, f"the budget never bound; {figures}"
    return figures


def test_many_processes_reserve_against_one_user_budget(
    data_dir: Path, children: list[Child]
) -> None:
    book = Ledger("p", lock_timeout=DEADLINE)
    book.create("shared", COST * FIT)
    race(book, data_dir, children, ["shared"], rounds=20)
    spent = book.get("shared").current_cost
    assert spent <= COST * FIT
    assert book.standing("shared").reserved == 0


def test_many_processes_reserve_against_the_project_cap(
    data_dir: Path, children: list[Child]
) -> None:
    book = Ledger("p", lock_timeout=DEADLINE)
    users = [f"user-{n}" for n in range(4)]
    for user in users:
        book.create(user, COST * WORKERS)  # room for every worker: the cap binds
    book.set_cap(COST * FIT)
    race(book, data_dir, children, users, rounds=20)
    cap = book.cap()
    assert cap is not None and cap.current_cost <= COST * FIT
    assert cap.current_cost == sum((book.get(user).current_cost for user in users), Decimal(0))
    assert book.standing(users[0]).cap_reserved == 0
