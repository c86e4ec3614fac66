"""Request ids: where they are kept (an index beside the state), how long, and what survives.

Idempotency itself (duplicate or conflict) is tested in test_ledger.py and test_cli_charges.py;
here: no time a user supplies makes an id forgotten (issue 8 item 1), the index stays consistent
with the state and the history whatever happens to it (item 15), and a 0.1 state with its ids
inline keeps working and is migrated.
"""

from __future__ import annotations

import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import T0, Clock, digest
from helpers.cli import data, fails, ok

from budgetctl import Ledger
from budgetctl.core.periods import UTC, format_utc
from budgetctl.errors import (
    CorruptStateError,
    RequestIdConflictError,
    StorageIOError,
    UsageError,
)
from budgetctl.importer import import_litellm
from budgetctl.store import json_store, request_ids
from budgetctl.store.interface import ChargeRequest

pytest_plugins = ["helpers.cli"]

FAR = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wall(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The machine's clock, pinned a month after the ledger's (T0): it bounds a time set forward."""
    machine = Clock(T0 + timedelta(days=30))
    monkeypatch.setattr(request_ids, "wall_clock", machine)
    return machine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(data_dir: Path, clock: Clock) -> Ledger:
    ledger = Ledger("team", clock=clock)
    ledger.create("alice", "10", duration="daily")
    ledger.charge_cost("alice", "0.5", request_id="early")
    return ledger


def charges(book: Ledger) -> list[dict[str, Any]]:
    return [e.to_json() for e in book.history() if e.type == "charge"]


def state(data_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((data_dir / "team.json").read_bytes())
    return doc


# --- no supplied time forgets an id (item 1) ----------------------------------------------------


def test_reset_due_in_the_far_future_forgets_no_request_id(book: Ledger, clock: Clock) -> None:
    book.reset_due(now=FAR, dry_run=True)
    book.reset_due(now=FAR)
    book.store.reset_due(FAR + timedelta(days=1))
    # a store given a far-future time for a charge does not forget the others' ids either
    book.store.charge(ChargeRequest("alice", Decimal("1"), request_id="late"), FAR)
    clock.now += timedelta(hours=1)
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate
    assert [c.get("request_id") for c in charges(book)].count("early") == 1


def test_an_import_dated_2100_forgets_no_request_id(book: Ledger, tmp_path: Path) -> None:
    dated = FAR.timestamp()
    source = tmp_path / "user_cost.json"
    source.write_text(
        json.dumps(
            {"bob": {"total_budget": 5, "current_cost": 0, "duration": 1, "created_at": dated}}
        )
    )
    with pytest.raises(UsageError, match="after the current time"):
        import_litellm(book, source)  # refused: nothing the user supplies moves the ledger's now
    # A budget anchored in 2100 through the library does not move it either.
    book.create("bob", "5", duration="1d", start=FAR)
    book.charge_cost("bob", "0.1", request_id="bob-1")
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate
    assert book.charge_cost("bob", "0.1", request_id="bob-1").duplicate


@pytest.mark.usefixtures("cli_env", "frozen")
def test_cli_reset_due_and_import_forget_no_request_id(data_dir: Path, tmp_path: Path) -> None:
    ok("create", "alice", "--budget", "10", "--duration", "daily")
    charge = ("update-cost", "alice", "--cost", "0.5", "--request-id", "early")
    assert data(*charge)["duplicate"] is False
    ok("reset-due", "--now", "2100-01-01T00:00:00Z", "--dry-run")
    assert data(*charge)["duplicate"] is True
    source = tmp_path / "user_cost.json"
    source.write_text(json.dumps({"bob": {"total_budget": 5, "created_at": FAR.timestamp()}}))
    assert "after the current time" in fails(2, "import-litellm", str(source))
    assert data(*charge)["duplicate"] is True
    assert data("show", "alice")["current_cost"] == Decimal("0.5")


def test_the_wall_clock_bounds_a_clock_set_forward(book: Ledger, clock: Clock, wall: Clock) -> None:
    clock.now = FAR  # a clock set forward by mistake: 2100 is not 90 days after the charge
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate
    clock.now = T0 + timedelta(days=89)
    wall.now = FAR
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate  # behind the wall
    clock.now = T0 + timedelta(days=90, seconds=1)  # the clock's own 90 days count
    assert not book.charge_cost("alice", "0.5", request_id="early").duplicate


# --- where ids live (item 15) ---------------------------------------------------------------------


def test_ids_are_not_in_the_state(book: Ledger, data_dir: Path) -> None:
    size = len((data_dir / "team.json").read_bytes())
    for n in range(50):
        book.charge_cost("alice", "0.01", request_id=f"chatcmpl-{n:040d}")
    doc = state(data_dir)
    assert doc["version"] == 3 and "request_ids" not in doc
    assert len((data_dir / "team.json").read_bytes()) < size + 100  # the spend grew, not the ids
    with sqlite3.connect(data_dir / "team+request-ids.sqlite") as db:
        assert db.execute("SELECT count(*) FROM request_ids").fetchone() == (51,)


def test_expired_rows_are_deleted(book: Ledger, clock: Clock, wall: Clock, data_dir: Path) -> None:
    clock.now = wall.now = T0 + timedelta(days=91)
    book.charge_cost("alice", "0.5", request_id="late")
    with sqlite3.connect(data_dir / "team+request-ids.sqlite") as db:
        assert db.execute("SELECT id FROM request_ids").fetchall() == [("late",)]


def fail_replace(monkeypatch: pytest.MonkeyPatch, errno: int = 28) -> None:
    """Make the state's ``os.replace`` fail (a full disk): the transaction does not commit."""

    def refuse(*_args: object) -> None:
        raise OSError(errno, os.strerror(errno))

    monkeypatch.setattr(json_store.os, "replace", refuse)


def test_an_id_is_remembered_only_once_its_charge_committed(
    book: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index row is written before the state's replace; the replace fails: the id must not
    count, and the retry charges once."""

    with monkeypatch.context() as patched:
        fail_replace(patched)
        with pytest.raises(StorageIOError):
            book.charge_cost("alice", "0.25", request_id="r")
    with sqlite3.connect(data_dir / "team+request-ids.sqlite") as db:  # the row is there...
        assert db.execute("SELECT count(*) FROM request_ids WHERE id='r'").fetchone() == (1,)
    assert not book.charge_cost("alice", "0.5", request_id="r").duplicate  # ...and means nothing
    assert book.charge_cost("alice", "0.5", request_id="r").duplicate
    assert book.get("alice").current_cost == Decimal("1")
    assert [c.get("request_id") for c in charges(book)] == ["r", "early"]


def test_a_row_pointing_at_a_cut_and_rewritten_tail_means_nothing(
    book: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        fail_replace(patched, errno=5)
        with pytest.raises(StorageIOError):
            book.charge_cost("alice", "0.25", request_id="lost")
    book.charge_cost("alice", "0.25", request_id="other")  # written where "lost" was appended
    assert not book.charge_cost("alice", "0.25", request_id="lost").duplicate
    assert book.get("alice").current_cost == Decimal("1")


def test_a_restored_state_forgets_the_ids_of_the_charges_it_lost(
    book: Ledger, data_dir: Path
) -> None:
    backup = (data_dir / "team.json").read_bytes()
    counted = state(data_dir)["history"]["size"]
    book.charge_cost("alice", "0.25", request_id="after-backup")
    (data_dir / "team.json").write_bytes(backup)  # restored, as the error messages advise
    with open(data_dir / "team+history.jsonl", "r+b") as history:  # and its history
        history.truncate(counted)
    assert not book.charge_cost("alice", "0.25", request_id="after-backup").duplicate
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate
    assert book.get("alice").current_cost == Decimal("0.75")


def test_a_missing_or_unfinished_index_is_rebuilt_from_the_history(
    book: Ledger, data_dir: Path
) -> None:
    index = data_dir / "team+request-ids.sqlite"
    os.rename(index, data_dir / "aside.sqlite")
    assert book.charge_cost("alice", "0.5", request_id="early", dry_run=True).duplicate
    assert not index.exists()  # a dry run read the history, wrote nothing
    assert book.charge_cost("alice", "0.5", request_id="early").duplicate
    with sqlite3.connect(index) as db:
        db.execute("PRAGMA user_version = 0")  # as if killed while building it
    with pytest.raises(RequestIdConflictError):
        book.charge_cost("alice", "0.7", request_id="early")
    assert book.get("alice").current_cost == Decimal("0.5")


def test_a_corrupt_index_is_reported_and_never_overwritten(book: Ledger, data_dir: Path) -> None:
    index = data_dir / "team+request-ids.sqlite"
    index.write_bytes(b"not a database at all" * 100)
    before = digest(index)
    with pytest.raises(CorruptStateError) as caught:
        book.charge_cost("alice", "0.5", request_id="early")
    assert str(index) in str(caught.value) and "move it aside" in str(caught.value)
    assert digest(index) == before
    book.charge_cost("alice", "0.5")  # a charge without an id does not need it


def test_an_index_that_is_a_link_is_refused(book: Ledger, data_dir: Path, tmp_path: Path) -> None:
    index = data_dir / "team+request-ids.sqlite"
    target = tmp_path / "elsewhere.sqlite"
    os.rename(index, target)
    index.symlink_to(target)
    with pytest.raises(StorageIOError, match="not a regular file"):
        book.charge_cost("alice", "0.5", request_id="x")


# --- a 0.1 state, ids inline ----------------------------------------------------------------


def old_state(data_dir: Path, clock: Clock) -> Ledger:
    """A project as budgetctl 0.1 left it: version 1, its request ids inline in the state."""
    book = Ledger("team", clock=clock)
    book.create("alice", "10", duration="daily")
    book.charge_cost("alice", "0.5", model="m", request_id="old-1")
    clock.now += timedelta(days=1)
    book.charge_cost("alice", "0.25", request_id="old-2")
    os.unlink(data_dir / "team+request-ids.sqlite")
    doc = state(data_dir)
    doc["version"] = 1
    doc["request_ids"] = {
        "ancient": format_utc(T0 - timedelta(days=200)),  # past 90 days: forgotten
        "not-in-history": format_utc(T0),  # its charge is not in the history any more
        "old-1": format_utc(T0),
        "old-2": format_utc(T0 + timedelta(days=1)),
    }
    (data_dir / "team.json").write_text(json.dumps(doc))
    return book


def test_a_version_1_state_keeps_its_ids_and_is_migrated(data_dir: Path, clock: Clock) -> None:
    book = old_state(data_dir, clock)
    # read as it is (a dry run writes nothing)
    assert book.charge_cost("alice", "0.5", model="m", request_id="old-1", dry_run=True).duplicate
    with pytest.raises(RequestIdConflictError, match=r"to 'alice' for \$0\.25"):
        book.charge_cost("alice", "0.3", request_id="old-2", dry_run=True)
    assert state(data_dir)["version"] == 1
    # the first write migrates
    assert book.charge_cost("alice", "0.5", model="m", request_id="old-1").duplicate
    assert not book.charge_cost("alice", "0.1", request_id="new").duplicate
    doc = state(data_dir)
    assert doc["version"] == 3 and "request_ids" not in doc
    assert book.charge_cost("alice", "0.1", request_id="new").duplicate
    with pytest.raises(RequestIdConflictError, match=r"to 'alice' for \$0\.25"):
        book.charge_cost("alice", "0.3", request_id="old-2")
    assert book.charge_cost("alice", "99", request_id="not-in-history").duplicate  # unknown
    assert not book.charge_cost("alice", "0.1", request_id="ancient").duplicate
    assert book.get("alice").current_cost == Decimal("0.45")  # 0.25 + 0.1 + 0.1


def test_a_migration_killed_before_the_state_is_written_is_done_again(
    data_dir: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = old_state(data_dir, clock)
    with monkeypatch.context() as patched:
        fail_replace(patched)
        with pytest.raises(StorageIOError):
            book.charge_cost("alice", "0.1", request_id="during")
    assert state(data_dir)["version"] == 1  # the index was built, the state not replaced
    assert book.charge_cost("alice", "0.25", request_id="old-2").duplicate
    assert not book.charge_cost("alice", "0.1", request_id="during").duplicate
    assert state(data_dir)["version"] == 3
    assert book.charge_cost("alice", "0.1", request_id="during").duplicate


def test_one_ledger_shared_by_threads(book: Ledger) -> None:
    """Each transaction has its own handle on the index: a dry run (which takes no lock) in one
    thread never uses or closes the connection of a charge in another."""

    def work(thread: int) -> None:
        for n in range(15):
            assert not book.charge_cost("alice", "0.01", request_id=f"t{thread}-{n}").duplicate
            assert book.charge_cost("alice", "0.5", request_id="early", dry_run=True).duplicate

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert book.get("alice").current_cost == Decimal("1.1")
