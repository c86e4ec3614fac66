"""Disk full and a read-only data dir: a clear error naming the file, and nothing changed.

Two ways in: real file systems (a tiny tmpfs filled to the last byte; a tmpfs remounted
read-only), which need ``mount`` (root, and permission to mount: skipped with the reason where
not), and faults injected into the store's system calls (``os.write`` failing with ENOSPC at each
write of a transaction, ``os.replace`` and ``os.open`` with EROFS), which always run.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _support import PROJECT, Counts, cli, consistent
from helpers import T0, fingerprint

from budgetctl import Ledger
from budgetctl.errors import StorageIOError

pytestmark = pytest.mark.reliability


def prepare(data_dir: Path) -> Ledger:
    book = Ledger(PROJECT)
    book.create("u", "10", duration="monthly")
    book.create("v", "10")
    book.charge_cost("u", "1.25")
    # d's day ended long ago, so a plain reset-due has a period to write (a --now later than the
    # clock is refused, and would not reach the disk).
    Ledger(PROJECT, clock=lambda: T0).create("d", "10", duration="daily")
    return book


def assert_unchanged(book: Ledger, data_dir: Path, before: dict[str, str], line: str) -> None:
    """The state file is byte for byte what it was, and what it counts of the history too."""
    after = fingerprint(data_dir)
    assert after[f"{PROJECT}.json"] == before[f"{PROJECT}.json"], line
    consistent(book, data_dir)  # a torn history tail (if any) lies beyond the counted size


# --- injected faults (always run) ---------------------------------------------------------------


def _in(data_dir: Path, fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(data_dir))
    except OSError:
        return False


def failing_nth_write(data_dir: Path, nth: int, code: int) -> Callable[[int, Any], int]:
    """``os.write`` that fails with ``code`` at the nth write into the data dir."""
    real = os.write
    seen = [0]

    def write(fd: int, data: Any) -> int:
        if _in(data_dir, fd):
            seen[0] += 1
            if seen[0] == nth:
                raise OSError(code, os.strerror(code))
        return real(fd, data)

    return write


def count_writes(book: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many os.write calls into the data dir one charge makes."""
    real = os.write
    seen = [0]

    def write(fd: int, data: Any) -> int:
        seen[0] += _in(data_dir, fd)
        return real(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        book.charge_cost("v", "0.5")
    return seen[0]


def test_enospc_at_every_write_of_a_charge_changes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, counts: Counts
) -> None:
    book = prepare(data_dir)
    writes = count_writes(book, data_dir, monkeypatch)
    assert writes >= 2  # the history append and the new state
    faults = 0
    for nth in range(1, writes + 1):
        before = fingerprint(data_dir)
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", failing_nth_write(data_dir, nth, errno.ENOSPC))
            with pytest.raises(StorageIOError) as failed:
                book.charge_cost("u", "3")
        faults += 1
        message = str(failed.value)
        assert str(data_dir) in message and "No space left" in message, message
        assert_unchanged(book, data_dir, before, message)
        assert list(data_dir.glob(".*.tmp")) == [], "a temp file was left behind"
    book.charge_cost("u", "3")  # with space again, the next write works
    balances, _ = consistent(book, data_dir)
    line = counts(operations=writes + 1, faults_injected=faults, charges_lost=0)
    assert balances["u"] == book.get("u").current_cost == Decimal("4.25"), line


@pytest.mark.parametrize(
    ("name", "fails"),
    [
        ("replace", ""),  # os.replace of the temp file onto the state
        ("open", "/data"),  # the data dir, opened to lock it
        ("open", "+history.jsonl"),  # the history, opened to append
        ("open", ".tmp"),  # the temp file of the new state
    ],
    ids=["os.replace", "open-data-dir-to-lock", "open-history", "open-temp-file"],
)
def test_erofs_from_the_store_changes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, counts: Counts, name: str, fails: str
) -> None:
    book = prepare(data_dir)
    before = fingerprint(data_dir)
    real = getattr(os, name)

    def read_only(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith(fails):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, *args, **kwargs)

    faults = 0
    for action in (
        lambda: book.charge_cost("u", "3"),
        lambda: book.reset(["u"]),
        lambda: book.create("w", "1"),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(os, name, read_only)
            with pytest.raises(StorageIOError) as failed:
                action()
        faults += 1
        message = str(failed.value)
        assert str(data_dir) in message and "Read-only" in message, message
        assert_unchanged(book, data_dir, before, message)
    line = counts(operations=faults, faults_injected=faults)
    book.charge_cost("u", "3")
    assert book.get("u").current_cost == Decimal("4.25"), line


# --- real file systems (need mount) --------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """A 256 KiB tmpfs at ``tmp_path / "fs"``; yields ``remount(options)``. Skips without mount."""
    mountpoint = tmp_path / "fs"
    mountpoint.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mountpoint)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot run mount here ({exc}); the injected-fault variants cover this")
    if done.returncode != 0:
        pytest.skip(
            f"mounting a tmpfs is not permitted here ({done.stderr.strip()}); "
            "the injected-fault variants cover this"
        )

    def remount(options: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{options}", str(mountpoint)], check=True, timeout=30
        )

    try:
        yield remount
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, timeout=30)


