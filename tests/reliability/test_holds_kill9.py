"""kill -9 at random moments of workers that reserve, commit and release holds.

Four workers (tests/_holds_worker.py ``loop``) at a time reserve -> commit or release on a project
of 1,000 users (so a write takes long enough for kills to land inside it), round after round; each
is killed a random 0-30 ms after it starts a reserve or a commit. After every round: the state
loads, the history it counts has no partial line and replays to the balances, and its holds and
its history agree (a hold in the state has a ``hold`` event and no ``commit``/``release``/``expire``
after it; a committed hold is not in the state); every step a worker saw return is in the history;
the next write works. At the end the holds that killed workers left open expire, and nothing stays
reserved.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
import warnings
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from _support import PROJECT, Counts, consistent, counted_size
from helpers import T0
from test_holds_race import Child, walk

from budgetctl import Ledger
from budgetctl.core import events, rules

pytestmark = pytest.mark.reliability

RNG = random.Random(20261202)
FILLER = 1_000
WORKERS = 4
ROUNDS = 10
TIME_BUDGET = 16.0  # seconds: no round starts after this (each round takes about 1-2 s)
CALLS = {"reserving": "reserve", "committing": "commit", "releasing": "release"}
AIM = 0.4  # seconds to wait for a worker to start the call aimed at (else it is killed anyway)


def agree(book: Ledger, data_dir: Path) -> tuple[set[str], list[events.Event]]:
    """Check the files after a kill; returns the holds in the state and the history (oldest
    first)."""
    consistent(book, data_dir)  # loads; no partial line in what it counts; replay == balances
    state = json.loads((data_dir / f"{PROJECT}.json").read_bytes())
    stored = set(state.get("holds") or {})
    history = list(reversed(book.history()))
    placed = {e.hold_id for e in history if isinstance(e, events.HoldPlaced)}
    settled = [e.hold_id for e in history if isinstance(e, (events.Commit, events.HoldReleased))]
    assert len(settled) == len(set(settled)), "a hold settled twice"
    assert stored <= placed, f"holds with no 'hold' event: {stored - placed}"
    assert not stored & set(settled), f"holds settled but still open: {stored & set(settled)}"
    assert stored == placed - set(settled), "a hold placed and never settled is not in the state"
    walk(history)  # spend plus open holds within every budget, at every event
    return stored, history


def test_kill_9_during_reserve_and_commit(data_dir: Path, counts: Counts) -> None:
    book = Ledger(PROJECT, lock_timeout=60)
    book.store.create_many(  # type: ignore[attr-defined]
        [rules.new_budget(f"user-{i}", Decimal(100), T0) for i in range(FILLER)]
    )
    workers = [f"w{k}" for k in range(WORKERS)]
    for user in workers:
        book.create(user, "1000")
    book.set_cap("100000")
    started = time.monotonic()
    during: Counter[str] = Counter()
    kills = torn = rounds = left_open = 0
    acknowledged: Counter[str] = Counter()
    while rounds < ROUNDS and time.monotonic() - started < TIME_BUDGET:
        rounds += 1
        children = [
            Child("loop", PROJECT, user, "0.01", str(RNG.randrange(10**6))) for user in workers
        ]
        try:
            for child in children:
                child.wait_for("ready")
            for child in sorted(children, key=lambda _: RNG.random()):
                # aim at the next reserve or commit it starts (if it gets the lock soon enough:
                # one writer may keep it a while), then land anywhere in that call
                aim = RNG.choice(("reserving", "committing"))
                child.drain()
                with contextlib.suppress(AssertionError):
                    child.wait_for(aim, timeout=AIM)
                time.sleep(RNG.uniform(0, 0.03))
                child.process.send_signal(signal.SIGKILL)
        finally:
            for child in children:
                child.kill()
        tail = (data_dir / f"{PROJECT}+history.jsonl").read_bytes()[counted_size(data_dir) :]
        torn += bool(tail)
        stored, history = agree(book, data_dir)
        left_open = len(stored)
        placed = {e.hold_id for e in history if isinstance(e, events.HoldPlaced)}
        committed = {e.hold_id for e in history if isinstance(e, events.Commit)}
        released = {
            e.hold_id for e in history if isinstance(e, events.HoldReleased) and not e.expired
        }
        for child in children:
            assert child.process.returncode == -signal.SIGKILL
            kills += 1
            last = child.lines[-1].split()[0] if child.lines else "starting"
            during[CALLS.get(last, "between calls")] += 1  # the call it had begun, if any
            recorded = {"held": placed, "committed": committed, "released": released}
            for line in child.lines:  # what a worker saw return is durable
                word, *rest = line.split()
                if word in recorded:
                    acknowledged[word] += 1
                    assert rest[0] in recorded[word], line
        with warnings.catch_warnings(record=True):  # the next write works (a torn tail is moved
            warnings.simplefilter("always")  # aside, with a warning)
            hold = book.reserve("w0", "0.01").hold
            assert hold is not None
            book.commit(hold.hold_id, "w0", "0.01")
        assert (data_dir / f"{PROJECT}+history.jsonl").stat().st_size == counted_size(data_dir)
        agree(book, data_dir)
    # the holds killed workers left open expire by themselves, and are archived
    done = book.reset_due(now=book.now() + timedelta(minutes=16))
    assert {hold.hold_id for hold in done.expired} == stored
    stored, history = agree(book, data_dir)
    took = time.monotonic() - started
    line = counts(
        rounds=rounds,
        faults_injected=kills,
        during_reserve=during["reserve"],
        during_commit=during["commit"],
        during_release=during["release"],
        between_calls=during["between calls"],
        mid_transaction=torn,
        holds_acknowledged=acknowledged["held"],
        commits_acknowledged=acknowledged["committed"],
        holds_left_open_then_expired=len(done.expired),
        seconds=round(took),
    )
    assert stored == set() and book.holds() == [], line
    assert kills >= 20 and during["reserve"] > 0 and during["commit"] > 0, line
    assert acknowledged["committed"] > 0, line
    assert left_open == len(done.expired)
