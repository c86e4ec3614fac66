"""The store's files at the edges: restored backups, files another user could plant (symlinks,
FIFOs, files of someone else, a data dir others can write), file names that collide, and a data
dir written by budgetctl 0.1 (tests/fixtures/data-0.1, made by its ``make.py.txt`` with 0.1's
code). The same attacks in rounds, and lock files deleted while writers charge, are in
tests/reliability/test_file_attacks.py.

Most run the installed ``budgetctl`` as a user, a script or cron does; the rest use the library.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Clock, fingerprint

from budgetctl.core import rules
from budgetctl.errors import (
    HistoryKeptAsideWarning,
    InvalidNameError,
    LockLostError,
    StorageIOError,
)
from budgetctl.ledger import Ledger, list_projects
from budgetctl.store.json_store import JsonStore

pytestmark = pytest.mark.process

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
OLD_DATA = Path(__file__).parent / "fixtures" / "data-0.1"
SECRET = b"root's own file\n"


def cli(*args: str, env: dict[str, str] | None = None, umask: int | None = None) -> Any:
    """The installed entry point (bounded in time: a hang is a failure, not a stuck test)."""
    return subprocess.run(
        [str(BUDGETCTL), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **(env or {})},
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def store(project: str = "p") -> JsonStore:
    found = Ledger(project).store
    assert isinstance(found, JsonStore)
    return found


def counted(data_dir: Path, project: str = "p") -> int:
    size: int = json.loads((data_dir / f"{project}.json").read_bytes())["history"]["size"]
    return size


def stored(data_dir: Path, project: str = "p") -> dict[str, Decimal]:
    doc = json.loads((data_dir / f"{project}.json").read_bytes())
    out = {user: Decimal(rec["current_cost"]) for user, rec in doc["users"].items()}
    if doc.get("cap"):
        out[rules.CAP] = Decimal(doc["cap"]["current_cost"])
    return out


def replayed(book: Ledger) -> dict[str, Decimal]:
    return rules.replay(reversed(book.history()))


def orphans(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*orphan*"))


# --- restoring the state file from a backup (issue 8, item 10) ----------------------------------


def test_restoring_a_backup_keeps_the_history_written_since(data_dir: Path) -> None:
    """The corrupt-state error says "restore it from a backup": the charges recorded after that
    backup must not be destroyed by the next write. They are moved aside, and the CLI says where,
    even with -q."""
    assert (
        cli("create", "alice", "--budget", "100", "--duration", "monthly", "-p", "p").returncode
        == 0
    )
    assert (
        cli("update-cost", "alice", "--cost", "1", "--request-id", "r0", "-p", "p").returncode == 0
    )
    backup = (data_dir / "p.json").read_bytes()
    for n in range(1, 6):
        done = cli("update-cost", "alice", "--cost", "0.1", "--request-id", f"r{n}", "-p", "p")
        assert done.returncode == 0, done.stderr
    history = store().history_path
    written = history.read_bytes()
    (data_dir / "p.json").write_bytes(backup)  # as an admin restores it
    since = written[counted(data_dir) :]
    assert since.count(b"\n") == 5

    done = cli("update-cost", "alice", "--cost", "2", "-q", "-p", "p")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    kept = orphans(data_dir)
    assert len(kept) == 1, sorted(p.name for p in data_dir.iterdir())
    assert kept[0].read_bytes() == since  # the 5 charges, their ids with them
    assert all(f'"request_id":"r{n}"'.encode() in since for n in range(1, 6))
    assert done.stderr.startswith("warning: ") and str(kept[0]) in done.stderr, done.stderr
    assert "restored from a backup" in done.stderr
    assert history.read_bytes().startswith(written[: len(written) - len(since)])
    assert len(history.read_bytes()) == counted(data_dir)
    book = Ledger("p")
    assert replayed(book) == stored(data_dir) == {"alice": Decimal(3)}


def test_the_library_warns_when_it_keeps_a_tail_aside(data_dir: Path) -> None:
    book = Ledger("p", clock=Clock())
    book.create("alice", "10")
    history = store().history_path
    tail = b'{"type":"charge","user":"alice","cost":"9"}\n{"type":"cha'
    history.write_bytes(history.read_bytes() + tail)
    with pytest.warns(HistoryKeptAsideWarning, match="orphan") as caught:
        book.charge_cost("alice", "1")
    assert len(caught) == 1 and "(2 lines)" in str(caught[0].message)
    assert [p.read_bytes() for p in orphans(data_dir)] == [tail]
    assert replayed(book) == stored(data_dir) == {"alice": Decimal(1)}


def test_a_write_that_fails_takes_its_own_history_back(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at the state write: the events this command appended are removed by it, so
    the next write has no tail to keep aside and nothing to warn about."""
    book = Ledger("p", clock=Clock())
    book.create("alice", "10")
    history = store().history_path
    before = fingerprint(data_dir)
    real = os.replace

    def full(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StorageIOError):
        book.charge_cost("alice", "1")
    monkeypatch.setattr(os, "replace", real)
    assert fingerprint(data_dir) == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        book.charge_cost("alice", "2")
    assert orphans(data_dir) == [] and len(history.read_bytes()) == counted(data_dir)


