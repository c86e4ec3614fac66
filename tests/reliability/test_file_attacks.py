"""Attacks on the files of the data dir: symlinks and FIFOs at every file under every command, a
lock file deleted while writers queue on it, and state files restored from backups.

Every command runs as the installed ``budgetctl`` (bounded in time: a hang fails). The counts say
how many attacks were tried, how many files outside the data dir changed (0), how many commands
hung (0) and how many charges were lost (0).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from decimal import Decimal
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
    wait_for,
)
from helpers import fingerprint

from budgetctl import Ledger
from budgetctl.store.json_store import JsonStore

pytestmark = pytest.mark.reliability

SECRET = b"root's own file\n"

# every command that writes project p, and those that read it, with the files each one opens
S, H, L, P = "state", "history", "lock", "prices"
COMMANDS = [
    (["update-cost", "u", "--cost", "1"], {S, H, L}),
    (["update-cost", "u", "--model", "house-model",
      "--prompt-tokens", "9", "--completion-tokens", "1"], {S, H, L, P}),
    (["reset-due", "--now", "2030-01-01T00:00:00Z", "--dry-run"], {S, H}),
    (["reset-due", "-q"], {S, H, L}),
    (["reset", "u"], {S, H, L}),
    (["create", "w", "--budget", "5", "--duration", "none"], {S, H, L}),
    (["set", "u", "--budget", "20"], {S, H, L}),
    (["delete", "v", "--yes"], {S, H, L}),
    (["cap", "--budget", "50"], {S, H, L}),
    (["price", "set", "m2", "--input", "1", "--output", "2"], {L, P}),
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
        "lock": store.lock_path,
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
@pytest.mark.parametrize("kind", ["state", "history", "lock", "prices"])
def test_a_planted_file_is_refused_by_every_command(
    data_dir: Path, tmp_path: Path, counts: Counts, kind: str, plant: str
) -> None:
    attacks, changed, hangs = planted(kind, data_dir, tmp_path, plant)
    line = counts(attacks=attacks, files_changed_outside=changed, hangs=hangs)
    assert changed == 0 and hangs == 0, line


def test_a_lock_file_deleted_while_writers_queue_on_it(data_dir: Path, counts: Counts) -> None:
    """Writers queued on the lock file a holder holds; the file is deleted and more writers start
    (they create a new one); the holder dies. Queued and new writers must still take turns: every
    acknowledged charge is recorded once, and the balance is their exact sum."""
    book = Ledger(PROJECT)
    book.create("u", "1000000")
    store = book.store
    assert isinstance(store, JsonStore)
    rounds, per_writer, deletions, writers_run = 3, 25, 0, 0
    acknowledged = 0
    for round_ in range(rounds):
        with children() as procs:
            holder = spawn("hold", PROJECT)
            procs.append(holder)
            wait_for(holder, b"locked")
            queued = [
                spawn("charge", PROJECT, "u", "0.01", str(per_writer), f"q{round_}-{i}")
                for i in range(3)
            ]
            procs.extend(queued)
            early = {writer.pid: wait_for(writer, b"ready") for writer in queued}
            store.lock_path.unlink()  # while held, with writers queued on it
            deletions += 1
            late = [
                spawn("charge", PROJECT, "u", "0.01", str(per_writer), f"n{round_}-{i}")
                for i in range(2)
            ]
            procs.extend(late)
            early.update({writer.pid: wait_for(writer, b"ready") for writer in late})
            holder.kill()
            for writer in (*queued, *late):
                out, err = writer.communicate(timeout=DEADLINE)
                assert writer.returncode == 0, err.decode()
                acknowledged += (early[writer.pid] + out).count(b"done ")
                writers_run += 1
    balances, events = consistent(book, data_dir)
    ids = [e["request_id"] for e in events if e["type"] == "charge"]
    lost = acknowledged - len(set(ids))
    line = counts(
        rounds=rounds,
        lock_deletions=deletions,
        writers=writers_run,
        charges_acknowledged=acknowledged,
        charges_lost=lost,
    )
    assert len(ids) == len(set(ids)) == acknowledged == rounds * 5 * per_writer, line
    assert balances["u"] == Decimal("0.01") * acknowledged, line


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
