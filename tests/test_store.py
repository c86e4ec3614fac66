"""The JSON store: file modes, format, corrupt and future files, the history, the lock, dry runs."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Clock, fingerprint

from budgetctl.core import rules
from budgetctl.core.periods import UTC
from budgetctl.errors import (
    BudgetctlError,
    CorruptStateError,
    FutureVersionError,
    HistoryKeptAsideWarning,
    InvalidNameError,
    LockTimeoutError,
    StateError,
    UsageError,
)
from budgetctl.ledger import Ledger
from budgetctl.store import lock
from budgetctl.store.json_store import FORMAT, VERSION, JsonStore


def ledger(data_dir: Path, clock: Clock | None = None, **kwargs: Any) -> Ledger:
    return Ledger("proj", data_dir, clock=clock or Clock(), **kwargs)


def seeded(data_dir: Path, clock: Clock | None = None) -> Ledger:
    """A project with two users, a cap, a few charges and a closed period."""
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    book.create("bob", "5")
    book.set_cap("100", duration="monthly")
    book.charge_cost("alice", "0.25", model="gpt-4o", request_id="req-1")
    book.charge_cost("bob", "1.5")
    book.reset(["bob"])
    return book


def replayed(book: Ledger) -> dict[str, Decimal]:
    return rules.replay(reversed(book.history()))  # history() is newest first


def stored(path: Path) -> dict[str, Decimal]:
    doc = json.loads(path.read_bytes())
    out = {user: Decimal(rec["current_cost"]) for user, rec in doc["users"].items()}
    if doc.get("cap"):
        out[rules.CAP] = Decimal(doc["cap"]["current_cost"])
    return out


# --- files ----------------------------------------------------------------------------------------


def test_files_are_private(data_dir: Path) -> None:
    old = os.umask(0o022)  # a typical umask must not widen them
    try:
        book = seeded(data_dir / "nested" / "dir")
    finally:
        os.umask(old)
    folder = data_dir / "nested" / "dir"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("proj.json", "proj+history.jsonl", "proj+request-ids.sqlite"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    book.set_price("private-model", "0.000001", "0.000002")
    assert stat.S_IMODE((folder / "proj+prices.json").stat().st_mode) == 0o600
    # no temp files left behind
    assert sorted(p.name for p in folder.iterdir()) == [
        "proj+history.jsonl",
        "proj+prices.json",
        "proj+request-ids.sqlite",  # sqlite's -wal and -shm files are gone once it is closed
        "proj.json",
    ]


def test_state_has_format_version_and_exact_money(data_dir: Path) -> None:
    book = seeded(data_dir)
    book.charge_cost("alice", "0.000123", model="gpt-4o")
    doc = json.loads((data_dir / "proj.json").read_text("utf-8"))
    assert doc["format"] == FORMAT == "budgetctl-state"
    assert doc["version"] == VERSION == 3
    assert doc["history"]["size"] == (data_dir / "proj+history.jsonl").stat().st_size
    alice = doc["users"]["alice"]
    assert alice["current_cost"] == "0.250123"  # exact decimal text
    assert alice["model_cost"] == {"gpt-4o": "0.250123"}
    assert alice["next_reset_at"] == "2026-01-16T00:00:00Z"


def test_history_is_json_lines_in_order(data_dir: Path) -> None:
    book = seeded(data_dir)
    lines = (data_dir / "proj+history.jsonl").read_bytes().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["create", "create", "cap", "charge", "charge", "period"]
    assert events[3]["request_id"] == "req-1" and events[3]["cost"] == "0.25"
    # the store's own link ("prev") stays on disk; the typed events carry no on-disk detail
    assert [e.to_json() for e in book.history()] == [
        {k: v for k, v in e.items() if k != "prev"} for e in reversed(events)
    ]
    assert [e.to_json() for e in book.history("alice", limit=1)] == [events[3]]


def test_every_write_leaves_balance_equal_to_history(data_dir: Path) -> None:
    clock = Clock()
    book = seeded(data_dir, clock)
    clock.now += timedelta(days=40)
    book.charge_cost("alice", "1")  # rolls alice and the cap over first
    book.reset_due()
    assert stored(data_dir / "proj.json") == replayed(book)
    assert replayed(book) == {"alice": Decimal(1), "bob": Decimal(0), rules.CAP: Decimal(1)}


# --- corrupt and future files -------------------------------------------------------------------

VALID_RECORD = {  # a daily budget whose period ended (reset-due reads it)
    "total_budget": "10",
    "current_cost": "0",
    "duration": "daily",
    "created_at": "2026-01-01T00:00:00Z",
    "period_start": "2026-01-01T00:00:00Z",
    "next_reset_at": "2026-01-02T00:00:00Z",
}


def state_with(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "project": "proj",
        "history": {"size": 0},
        "cap": None,
        "users": {"alice": dict(VALID_RECORD)},
        "request_ids": {},
    }
    doc.update(changes)
    return json.dumps(doc).encode()


CORRUPT: dict[str, tuple[bytes, str]] = {
    "invalid JSON": (b'{"format": "budgetctl-state", "version": 1,, }', "not valid JSON"),
    "truncated": (state_with()[:70], "not valid JSON"),
    "empty": (b"", "empty"),
    "whitespace only": (b"  \n", "empty"),
    "non-UTF-8": (b'{"format": "budgetctl-state", "x": "\xff\xfe"}', "UTF-8"),
    "a list": (b"[1, 2, 3]", "not a budgetctl state"),
    "another format": (json.dumps({"format": "other", "version": 1}).encode(), "budgetctl state"),
    "no version": (json.dumps({"format": FORMAT}).encode(), "version"),
    "users is a list": (state_with(users=[]), "structure"),
    "no history size": (state_with(history={}), "structure"),
    "negative history size": (state_with(history={"size": -1}), "structure"),
    "cap is a string": (state_with(cap="lots"), "structure"),
    "request ids not times": (state_with(request_ids={"r": 5}), "structure"),
    "record not an object": (state_with(users={"alice": 5}), "alice"),
    "record missing a field": (
        state_with(users={"alice": {k: v for k, v in VALID_RECORD.items() if k != "created_at"}}),
        "created_at",
    ),
    "amount not a number": (
        state_with(users={"alice": {**VALID_RECORD, "current_cost": "abc"}}),
        "abc",
    ),
    "amount is a float": (
        state_with(users={"alice": {**VALID_RECORD, "total_budget": 1.5}}),
        "1.5",
    ),
    "negative amount": (state_with(users={"alice": {**VALID_RECORD, "current_cost": "-1"}}), "-1"),
    "bad time": (state_with(users={"alice": {**VALID_RECORD, "created_at": "yesterday"}}), "alice"),
    "bad duration": (
        state_with(users={"alice": {**VALID_RECORD, "duration": "fortnightly"}}),
        "fortnightly",
    ),
    "bad time zone": (
        state_with(
            users={
                "alice": {
                    **VALID_RECORD,
                    "duration": "daily",
                    "timezone": "Mars/Base",
                    "next_reset_at": "2026-01-02T00:00:00Z",
                }
            }
        ),
        "Mars/Base",
    ),
    "bad cap": (state_with(cap={"total_budget": "x"}), "'x'"),
}

# Every Ledger operation that reads or writes the state, each touching alice's record or the
# whole project. (exists() only asks whether the file is there.)
OPERATIONS: dict[str, Callable[[Ledger], object]] = {
    "create": lambda b: b.create("zed", "5"),
    "create --replace": lambda b: b.create("alice", "5", replace=True),
    "set": lambda b: b.set("alice", budget="20"),
    "get": lambda b: b.get("alice"),
    "view": lambda b: b.view(),
    "users": lambda b: b.users(),
    "charge": lambda b: b.charge_cost("alice", "0.5"),
    "charge dry-run": lambda b: b.charge_cost("alice", "0.5", dry_run=True),
    "reset": lambda b: b.reset(["alice"]),
    "reset all": lambda b: b.reset(),
    "reset-due": lambda b: b.reset_due(now=datetime(2030, 1, 1, tzinfo=UTC)),
    "roll over": lambda b: b.roll_over(["alice"]),
    "delete": lambda b: b.delete(["alice"]),
    "cap": lambda b: b.cap(),
    "set cap": lambda b: b.set_cap("50"),
    "clear cap": lambda b: b.clear_cap(),
    "history": lambda b: b.history(),
    "history of a user": lambda b: b.history("alice"),
}

# A bad record is found where the record is read. Operations that never read alice's record pass
# over it (adding another user, listing names, the cap, deleting alice, and create --replace,
# which starts alice over): decoding every record of a 100,000-user project costs 0.4 s a command.
SKIPS_RECORDS = {"create", "create --replace", "users", "clear cap", "delete", "cap", "set cap"}
SKIPS_RECORDS |= {"history"}
READS_CAP = {"get", "view", "charge", "charge dry-run", "reset-due", "cap", "set cap"}
RECORD_CASES = {
    "record not an object",
    "record missing a field",
    "amount not a number",
    "amount is a float",
    "negative amount",
    "bad time",
    "bad duration",
    "bad time zone",
}
CAP_CASES = {"bad cap"}


def _reads(operation: str, case: str) -> bool:
    if case in RECORD_CASES:
        return operation not in SKIPS_RECORDS
    if case in CAP_CASES:
        return operation in READS_CAP
    return True


@pytest.mark.parametrize(
    ("operation", "case"),
    [(op, case) for op in OPERATIONS for case in CORRUPT if _reads(op, case)],
)
def test_corrupt_state_is_reported_and_never_touched(
    data_dir: Path, case: str, operation: str
) -> None:
    content, reason = CORRUPT[case]
    data_dir.mkdir()
    (data_dir / "proj.json").write_bytes(content)
    (data_dir / "proj+history.jsonl").write_bytes(b'{"type":"tail"}\n')  # beyond size 0
    before = fingerprint(data_dir)
    with pytest.raises(CorruptStateError) as caught:
        OPERATIONS[operation](ledger(data_dir))
    error = caught.value
    assert error.path == str(data_dir / "proj.json")
    assert reason in str(error), str(error)
    assert str(data_dir / "proj.json") in str(error)
    assert "will not overwrite" in str(error)
    assert error.exit_code == 1
    assert fingerprint(data_dir) == before  # byte for byte, history tail included


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_future_version_is_refused(data_dir: Path, operation: str) -> None:
    data_dir.mkdir()
    (data_dir / "proj.json").write_bytes(state_with(version=VERSION + 1, users={"alice": "?"}))
    before = fingerprint(data_dir)
    with pytest.raises(FutureVersionError) as caught:
        OPERATIONS[operation](ledger(data_dir))
    message = str(caught.value)
    assert str(data_dir / "proj.json") in message
    assert f"format version {VERSION + 1} is newer" in message and "upgrade" in message
    assert fingerprint(data_dir) == before


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_a_bad_record_is_kept_verbatim_by_writes_that_pass_over_it(
    data_dir: Path, case: str
) -> None:
    """Writes that do not read a bad record keep it as it is: nothing in it is lost."""
    data_dir.mkdir()
    content = CORRUPT[case][0]
    (data_dir / "proj.json").write_bytes(content)
    book = ledger(data_dir)
    book.create("zed", "5")
    assert (
        json.loads((data_dir / "proj.json").read_bytes())["users"]["alice"]
        == json.loads(content)["users"]["alice"]
    )
    with pytest.raises(CorruptStateError):
        book.get("alice")


def test_unreadable_state_is_an_io_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "proj.json").mkdir()
    with pytest.raises(StateError) as caught:
        ledger(data_dir).get("alice")
    assert "directory" in str(caught.value)


# --- the history --------------------------------------------------------------------------------


def test_history_shorter_than_recorded_is_an_error(data_dir: Path) -> None:
    book = seeded(data_dir)
    history = data_dir / "proj+history.jsonl"
    history.write_bytes(history.read_bytes()[:-20])
    before = fingerprint(data_dir)
    for operation in ("charge", "create", "reset", "history", "set cap", "delete"):
        with pytest.raises(CorruptStateError) as caught:
            OPERATIONS[operation](book)
        assert str(history) in str(caught.value)
        assert "lost" in str(caught.value) or "shorter" in str(caught.value)
    assert fingerprint(data_dir) == before
    history.unlink()
    with pytest.raises(CorruptStateError):
        book.charge_cost("alice", "1")


def test_history_longer_than_recorded_is_moved_aside_by_the_next_write(data_dir: Path) -> None:
    book = seeded(data_dir)
    history = data_dir / "proj+history.jsonl"
    counted = history.read_bytes()
    # an interrupted transaction: its events were appended, the state was not replaced
    tail = b'{"type":"charge","user":"alice","cost":"999"}\n{"type":"charge","user":"al'
    history.write_bytes(counted + tail)
    # readers never read past what the state counts
    assert replayed(book) == stored(data_dir / "proj.json")
    assert book.get("alice").current_cost == Decimal("0.25")
    assert all(getattr(e, "cost", None) != Decimal(999) for e in book.history())
    with pytest.warns(HistoryKeptAsideWarning, match="2 lines"):
        book.charge_cost("alice", "0.5")
    data = history.read_bytes()
    assert data.startswith(counted) and b"999" not in data and data.endswith(b"\n")
    kept = list(data_dir.glob("proj+history.*.orphan.jsonl"))
    assert len(kept) == 1 and kept[0].read_bytes() == tail  # never destroyed
    assert len(data) == json.loads((data_dir / "proj.json").read_bytes())["history"]["size"]
    assert replayed(book) == stored(data_dir / "proj.json")
    assert book.get("alice").current_cost == Decimal("0.75")


def test_dry_run_does_not_repair_the_tail(data_dir: Path) -> None:
    book = seeded(data_dir)
    history = data_dir / "proj+history.jsonl"
    history.write_bytes(history.read_bytes() + b'{"type":"cha')
    before = fingerprint(data_dir)
    book.charge_cost("alice", "1", dry_run=True)
    assert fingerprint(data_dir) == before


def test_history_line_that_is_not_json(data_dir: Path) -> None:
    book = seeded(data_dir)
    history = data_dir / "proj+history.jsonl"
    data = history.read_bytes()
    history.write_bytes(b"x" * 10 + data[10:])  # same size, first line broken
    with pytest.raises(CorruptStateError) as caught:
        book.history()
    assert "line 1" in str(caught.value)


# --- the lock -------------------------------------------------------------------------------------


def test_lock_timeout(data_dir: Path) -> None:
    book = seeded(data_dir)
    quick = ledger(data_dir, lock_timeout=0.2)
    before = fingerprint(data_dir)
    with lock.exclusive(data_dir):  # another open of the data dir: flock conflicts
        with pytest.raises(LockTimeoutError) as caught:
            quick.charge_cost("alice", "1")
        error = caught.value
        assert error.exit_code == 5
        assert str(data_dir) in str(error) and "0.2 s" in str(error) and "retry" in str(error)
        # reads do not need the lock
        assert quick.get("alice").current_cost == Decimal("0.25")
        with pytest.raises(LockTimeoutError):
            ledger(data_dir, lock_timeout=0).create("zed", "1")
    assert fingerprint(data_dir) == before
    book.charge_cost("alice", "1")  # released: the next write proceeds


def test_lock_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETCTL_LOCK_TIMEOUT", "0.3")
    assert lock.lock_timeout() == 0.3
    monkeypatch.setenv("BUDGETCTL_LOCK_TIMEOUT", "")
    assert lock.lock_timeout() == lock.DEFAULT_TIMEOUT
    for bad in ("soon", "-1", "nan", "inf", "-inf", "1e999"):
        monkeypatch.setenv("BUDGETCTL_LOCK_TIMEOUT", bad)
        with pytest.raises(UsageError, match="BUDGETCTL_LOCK_TIMEOUT"):
            lock.lock_timeout()


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_a_bad_lock_timeout_argument_is_a_usage_error(data_dir: Path, bad: float) -> None:
    with pytest.raises(UsageError, match="lock timeout"):
        ledger(data_dir, lock_timeout=bad)


# --- names and dry runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", ".hidden", "x" * 65, "", "/abs"])
def test_project_name_is_never_a_path(data_dir: Path, tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    inner = root / "data"
    inner.mkdir(parents=True)
    before = sorted(str(p) for p in root.rglob("*"))
    with pytest.raises(InvalidNameError) as caught:
        Ledger(name, inner, clock=Clock()).create("alice", "1")
    assert caught.value.exit_code == 2
    with pytest.raises(InvalidNameError):
        JsonStore(name, inner)
    assert sorted(str(p) for p in root.rglob("*")) == before


MUTATIONS: dict[str, Callable[[Ledger], object]] = {
    "create": lambda b: b.create("zed", "5", dry_run=True),
    "create --replace": lambda b: b.create("alice", "5", replace=True, dry_run=True),
    "set": lambda b: b.set("alice", budget="20", duration="weekly", dry_run=True),
    "charge": lambda b: b.charge_cost("alice", "0.5", request_id="new", dry_run=True),
    "reset": lambda b: b.reset(dry_run=True),
    "reset-due": lambda b: b.reset_due(now=datetime(2030, 1, 1, tzinfo=UTC), dry_run=True),
    "roll over": lambda b: b.roll_over(["alice"], dry_run=True),
    "delete": lambda b: b.delete(["alice", "bob"], dry_run=True),
    "set cap": lambda b: b.set_cap("50", duration="weekly", dry_run=True),
    "clear cap": lambda b: b.clear_cap(dry_run=True),
    "set price": lambda b: b.set_price("mine", "0.1", "0.2", dry_run=True),
}


@pytest.mark.parametrize("operation", list(MUTATIONS))
def test_dry_run_changes_nothing_on_disk(data_dir: Path, operation: str) -> None:
    clock = Clock()
    seeded(data_dir, clock)
    clock.now += timedelta(days=3)  # alice's period has ended: a real run would roll it over
    before = fingerprint(data_dir)
    MUTATIONS[operation](ledger(data_dir, clock))
    assert fingerprint(data_dir) == before


@pytest.mark.parametrize("existing_dir", [False, True])
def test_dry_run_in_a_new_project_creates_nothing(data_dir: Path, existing_dir: bool) -> None:
    if existing_dir:
        data_dir.mkdir()
    book = ledger(data_dir)
    created = book.create("alice", "5", dry_run=True)
    assert created.user == "alice"
    cap = book.set_cap("9", dry_run=True)
    assert cap.total_budget == 9
    assert list(data_dir.iterdir()) == [] if existing_dir else not data_dir.exists()


def test_operations_on_a_missing_project_leave_no_files(data_dir: Path) -> None:
    data_dir.mkdir()
    book = ledger(data_dir)
    for operation in ("charge", "set", "reset", "delete", "get", "clear cap"):
        with pytest.raises(BudgetctlError) as caught:
            OPERATIONS[operation](book)
        assert caught.value.exit_code == 4, operation
    assert list(data_dir.iterdir()) == []


def test_reset_due_at_a_moment_inside_the_boundary_second(data_dir: Path) -> None:
    """Due at 00:00:00; asked at 00:00:00.5: the period has ended."""
    clock = Clock(datetime(2026, 1, 15, 10, tzinfo=UTC))
    book = ledger(data_dir, clock)
    book.create("alice", "10", duration="daily")
    book.charge_cost("alice", "1")
    done = book.reset_due(now=datetime(2026, 1, 16, 0, 0, 0, 500000, tzinfo=UTC))
    assert [user for user, _ in done.reset] == ["alice"]
    assert stored(data_dir / "proj.json")["alice"] == 0


def test_a_failed_operation_does_not_cut_the_tail(data_dir: Path) -> None:
    book = seeded(data_dir)
    history = data_dir / "proj+history.jsonl"
    history.write_bytes(history.read_bytes() + b'{"type":"cha')
    before = fingerprint(data_dir)
    with pytest.raises(BudgetctlError):
        book.charge_cost("nobody", "1")
    with pytest.raises(BudgetctlError):
        book.create("alice", "1")  # exists
    assert fingerprint(data_dir) == before


def test_history_of_a_state_moved_aside_is_kept(data_dir: Path) -> None:
    """'Move it aside', says the corrupt-state error: the old history must survive that."""
    seeded(data_dir)
    old_history = (data_dir / "proj+history.jsonl").read_bytes()
    (data_dir / "proj.json").rename(data_dir / "proj.json.broken")
    book = ledger(data_dir)
    with pytest.warns(HistoryKeptAsideWarning, match="6 lines"):
        book.create("alice", "3")
    orphans = list(data_dir.glob("proj+history.*.orphan.jsonl"))
    assert len(orphans) == 1 and orphans[0].read_bytes() == old_history
    assert [e.type for e in book.history()] == ["create"]
    assert replayed(book) == stored(data_dir / "proj.json") == {"alice": 0}


def test_a_killed_writers_temp_files_are_swept(data_dir: Path) -> None:
    book = seeded(data_dir)
    stale = data_dir / ".proj.ab_3z9q1.tmp"  # what mkstemp names a temp file of 'proj'
    stale.write_bytes(b'{"format": "budgetctl-state"')
    other = data_dir / ".proj.x.ab_3z9q1.tmp"  # project 'proj.x': not ours to delete
    other.write_bytes(b"{}")
    book.charge_cost("alice", "0.1")
    assert not stale.exists() and other.exists()


@pytest.mark.parametrize("operation", ["charge", "set", "reset", "reset-due", "get", "users"])
def test_a_data_dir_that_is_a_file(tmp_path: Path, operation: str) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("I am a file")
    with pytest.raises(StateError) as caught:
        OPERATIONS[operation](ledger(not_a_dir))
    assert caught.value.exit_code == 1 and str(not_a_dir) in str(caught.value)
    with pytest.raises(StateError):
        ledger(not_a_dir).create("zed", "1", dry_run=True)
    assert not_a_dir.read_text() == "I am a file"
