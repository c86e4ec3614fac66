"""kill -9 at random points of real ``budgetctl`` writes on a project of thousands of users.

The project is large enough that writing it takes a while, so the kills land inside the
transaction (history append, temp file, fsync, replace) as often as before it. After every kill
the files must load, the history the state counts must have no partial line and replay to the
balances, a charge must be all there or not at all, and the next write must work.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from _support import BUDGETCTL, DEADLINE, PROJECT, Counts, cli, consistent, counted_size
from helpers import T0

from budgetctl import Ledger
from budgetctl.core import rules
from budgetctl.core.periods import format_utc, parse_duration

pytestmark = pytest.mark.reliability

USERS = 20_000
RNG = random.Random(20261128)


def populate(duration: str | None, users: int = USERS) -> Ledger:
    book = Ledger(PROJECT, lock_timeout=DEADLINE)
    every = parse_duration(duration)
    budgets = [
        rules.new_budget(f"user-{i}", Decimal(100), T0, duration=every, current_cost=Decimal("1.5"))
        for i in range(users)
    ]
    book.store.create_many(budgets)
    return book


def run_and_kill(args: list[str], after: float) -> subprocess.Popen[str]:
    """Start ``budgetctl ARGS``; SIGKILL it ``after`` seconds later unless it finished."""
    child = subprocess.Popen(
        [str(BUDGETCTL), *args, "-p", PROJECT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child.wait(timeout=after)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
    child.communicate(timeout=DEADLINE)
    return child


def duration_of(args: list[str]) -> float:
    """How long one uninterrupted run takes here (to spread the kills over it)."""
    start = time.perf_counter()
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - start


def test_kill_9_during_update_cost(data_dir: Path, counts: Counts) -> None:
    book = populate(None)  # lifetime budgets: a charge now rolls nothing over
    took = duration_of(
        ["update-cost", f"user-{USERS - 1}", "--cost", "0.25", "--request-id", "warm"]
    )
    kills = finished = torn = lost = 0
    acknowledged: list[str] = []
    for n in range(12):
        rid = f"k{n}"
        child = run_and_kill(
            ["update-cost", f"user-{n}", "--cost", "0.25", "--request-id", rid],
            RNG.uniform(0.3, 1.05) * took,
        )
        if child.returncode == 0:
            finished += 1
            acknowledged.append(rid)
        else:
            assert child.returncode == -signal.SIGKILL, child.stderr
            kills += 1
        tail = (data_dir / f"{PROJECT}+history.jsonl").read_bytes()[counted_size(data_dir) :]
        torn += bool(tail)
        balances, events = consistent(book, data_dir)
        recorded = [e.get("request_id") for e in events if e["type"] == "charge"]
        assert recorded.count(rid) <= 1
        lost += sum(1 for r in acknowledged if r not in recorded)
        # a charge is all there or not at all: the user's balance says which
        assert balances[f"user-{n}"] == Decimal("1.5") + Decimal("0.25") * recorded.count(rid)
        with warnings.catch_warnings(record=True) as warned:  # the next write works
            warnings.simplefilter("always")
            book.charge_cost("user-0", "0.01")
        assert (data_dir / f"{PROJECT}+history.jsonl").stat().st_size == counted_size(data_dir)
        kept = [str(w.message).split("moved to ")[1].split(" (")[0] for w in warned]
        assert [Path(k).read_bytes() for k in kept] == ([tail] if tail else [])  # kept aside
    line = counts(operations=12, faults_injected=kills, mid_transaction=torn, charges_lost=lost)
    assert lost == 0, line
    assert kills > 0, f"every run finished before its kill; {line}"


def test_kill_9_during_charges_with_request_ids(data_dir: Path, counts: Counts) -> None:
    """An id is remembered if and only if its charge committed, wherever the kill lands: the index
    row is committed before the state's replace, so many kills leave a row ahead of the state."""
    book = populate(None)
    took = duration_of(["update-cost", f"user-{USERS - 1}", "--cost", "0.25", "--request-id", "w"])
    index = data_dir / f"{PROJECT}+request-ids.sqlite"
    rounds, kills, rows_ahead, without_charge, without_id, doubled = 16, 0, 0, 0, 0, 0
    for n in range(rounds):
        rid, user = f"id-{n}", f"user-{n}"
        charge = ["update-cost", user, "--cost", "0.25", "--request-id", rid]
        child = run_and_kill(charge, RNG.uniform(0.3, 1.05) * took)
        if child.returncode != 0:
            assert child.returncode == -signal.SIGKILL, child.stderr
            kills += 1
        _, events = consistent(book, data_dir)
        charged = [e.get("request_id") for e in events if e["type"] == "charge"].count(rid) == 1
        with sqlite3.connect(index) as db:
            row = db.execute("SELECT offset FROM request_ids WHERE id = ?", (rid,)).fetchone()
        rows_ahead += row is not None and not charged
        remembered = book.charge_cost(user, "0.25", request_id=rid, dry_run=True).duplicate
        without_charge += remembered and not charged
        without_id += charged and not remembered
        retry = cli(*charge, "--json")  # the script's retry: charged once in all
        assert retry.returncode == 0, retry.stderr
        assert json.loads(retry.stdout)["duplicate"] is charged
        balances, events = consistent(book, data_dir)
        recorded = [e.get("request_id") for e in events if e["type"] == "charge"]
        doubled += recorded.count(rid) != 1
        assert balances[user] == Decimal("1.75")
    line = counts(
        operations=rounds,
        faults_injected=kills,
        index_rows_ahead_of_the_state=rows_ahead,
        ids_without_charge=without_charge,
        charges_without_id=without_id,
        charges_doubled=doubled,
    )
    assert without_charge == without_id == doubled == 0, line
    assert kills > 0, f"every run finished before its kill; {line}"


def test_kill_9_during_reset_due(data_dir: Path, counts: Counts) -> None:
    book = populate("daily", users=5_000)  # each round replays the whole history twice
    day = T0.replace(hour=1)
    took = duration_of(["reset-due", "-q", "--now", format_utc(day + timedelta(days=1))])
    kills = torn = partial = 0
    for n in range(2, 10):
        moment = format_utc(day + timedelta(days=n))
        child = run_and_kill(["reset-due", "-q", "--now", moment], RNG.uniform(0.3, 1.05) * took)
        kills += child.returncode != 0
        tail = (data_dir / f"{PROJECT}+history.jsonl").read_bytes()[counted_size(data_dir) :]
        torn += bool(tail)
        consistent(book, data_dir)
        # all or nothing: every budget is in the same period (they share one daily grid)
        state = json.loads((data_dir / f"{PROJECT}.json").read_bytes())
        starts = {record["period_start"] for record in state["users"].values()}
        partial += len(starts) != 1
        # the next run completes the roll-over, and a run after that changes nothing
        done = cli("reset-due", "-q", "--now", moment)
        assert done.returncode == 0, done.stderr
        assert ("warning: " in done.stderr) == bool(tail), done.stderr  # a tail is kept, and said
        before = (data_dir / f"{PROJECT}.json").read_bytes()
        again = cli("reset-due", "--json", "--now", moment)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["reset"] == []
        assert (data_dir / f"{PROJECT}.json").read_bytes() == before
        balances, _ = consistent(book, data_dir)
        assert set(balances.values()) == {Decimal(0)}
    line = counts(operations=8, faults_injected=kills, mid_transaction=torn, partial_resets=partial)
    assert partial == 0, line
    assert kills > 0, f"every run finished before its kill; {line}"