def test_a_tail_that_cannot_be_kept_aside_is_not_cut(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space for the copy of a tail: the write fails, the tail stays where it was, and no
    partial copy is left; with space again the next write keeps it aside."""
    book = Ledger("p", clock=Clock())
    book.create("alice", "10")
    book.charge_cost("alice", "1")
    history = store().history_path
    tail = b'{"type":"charge","user":"alice","cost":"5"}\n'
    history.write_bytes(history.read_bytes() + tail)
    before = fingerprint(data_dir)
    real = os.write

    def full(fd: int, data: Any) -> int:
        if "orphan" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageIOError, match="No space left"):
        book.charge_cost("alice", "1")
    monkeypatch.setattr(os, "write", real)
    assert fingerprint(data_dir) == before
    with pytest.warns(HistoryKeptAsideWarning):
        book.charge_cost("alice", "1")
    assert [p.read_bytes() for p in orphans(data_dir)] == [tail]
    assert replayed(book) == stored(data_dir) == {"alice": Decimal(2)}


# --- symlinks, FIFOs, files of others, a data dir others can write (item 11) --------------------

FILES = ["state", "history", "prices"]


def project_with_every_file(data_dir: Path) -> dict[str, Path]:
    book = Ledger("p")
    book.create("alice", "10", duration="daily")
    book.charge_cost("alice", "1")
    book.set_price("house-model", "0.000001", "0.000002")
    found = store()
    paths = {
        "state": found.path,
        "history": found.history_path,
        "prices": found.prices_path,
    }
    assert all(path.is_file() for path in paths.values()), sorted(os.listdir(data_dir))
    return paths


# each file, and commands that write it or read it
COMMANDS = {
    "state": [["update-cost", "alice", "--cost", "1"], ["show", "alice"], ["reset-due"]],
    "history": [["update-cost", "alice", "--cost", "1"], ["history", "alice"], ["reset", "alice"]],
    "prices": [
        ["price", "set", "x", "--input", "1", "--output", "2"],
        [
            "update-cost",
            "alice",
            "--model",
            "house-model",
            "--prompt-tokens",
            "1",
            "--completion-tokens",
            "1",
        ],
    ],
}


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Path]:
    """A private file outside the data dir that an attacker would like budgetctl to damage."""
    path = tmp_path / "elsewhere" / "secret"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    path.chmod(0o600)
    yield path
    assert path.read_bytes() == SECRET, "a file outside the data dir was changed"


@pytest.mark.parametrize("which", FILES)
def test_a_symlink_in_place_of_a_file_is_refused_not_followed(
    data_dir: Path, secret: Path, which: str
) -> None:
    path = project_with_every_file(data_dir)[which]
    path.unlink()
    path.symlink_to(secret)
    for args in COMMANDS[which]:
        done = cli(*args, "-p", "p")
        assert done.returncode == 1, (args, done.returncode, done.stdout, done.stderr)
        assert "symbolic link" in done.stderr and str(path) in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert path.is_symlink()


def test_a_temp_file_name_planted_as_a_symlink_is_neither_followed_nor_kept(
    data_dir: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = Ledger("p", clock=Clock())
    book.create("alice", "10")
    planted = data_dir / ".p+0badc0de.tmp"
    planted.symlink_to(secret)
    real = os.urandom
    tokens = [bytes.fromhex("0badc0de")]

    def predictable(n: int) -> bytes:
        return tokens.pop() if tokens and n == 4 else real(n)

    monkeypatch.setattr(os, "urandom", predictable)
    book.charge_cost("alice", "1")
    assert not planted.is_symlink()  # swept under the lock, as a stale temp file
    assert stored(data_dir) == {"alice": Decimal(1)}


@pytest.mark.parametrize("which", FILES)
def test_a_fifo_in_place_of_a_file_is_an_error_not_a_hang(data_dir: Path, which: str) -> None:
    path = project_with_every_file(data_dir)[which]
    path.unlink()
    os.mkfifo(path, 0o600)
    for args in COMMANDS[which]:
        done = cli(*args, "-p", "p")  # a hang fails by the timeout
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert "FIFO" in done.stderr and str(path) in done.stderr, (args, done.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("which", FILES)
def test_a_file_owned_by_another_user_is_refused(data_dir: Path, which: str) -> None:
    path = project_with_every_file(data_dir)[which]
    os.chown(path, 65534, 65534)
    before = fingerprint(data_dir)
    for args in COMMANDS[which]:
        done = cli(*args, "-p", "p")
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert "owned by user id 65534" in done.stderr and str(path) in done.stderr, done.stderr
    assert fingerprint(data_dir) == before


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_data_dir_others_can_write_is_refused(data_dir: Path, mode: int) -> None:
    project_with_every_file(data_dir)
    data_dir.chmod(mode)
    before = fingerprint(data_dir)
    for args in (
        ["update-cost", "alice", "--cost", "1"],
        ["show"],
        ["reset-due", "-q"],
        ["create", "bob", "--budget", "1", "--duration", "none"],
    ):
        done = cli(*args, "-p", "p")
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert f"chmod go-w {data_dir}" in done.stderr, done.stderr
        assert "other users" in done.stderr
    assert fingerprint(data_dir) == before
    data_dir.chmod(0o700)  # as the message says: then it works
    assert cli("update-cost", "alice", "--cost", "1", "-p", "p").returncode == 0


def test_every_missing_parent_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    top = tmp_path / "made"
    folder = top / "by" / "budgetctl"
    done = cli(
        "create", "alice", "--budget", "1", "--duration", "none", "-p", "p",
        env={"BUDGETCTL_DATA_DIR": str(folder)},
        umask=0,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for each in (top, top / "by", folder):
        assert stat.S_IMODE(each.stat().st_mode) == 0o700, each
    assert stat.S_IMODE((folder / "p.json").stat().st_mode) == 0o600


def test_root_cron_against_a_planted_history_link_changes_nothing_outside(
    tmp_path: Path, secret: Path
) -> None:
    """The attack as found: a data dir created under umask 000 (0777 parents), another user
    replaces the history with a link to a root-owned 0600 file, root's cron runs reset-due."""
    folder = tmp_path / "shared" / "budgetctl"
    env = {"BUDGETCTL_DATA_DIR": str(folder)}
    made = cli(
        "create", "alice", "--budget", "1", "--duration", "daily", "-p", "p", env=env, umask=0
    )
    assert made.returncode == 0, made.stderr
    folder.chmod(0o777)  # what 0.1 left, or a careless admin
    history = JsonStore("p", folder).history_path
    history.unlink()
    history.symlink_to(secret)
    cron = cli("reset-due", "--all-projects", "-q", env=env)
    assert cron.returncode == 1, cron.stderr
    assert "chmod go-w" in cron.stderr


def test_a_holder_whose_data_dir_was_replaced_changes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data dir is moved aside and a new one made while a charge holds the lock (another
    process may now lock the new one): the charge changes nothing, in either directory, and says
    it is safe to retry (exit 5)."""
    book = Ledger("p", clock=Clock())
    book.create("alice", "10")
    moved = data_dir.parent / "moved"
    real = JsonStore.decode

    def replaced_meanwhile(self: JsonStore, user: str, raw: Any) -> Any:
        data_dir.rename(moved)  # inside the transaction, after the lock was taken
        data_dir.mkdir(0o700)
        return real(self, user, raw)

    before = fingerprint(data_dir)
    monkeypatch.setattr(JsonStore, "decode", replaced_meanwhile)
    with pytest.raises(LockLostError) as caught:
        book.charge_cost("alice", "1")
    monkeypatch.setattr(JsonStore, "decode", real)
    assert caught.value.exit_code == 5 and "safe to retry" in str(caught.value)
    assert str(data_dir) in str(caught.value)
    assert list(data_dir.iterdir()) == []
    assert fingerprint(moved) == before
    data_dir.rmdir()
    moved.rename(data_dir)
    book.charge_cost("alice", "1")  # the retry works
    assert stored(data_dir) == {"alice": Decimal(1)}


def test_lock_files_are_never_opened_and_a_write_removes_them(data_dir: Path, secret: Path) -> None:
    """The data dir is what is locked: a ``p+lock`` (earlier builds) or ``p.lock`` (0.1) left
    behind, or planted as a symlink or a FIFO, is not opened, and the next write removes it."""
    assert cli("create", "alice", "--budget", "10", "--duration", "none", "-p", "p").returncode == 0
    (data_dir / "p+lock").symlink_to(secret)
    os.mkfifo(data_dir / "p.lock", 0o600)
    done = cli("update-cost", "alice", "--cost", "1", "-p", "p")
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(data_dir / "p+lock") and not os.path.lexists(data_dir / "p.lock")
    assert stored(data_dir) == {"alice": Decimal(1)}


# --- names that cannot collide (item 12) ---------------------------------------------------------


def test_a_project_named_like_another_projects_file_is_its_own(data_dir: Path) -> None:
    assert (
        cli("price", "set", "house-model", "--input", "1", "--output", "2", "-p", "team").returncode
        == 0
    )
    assert (
        cli("create", "alice", "--budget", "10", "--duration", "daily", "-p", "team").returncode
        == 0
    )
    for name in ("team.prices", "team.history", "team.lock"):
        done = cli("create", "bob", "--budget", "5", "--duration", "daily", "-p", name)
        assert done.returncode == 0, (name, done.stderr)
    priced = cli(
        "update-cost", "alice", "--model", "house-model",
        "--prompt-tokens", "1000000", "--completion-tokens", "0", "--json", "-p", "team",
    )  # fmt: skip
    assert priced.returncode == 0, priced.stderr
    assert json.loads(priced.stdout)["cost"] == 1
    listed = cli("projects", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "team.prices" in listed.stdout and "team.history" in listed.stdout
    assert list_projects() == ["team", "team.history", "team.lock", "team.prices"]
    cron = cli(
        "reset-due", "--all-projects", "--now", "2099-01-01T00:00:00Z", "--dry-run", "--json"
    )
    assert cron.returncode == 0, cron.stderr
    assert all(name in cron.stdout for name in ("team.prices", "team.history", "team.lock"))


def test_project_names_that_end_in_a_newline_are_refused(data_dir: Path) -> None:
    for name in ("abc\n", "abc\r\n", "a" * 64 + "\n"):
        with pytest.raises(InvalidNameError):
            Ledger(name)
        done = cli("create", "alice", "--budget", "1", "--duration", "none", "-p", name)
        assert done.returncode == 2, (name, done.stderr)
    assert not data_dir.exists() or os.listdir(data_dir) == []


def test_a_user_named_like_the_cap_is_a_user(data_dir: Path) -> None:
    book = Ledger("p", clock=Clock())
    book.create("*project cap*", "10")
    book.create("alice", "10")
    book.charge_cost("alice", "1")
    book.set_cap("100")
    book.charge_cost("alice", "2")
    book.charge_cost("*project cap*", "0.5")
    assert replayed(book) == stored(data_dir)
    assert stored(data_dir)["*project cap*"] == Decimal("0.5")
    # the cap counts every charge of its period, those made before it was set too (issue 8 item 6)
    assert book.cap() is not None and book.cap().current_cost == Decimal("3.5")  # type: ignore[union-attr]


# --- a data dir as budgetctl 0.1 wrote it (item 12) ----------------------------------------------


@pytest.fixture
def old_data(data_dir: Path) -> Path:
    shutil.copytree(OLD_DATA, data_dir)
    (data_dir / "make.py.txt").unlink()
    data_dir.chmod(0o700)
    return data_dir


def test_an_old_data_dir_is_read_as_it_is(old_data: Path) -> None:
    before = fingerprint(old_data)
    assert list_projects() == ["other", "team"]
    listed = cli("projects", "--json")
    assert listed.returncode == 0 and "team.prices" not in listed.stdout, listed.stdout
    alice = cli("show", "alice", "--json", "-p", "team")
    assert alice.returncode == 0, alice.stderr
    history = cli("history", "alice", "--json", "-p", "team")
    assert history.returncode == 0, history.stderr
    assert "req-1" in history.stdout and "req-2" in history.stdout
    models = cli("models", "house-model", "-p", "team", "--json")
    assert models.returncode == 0 and "house-model" in models.stdout, models.stderr
    dry = cli("update-cost", "bob", "--model", "house-model", "--prompt-tokens", "1000000",
              "--completion-tokens", "0", "--dry-run", "--json", "-p", "team")  # fmt: skip
    assert dry.returncode == 0 and json.loads(dry.stdout)["cost"] == 1, dry.stderr
    assert fingerprint(old_data) == before  # reading (and a dry run) renames nothing


def test_an_old_data_dir_takes_the_new_names_at_its_first_write(old_data: Path) -> None:
    old_history = (old_data / "team.history.jsonl").read_bytes()
    done = cli("update-cost", "bob", "--model", "house-model", "--prompt-tokens", "1000000",
               "--completion-tokens", "0", "-p", "team")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no tail, no warning
    names = sorted(os.listdir(old_data))
    assert names == [
        "other.history.jsonl", "other.json", "other.lock",  # not written: as they were
        "team+history.jsonl", "team+prices.json",
        "team+request-ids.sqlite",  # its state's inline ids, moved to the index at this write
        "team.json",
    ], names  # fmt: skip
    assert (old_data / "team+history.jsonl").read_bytes().startswith(old_history)
    book = Ledger("team")
    assert replayed(book) == stored(old_data, "team")
    assert book.get("bob").current_cost == Decimal(1)
    assert [p.start.month for p in book.get("alice").recent_periods][-1] == 1  # via its link
    assert book.store.prices().keys() == {"house-model"}
    assert cli("reset-due", "--all-projects", "-q").returncode == 0
    assert list_projects() == ["other", "team"]
