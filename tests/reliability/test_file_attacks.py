"""Attacks on the files of the data dir: symlinks and FIFOs at every file under every command, lock
files deleted while writers charge, and state files restored from backups.

Every command runs as the installed ``budgetctl`` (bounded in time: a hang fails). The counts say
how many attacks were tried, how many files outside the data dir changed (0), how many commands
hung (0) and how many charges were lost (0).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
from _support import (
    DEADLINE,
    PROJECT,
    Counts,
    children,
    cli,
    consistent,
    counted_size,
    spawn,
)
from helpers import fingerprint

from budgetctl import Ledger
from budgetctl.store.json_store import JsonStore

pytestmark = pytest.mark.reliability

SECRET = b"root's own file\n"

# every command that writes project p, and those that read it, with the files each one opens
S, H, P = "state", "history", "prices"
COMMANDS = [
    (["update-cost", "u", "--cost", "1"], {S, H}),
    (["update-cost", "u", "--model", "house-model",
      "--prompt-tokens", "9", "--completion-tokens", "1"], {S, H, P}),
    (["reset-due", "--now", "2030-01-01T00:00:00Z", "--dry-run"], {S, H}),
    (["reset-due", "-q"], {S, H}),
    (["reset", "u"], {S, H}),
    (["create", "w", "--budget", "5", "--duration", "none"], {S, H}),
    (["set", "u", "--budget", "20"], {S, H}),
    (["delete", "v", "--yes"], {S, H}),
    (["cap", "--budget", "50"], {S, H}),
    (["price", "set", "m2", "--input", "1", "--output", "2"], {P}),
    (["show"], {S}),
    (["show", "u"], {S, H}),
    (["history", "u"], {S, H}),
]  # fmt: skip


def prepare() -> dict[str, Path]:
    """Project ``p`` with every file it can have; their paths by kind."""
    book = Ledger(PROJECT)
    book.create("u", "10", duration="daily")
    book.create("v", "10")
    book.charge_cost("u", "2")
    book.reset(["u"])  # a closed period: ``show u`` follows its link into the history
    book.set_price("house-model", "0.000001", "0.000002")
    store = book.store
    assert isinstance(store, JsonStore)
    return {
        "state": store.path,
        "history": store.history_path,
        "prices": store.prices_path,
    }


def planted(kind: str, data_dir: Path, tmp_path: Path, plant: str) -> tuple[int, int, int]:
    """Each command against project ``p`` whose ``kind`` file was replaced by ``plant`` ("link"
    to a private file outside the data dir, or "fifo"): those that open it are refused, at once
    and changing nothing; the others work. Returns (attacks, outside changes, hangs)."""
    secret = tmp_path / f"secret-{kind}"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    path = prepare()[kind]
    path.unlink()
    if plant == "link":
        path.symlink_to(secret)
    else:
        os.mkfifo(path, 0o600)
    attacks = changed = hangs = 0
    for args, opens in COMMANDS:
        before = fingerprint(data_dir)
        try:
            done = cli(*args)
        except subprocess.TimeoutExpired:
            hangs += 1
            continue
        changed += secret.read_bytes() != SECRET
        assert "Traceback" not in done.stderr, (args, done.stderr)
        if kind not in opens:  # never opens the planted file: works as ever
            assert done.returncode == 0, (args, done.returncode, done.stderr)
            continue
        attacks += 1
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        what = "symbolic link" if plant == "link" else "FIFO"
        assert what in done.stderr and str(path) in done.stderr, (args, done.stderr)
        assert fingerprint(data_dir) == before, (args, "a refused command changed a file")
    assert path.is_symlink() if plant == "link" else path.is_fifo()
    return attacks, changed, hangs


@pytest.mark.parametrize("plant", ["link", "fifo"])
@pytest.mark.parametrize("kind", ["state", "history", "prices"])
def test_a_planted_file_is_refused_by_every_command(
    data_dir: Path, tmp_path: Path, counts: Counts, kind: str, plant: str
) -> None:
    attacks, changed, hangs = planted(kind, data_dir, tmp_path, plant)
    line = counts(attacks=attacks, files_changed_outside=changed, hangs=hangs)
    assert changed == 0 and hangs == 0, line


def test_lock_files_deleted_while_writers_charge_lose_nothing(
    data_dir: Path, counts: Counts
) -> None:
    """4 processes charge 150 times each, as fast as they can, while every lock file any budgetctl
    used (``p+lock``, 0.1's ``p.lock``) is deleted every 1 to 20 ms. Each charge succeeds or fails
    with an exit-5 error (busy: nothing changed); every charge acknowledged is in the history once,
    no other; the state counts exactly the history (nothing was kept aside: no writer moved
    another's uncounted lines); the balance is their sum."""
    book = Ledger(PROJECT)
    book.create("u", "1000000")
    writers, per_writer = 4, 150
    lock_files = [data_dir / f"{PROJECT}+lock", data_dir / f"{PROJECT}.lock"]
    rng = random.Random(20261202)
    stop = threading.Event()
    deletions = 0

    def delete_lock_files() -> None:
        nonlocal deletions
        while not stop.is_set():
            for path in lock_files:
                with suppress(FileNotFoundError):
                    path.unlink()
                    deletions += 1
            time.sleep(rng.uniform(0.001, 0.02))

    deleter = threading.Thread(target=delete_lock_files)
    outputs = []
    with children() as procs:
        procs.extend(
            spawn("try", PROJECT, "u", "1", str(per_writer), f"w{n}") for n in range(writers)
        )
        deleter.start()
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=DEADLINE)
                outputs.append((proc.returncode, out, err.decode()))
        finally:
            stop.set()
            deleter.join()
    lines = [line.split() for _, out, _ in outputs for line in out.decode().splitlines()]
    acknowledged = {
        rid for word, rid in (line for line in lines if len(line) == 2) if word == "done"
    }
    busy = sum(line[0] == "busy" for line in lines)
    balances, events = consistent(book, data_dir)
    ids = [e["request_id"] for e in events if e["type"] == "charge"]
    kept_aside = sorted(p.name for p in data_dir.glob("*.orphan.jsonl"))
    line = counts(
        writers=writers,
        charges_tried=writers * per_writer,
        lock_file_deletions=deletions,
        charges_acknowledged=len(acknowledged),
        busy=busy,
        charges_lost=len(acknowledged - set(ids)),
        history_kept_aside=len(kept_aside),
    )
    failed = [(code, err[-600:]) for code, _, err in outputs if code != 0]
    assert failed == [], (line, failed)  # no error but exit-5 ones (a traceback otherwise)
    assert len(acknowledged) + busy == writers * per_writer, line
    assert sorted(ids) == sorted(acknowledged), line
    assert kept_aside == [], line
    assert balances["u"] == len(acknowledged), line


def test_restored_backups_keep_every_charge_written_since(data_dir: Path, counts: Counts) -> None:
    """Rounds of: charges, a backup of the state at a random point, more charges, the backup
    restored, a charge. Every charge made after the backup is in exactly one kept-aside file."""
    rng = random.Random(20261201)
    assert cli("create", "u", "--budget", "1000", "--duration", "none").returncode == 0
    store = Ledger(PROJECT).store
    assert isinstance(store, JsonStore)
    history = store.history_path
    rounds = restores = kept = lost = 0
    for round_ in range(6):
        backup_at = rng.randrange(0, 6)
        backup = b""
        for n in range(6):
            if n == backup_at:
                backup = (data_dir / f"{PROJECT}.json").read_bytes()
            done = cli("update-cost", "u", "--cost", "0.5", "--request-id", f"r{round_}-{n}")
            assert done.returncode == 0, done.stderr
        since = history.read_bytes()[json.loads(backup)["history"]["size"] :]
        (data_dir / f"{PROJECT}.json").write_bytes(backup)
        restores += 1
        done = cli("update-cost", "u", "--cost", "0.25", "-q")
        assert done.returncode == 0, done.stderr
        orphan = Path(done.stderr.split("moved to ")[1].split(" (")[0])
        assert done.stderr.startswith("warning: "), done.stderr
        assert orphan.read_bytes() == since
        for rid in (f"r{round_}-{n}" for n in range(backup_at, 6)):  # charged after the backup
            found = f'"request_id":"{rid}"'.encode() in orphan.read_bytes()
            kept += found
            lost += not found
        assert history.stat().st_size == counted_size(data_dir)
        consistent(Ledger(PROJECT), data_dir)
        rounds += 1
    orphans = sorted(data_dir.glob(f"{PROJECT}+history.*.orphan.jsonl"))
    line = counts(rounds=rounds, restores=restores, charges_kept_aside=kept, charges_lost=lost)
    assert len(orphans) == restores and lost == 0, line
