"""Real processes on one project: concurrency, kill -9 during writes, a killed lock holder.

Each test runs budgetctl in child processes (tests/_worker.py) with the data dir in a temp folder,
and bounds every wait with a timeout. The numbers (operations, kills, charges lost) are printed
and carried in the assertion messages.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl import Ledger
from budgetctl.core import events as budgetctl_events
from budgetctl.core import rules
from budgetctl.errors import LockTimeoutError

pytestmark = pytest.mark.process

WORKER = Path(__file__).with_name("_worker.py")
REPO = Path(__file__).resolve().parent.parent
DEADLINE = 60.0  # seconds any one child may take


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for(child: subprocess.Popen[bytes], expected: bytes, timeout: float = DEADLINE) -> bytes:
    """Wait (bounded) until the child prints the line ``expected``; returns what it printed.

    Reads the pipe with os.read, so nothing is left in a Python buffer that communicate() skips.
    """
    assert child.stdout is not None
    fd = child.stdout.fileno()
    seen = b""
    end = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while expected + b"\n" not in seen:
            left = end - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                raise AssertionError(f"child did not print {expected!r} within {timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"child exited before printing {expected!r}: {seen!r}")
            seen += chunk
    return seen


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Children a test started; any still running at the end are killed (by their pid)."""
    children: list[subprocess.Popen[bytes]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=DEADLINE)


def consistent(book: Ledger, data_dir: Path) -> tuple[dict[str, Decimal], list[dict[str, object]]]:
    """Check the files as a fresh reader finds them; returns the balances and the events."""
    state = json.loads((data_dir / "p.json").read_bytes())
    size = state["history"]["size"]
    counted = (data_dir / "p+history.jsonl").read_bytes()[:size]
    assert len(counted) == size, "history shorter than the state counts"
    assert counted == b"" or counted.endswith(b"\n"), "a partial line within the counted history"
    events = [json.loads(line) for line in counted.splitlines()]
    balances = {user: Decimal(rec["current_cost"]) for user, rec in state["users"].items()}
    if state.get("cap"):
        balances[rules.CAP] = Decimal(state["cap"]["current_cost"])
    typed = [budgetctl_events.from_json(event) for event in events]
    assert balances == rules.replay(typed), "balance differs from the history's replay"
    assert book.history() == list(reversed(typed))
    return balances, events


def test_concurrent_charges_lose_nothing(
    data_dir: Path, reaper: list[subprocess.Popen[bytes]]
) -> None:
    book = Ledger("p")
    book.create("shared", "1000000")
    costs = ["0.01", "0.001", "0.0001", "1.23456789"]
    per_worker = 100
    reaper.extend(
        spawn("charge", "p", "shared", cost, str(per_worker), f"w{i}")
        for i, cost in enumerate(costs)
    )
    for child in reaper:
        out, err = child.communicate(timeout=DEADLINE)
        assert child.returncode == 0, err.decode()
        assert out.count(b"done ") == per_worker
    expected = sum((Decimal(c) * per_worker for c in costs), Decimal(0))
    balances, events = consistent(book, data_dir)
    charged = [e for e in events if e["type"] == "charge"]
    ids = {e["request_id"] for e in charged}
    tried = len(costs) * per_worker
    print(f"operations tried: {tried}, charges recorded: {len(charged)}, lost: {tried - len(ids)}")
    assert len(charged) == len(ids) == tried, f"{tried} charges tried, {len(ids)} recorded"
    assert balances["shared"] == expected == book.get("shared").current_cost


def test_kill_9_during_writes_leaves_a_consistent_state(
    data_dir: Path, reaper: list[subprocess.Popen[bytes]]
) -> None:
    book = Ledger("p")
    book.create("u", "1000000", duration="daily")
    book.create("v", "10")
    book.set_cap("1000000")
    rng = random.Random(20261128)
    kills = acknowledged = lost = torn = 0
    for round_ in range(20):
        child = spawn("loop", "p", "u", "0.001", f"k{round_}")
        reaper.append(child)
        early = wait_for(child, b"ready")
        time.sleep(rng.uniform(0.005, 0.25))  # the kill lands at a random point of a write
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=DEADLINE)
        out = (early + rest).decode()
        assert child.returncode == -signal.SIGKILL
        kills += 1
        # the state loads, and its balance equals the history it counts
        balances, events = consistent(book, data_dir)
        size = json.loads((data_dir / "p.json").read_bytes())["history"]["size"]
        tail = (data_dir / "p+history.jsonl").read_bytes()[size:]
        torn += bool(tail)  # killed mid-transaction
        recorded = {e.get("request_id") for e in events if e["type"] == "charge"}
        done = [line.split()[1] for line in out.splitlines() if line.startswith("done ")]
        acknowledged += len(done)
        lost += sum(1 for rid in done if rid not in recorded)  # a charge that returned is durable
        # and the next write works (moving any interrupted tail aside first, with a warning)
        kept_before = set(data_dir.glob("p+history.*.orphan.jsonl"))
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            book.charge_cost("v", "0.5")
        kept = set(data_dir.glob("p+history.*.orphan.jsonl")) - kept_before
        assert [p.read_bytes() for p in kept] == ([tail] if tail else [])  # never destroyed
        assert len(warned) == len(kept), [str(w.message) for w in warned]
        balances, _ = consistent(book, data_dir)
        assert (data_dir / "p+history.jsonl").stat().st_size == json.loads(
            (data_dir / "p.json").read_bytes()
        )["history"]["size"]
        assert list(data_dir.glob(".*.tmp")) == [], "a killed writer's temp file was not swept"
    summary = (
        f"kills injected: {kills} ({torn} mid-transaction), charges acknowledged: {acknowledged},"
        f" charges lost: {lost}"
    )
    print(summary)
    assert kills == 20 and lost == 0, summary
    assert acknowledged > 0, f"no charge completed before a kill; {summary}"
    assert balances["v"] == Decimal("0.5") * 20
    assert balances[rules.CAP] == balances["u"] + balances["v"]  # the cap never missed one


def test_a_lock_holder_killed_with_sigkill_releases_the_project(
    data_dir: Path, reaper: list[subprocess.Popen[bytes]]
) -> None:
    book = Ledger("p", lock_timeout=0.2)
    book.create("u", "10")
    holder = spawn("hold", "p")
    reaper.append(holder)
    wait_for(holder, b"locked")
    with pytest.raises(LockTimeoutError):
        book.charge_cost("u", "1")
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=DEADLINE)
    patient = Ledger("p", lock_timeout=10)
    assert patient.charge_cost("u", "1").current_cost == 1
    consistent(patient, data_dir)
