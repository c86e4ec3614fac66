"""The project lock seen from the command line: a killed holder frees it, a live one times out.

A child (tests/_worker.py ``hold``) takes ``budgetctl.store.lock.exclusive`` on the project's
lock file. Killed with SIGKILL, it must not block the next command. Alive past
``BUDGETCTL_LOCK_TIMEOUT``, every writing command fails with exit 5 (LockTimeoutError in the
library) and leaves every file byte for byte as it was.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from _support import PROJECT, Counts, children, cli, consistent, spawn, wait_for
from helpers import fingerprint

from budgetctl import Ledger
from budgetctl.errors import LockTimeoutError

pytestmark = pytest.mark.reliability

WRITES = [
    ["update-cost", "u", "--cost", "1"],
    ["update-cost", "u", "--model", "gpt-4o", "--prompt-tokens", "10", "--completion-tokens", "5"],
    ["reset-due", "--now", "2026-01-01T00:00:00Z"],  # a past --now: a later one is refused
    ["reset", "u"],
    ["create", "w", "--budget", "5", "--duration", "none"],
    ["set", "u", "--budget", "20"],
    ["delete", "v", "--yes"],
]


def test_a_live_holder_past_the_timeout_is_exit_5_and_changes_nothing(
    data_dir: Path, counts: Counts
) -> None:
    book = Ledger(PROJECT)
    book.create("u", "10", duration="daily")
    book.create("v", "10")
    book.charge_cost("u", "2")
    before = fingerprint(data_dir)
    fast = {"BUDGETCTL_LOCK_TIMEOUT": "0.2"}
    with children() as procs:
        procs.append(spawn("hold", PROJECT))
        wait_for(procs[0], b"locked")
        for args in WRITES:
            done = cli(*args, env=fast)
            assert done.returncode == 5, (args, done.returncode, done.stderr)
            assert "busy" in done.stderr and "retry" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        patient = Ledger(PROJECT, lock_timeout=0.2)
        with pytest.raises(LockTimeoutError):
            patient.charge_cost("u", "1")
        with pytest.raises(LockTimeoutError):
            patient.reset_due()
        # readers do not lock: show works while the lock is held
        shown = cli("show", "u", "--json", env=fast)
        assert shown.returncode == 0, shown.stderr
    after = fingerprint(data_dir)
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    line = counts(
        operations=len(WRITES) + 3, faults_injected=len(WRITES) + 2, files_changed=len(changed)
    )
    assert changed == [], line


def test_a_killed_holder_does_not_block_the_next_command(data_dir: Path, counts: Counts) -> None:
    book = Ledger(PROJECT)
    book.create("u", "10")
    rounds = 3
    for n in range(rounds):
        with children() as procs:
            procs.append(spawn("hold", PROJECT))
            wait_for(procs[0], b"locked")
            procs[0].send_signal(signal.SIGKILL)
            procs[0].communicate(timeout=60)
            assert procs[0].returncode == -signal.SIGKILL
        done = cli("update-cost", "u", "--cost", "1", env={"BUDGETCTL_LOCK_TIMEOUT": "5"})
        assert done.returncode == 0, done.stderr
        assert book.get("u").current_cost == n + 1
    balances, _ = consistent(book, data_dir)
    line = counts(
        operations=rounds, faults_injected=rounds, charges_lost=rounds - int(balances["u"])
    )
    assert balances["u"] == rounds, line