def test_a_full_disk_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, tmpfs: Callable[[str], None], monkeypatch: pytest.MonkeyPatch, counts: Counts
) -> None:
    data_dir = tmp_path / "fs" / "data"
    monkeypatch.setenv("BUDGETCTL_DATA_DIR", str(data_dir))
    book = prepare(data_dir)
    filler = tmp_path / "fs" / "filler"
    with open(filler, "wb", buffering=0) as handle:  # take every byte that is left
        for chunk in (4096, 512, 1):
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    before = fingerprint(data_dir)
    faults = 0
    with pytest.raises(StorageIOError) as failed:
        book.charge_cost("u", "3")
    faults += 1
    message = str(failed.value)
    assert str(data_dir) in message and "No space left" in message, message
    assert_unchanged(book, data_dir, before, message)
    for args in (["update-cost", "u", "--cost", "3"], ["reset-due"]):
        done = cli(*args)
        faults += 1
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert str(data_dir) in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert_unchanged(book, data_dir, before, done.stderr)
    filler.unlink()  # space again: the next write works
    assert cli("update-cost", "u", "--cost", "3").returncode == 0
    balances, _ = consistent(book, data_dir)
    line = counts(operations=faults + 1, faults_injected=faults, charges_lost=0)
    assert balances["u"] == Decimal("4.25"), line


def test_a_read_only_data_dir_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, tmpfs: Callable[[str], None], monkeypatch: pytest.MonkeyPatch, counts: Counts
) -> None:
    data_dir = tmp_path / "fs" / "data"
    monkeypatch.setenv("BUDGETCTL_DATA_DIR", str(data_dir))
    book = prepare(data_dir)
    before = fingerprint(data_dir)
    tmpfs("ro")
    faults = 0
    with pytest.raises(StorageIOError) as failed:
        book.charge_cost("u", "3")
    faults += 1
    assert str(data_dir) in str(failed.value) and "Read-only" in str(failed.value)
    for args in (
        ["update-cost", "u", "--cost", "3"],
        ["reset-due"],
        ["create", "w", "--budget", "1", "--duration", "none"],
    ):
        done = cli(*args)
        faults += 1
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert str(data_dir) in done.stderr and "Traceback" not in done.stderr, done.stderr
    shown = cli("show", "u", "--json")  # reading needs no write access
    assert shown.returncode == 0, shown.stderr
    assert fingerprint(data_dir) == before
    tmpfs("rw")
    assert cli("update-cost", "u", "--cost", "3").returncode == 0
    balances, _ = consistent(book, data_dir)
    line = counts(operations=faults + 2, faults_injected=faults, charges_lost=0)
    assert balances["u"] == Decimal("4.25"), line


def test_a_failed_directory_sync_after_the_replace_is_not_a_failed_charge(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, counts: Counts
) -> None:
    """Once ``os.replace`` has put the new state in place, the charge is made: reporting it as
    failed (exit 1) would make a retrying script charge twice."""
    book = prepare(data_dir)
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        result = book.charge_cost("u", "3", request_id="once")
    assert result.current_cost == Decimal("4.25")
    assert book.charge_cost("u", "3", request_id="once").duplicate  # a retry charges nothing
    balances, events = consistent(book, data_dir)
    charged = [e for e in events if e["type"] == "charge"]
    line = counts(operations=2, faults_injected=1, charges_lost=0, charged_twice=len(charged) - 2)
    assert balances["u"] == Decimal("4.25") and len(charged) == 2, line
