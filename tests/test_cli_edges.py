"""Input at the edges that used to end in "unexpected ...; this is a bug": each is now a clear
usage error (exit 2) or, for a file in the data dir, a corrupt-state error naming the file (exit 1),
one line on stderr, quickly, and the data dir unchanged.

Users named twice, JSON nested 100,000 deep in every file budgetctl reads, names that are not
UTF-8 (argv bytes, JSON's lone surrogates), years near 9999, durations of 1e400 and amounts of
``1e-99999999`` or ``1e+999999999`` in files, and a BUDGETCTL_LOCK_TIMEOUT that is not a number.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import digest, fails, ok, run

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
DEEP = "[" * 100_000 + "]" * 100_000
NOT_UTF8 = "a\udcff"  # what Python makes of the argv bytes b"a\xff"


def quickly(code: int, *args: str) -> str:
    """``fails(code, ...)`` within a second, with a short message."""
    started = time.monotonic()
    error = fails(code, *args)
    assert time.monotonic() - started < 1, args
    assert len(error) < 400, error[:400]
    return error


# --- users named twice --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("delete", "--yes"), ("reset",)], ids=lambda c: c[0])
def test_a_user_named_twice_is_a_usage_error(alice: Path, command: tuple[str, ...]) -> None:
    before = digest(alice.parent)
    error = quickly(2, command[0], "alice", "alice", *command[1:])
    assert "'alice' is named more than once" in error
    assert digest(alice.parent) == before


# --- deeply nested JSON -------------------------------------------------------------------------

GIVEN_FILES = [
    ("update-cost", "alice", "--response", "FILE"),
    ("check", "alice", "-m", "gpt-4o", "--messages", "FILE"),
    ("check", "alice", "-m", "gpt-4o", "--prompt", "hi", "--prices", "FILE"),
    ("models", "gpt-4o", "--prices", "FILE"),
    ("import-litellm", "FILE", "-p", "imported"),
]


@pytest.mark.parametrize("args", GIVEN_FILES, ids=lambda a: " ".join(a[:3]))
def test_a_deeply_nested_file_given_is_a_usage_error(
    alice: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    before = digest(alice.parent)
    error = quickly(2, *(str(deep) if arg == "FILE" else arg for arg in args))
    assert "nested too deeply" in error or "recursion" in error
    assert digest(alice.parent) == before


def test_integers_beyond_pythons_digit_limit_are_clear(alice: Path, tmp_path: Path) -> None:
    huge = "9" * 5000  # int() refuses more than 4,300 digits with a bare ValueError
    litellm = tmp_path / "user_cost.json"
    litellm.write_text(f'{{"bob": {{"total_budget": {huge}}}}}')
    assert "4300 digits" in quickly(2, "import-litellm", str(litellm), "-p", "imported")
    alice.write_text(re.sub(r'"version":\d+', f'"version":{huge}', alice.read_text()))
    before = digest(alice.parent)
    assert str(alice) in quickly(1, "show")
    assert digest(alice.parent) == before


@pytest.mark.parametrize("rate", ["1e+999999999", "1e-999999999", '"' + "9" * 100_000 + '"'])
@pytest.mark.parametrize(
    "args",
    [("check", "alice", "-m", "m", "--prompt", "hi", "--prices"), ("models", "m", "--prices")],
    ids=lambda a: a[0],
)
def test_a_hostile_price_file_is_a_quick_short_usage_error(
    alice: Path, tmp_path: Path, rate: str, args: tuple[str, ...]
) -> None:
    hostile = tmp_path / "hostile.json"
    hostile.write_text(f'{{"m": {{"input_cost_per_token": {rate}, "output_cost_per_token": 1}}}}')
    before = digest(alice.parent)
    error = quickly(2, *args, str(hostile))
    assert f"price file {hostile}: model 'm': input_cost_per_token" in error
    assert digest(alice.parent) == before


def _new_files(folder: Path, command: Callable[[], Any]) -> list[Path]:
    """The files ``command`` adds to ``folder`` (the store names its files, not this test)."""
    before = set(folder.iterdir())
    command()
    return sorted(set(folder.iterdir()) - before)


def test_a_deeply_nested_state_file_is_corrupt_state(alice: Path) -> None:
    alice.write_text('{"format": "budgetctl-state", "version": 1, "users": ' + DEEP + "}")
    before = digest(alice.parent)
    for args in (("show",), ("update-cost", "alice", "--cost", "1"), ("reset-due",)):
        assert str(alice) in quickly(1, *args)
    assert digest(alice.parent) == before


def test_a_deeply_nested_project_prices_file_is_corrupt_state(alice: Path) -> None:
    (prices,) = _new_files(
        alice.parent, lambda: ok("price", "set", "mine", "--input", "1", "--output", "2")
    )
    prices.write_text('{"format": "budgetctl-prices", "version": 1, "prices": ' + DEEP + "}")
    before = digest(alice.parent)
    error = quickly(
        1, "update-cost", "alice", "-m", "mine", "--prompt-tokens", "1", "--completion-tokens", "1"
    )
    assert str(prices) in error
    assert digest(alice.parent) == before


def test_a_deeply_nested_history_line_is_corrupt_state(alice: Path) -> None:
    ok("reset", "alice")  # a closed period that `show alice` reads back from the history
    (history,) = [p for p in alice.parent.iterdir() if p.suffix == ".jsonl"]
    lines = history.read_bytes().splitlines(keepends=True)
    # The closed period's line becomes 100,000 deep; the state's count of history bytes follows
    # (the links into the history point at the line's start, which does not move).
    target = next(i for i, line in enumerate(lines) if b'"period"' in line)
    grown = len(DEEP) + 1 - len(lines[target])
    lines[target] = DEEP.encode() + b"\n"
    history.write_bytes(b"".join(lines))
    doc = json.loads(alice.read_text())
    doc["history"]["size"] += grown
    alice.write_text(json.dumps(doc))
    before = digest(alice.parent)
    assert str(history) in quickly(1, "show", "alice")
    assert digest(alice.parent) == before


# --- names that are not UTF-8 text -------------------------------------------------------------

NAMES = [
    (("create", NOT_UTF8, "-b", "1", "-d", "monthly"), "user"),
    (("update-cost", NOT_UTF8, "--cost", "1"), "user"),
    (("update-cost", "alice", "--cost", "1", "-m", NOT_UTF8), "model"),
    (("update-cost", "alice", "--cost", "1", "--request-id", NOT_UTF8), "request id"),
    (("price", "set", NOT_UTF8, "--input", "1", "--output", "1"), "model"),
]


@pytest.mark.parametrize(("args", "what"), NAMES, ids=lambda v: v[0] if isinstance(v, tuple) else v)
def test_a_name_that_is_not_utf8_is_a_usage_error(
    alice: Path, args: tuple[str, ...], what: str
) -> None:
    before = digest(alice.parent)
    assert f"{what} 'a\\udcff' is not valid UTF-8 text" in quickly(2, *args)
    assert digest(alice.parent) == before


def test_names_that_are_not_utf8_elsewhere_are_clear(alice: Path) -> None:
    before = digest(alice.parent)
    assert "invalid project name" in quickly(2, "show", "-p", NOT_UTF8)
    assert "no budget for user" in quickly(4, "show", NOT_UTF8)
    assert "no price for model" in quickly(4, "check", "alice", "-m", NOT_UTF8, "--prompt", "x")
    assert "unknown time zone" in quickly(2, "set", "alice", "--tz", NOT_UTF8)
    assert digest(alice.parent) == before


def test_lone_surrogates_in_json_are_usage_errors(alice: Path, tmp_path: Path) -> None:
    before = digest(alice.parent)
    litellm = tmp_path / "user_cost.json"
    litellm.write_text('{"\\ud800": {"total_budget": 1}}')
    assert "is not valid UTF-8 text" in quickly(2, "import-litellm", str(litellm))
    response = tmp_path / "response.json"
    body = json.loads(
        (Path(__file__).parent / "fixtures/responses/openai_chat_cached.json").read_text()
    )
    response.write_text(json.dumps(body).replace(json.dumps(body["id"]), '"\\udfff"'))
    assert "request id" in quickly(2, "update-cost", "alice", "--response", str(response))
    assert digest(alice.parent) == before


@pytest.mark.process
def test_argv_bytes_that_are_not_utf8(data_dir: Path) -> None:
    def cli(*args: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [bytes(BUDGETCTL), *args], capture_output=True, timeout=60, check=False
        )

    assert cli(b"create", b"alice", b"-b", b"1", b"-d", b"monthly").returncode == 0
    before = digest(data_dir)
    for args in (
        (b"create", b"a\xff", b"-b", b"1", b"-d", b"monthly"),
        (b"update-cost", b"alice", b"--cost", b"1", b"-m", b"\xc3\x28"),
        (b"update-cost", b"alice", b"--cost", b"1", b"--request-id", b"id-\xed\xa0\x80"),
    ):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(b"error: ") and b"not valid UTF-8" in result.stderr
        assert b"unexpected" not in result.stderr and result.stderr.count(b"\n") == 1
    assert digest(data_dir) == before


# --- years near 9999, durations of 1e400 ---------------------------------------------------------

TIMES = [
    ("create", "bob", "-b", "1", "-d", "monthly", "--start", "9999-12-31"),
    ("create", "bob", "-b", "1", "-d", "yearly", "--start", "9999-06-01T00:00:00Z"),
    ("create", "bob", "-b", "1", "-d", "daily", "--start", "0001-01-02"),
    ("create", "bob", "-b", "1", "-d", "monthly", "--start", "9000-12-31T23:59:59-05:00"),
    ("reset-due", "--now", "9999-12-31", "--dry-run"),
    ("reset-due", "--now", "9999-12-31T23:59:59Z", "--dry-run"),
    ("reset-due", "--now", "@253402300799", "--dry-run"),
    ("create", "bob", "-b", "1", "-d", "1e400d"),
    ("create", "bob", "-b", "1", "-d", "99999999999999999999y"),
]


@pytest.mark.parametrize("args", TIMES, ids=" ".join)
def test_times_and_durations_out_of_range_are_usage_errors(
    alice: Path, args: tuple[str, ...]
) -> None:
    before = digest(alice.parent)
    error = quickly(2, *args)
    assert "out of range" in error or "unknown duration" in error or "cannot read time" in error
    assert digest(alice.parent) == before


def test_an_import_with_year_9999_or_1e400_days_is_a_usage_error(
    alice: Path, tmp_path: Path
) -> None:
    before = digest(alice.parent)
    for record, message in (
        ('{"total_budget": 1, "duration": 1e400}', "longer than budgetctl's longest period"),
        ('{"total_budget": 1, "duration": 30, "last_updated_at": 253402300000}', "out of range"),
        ('{"total_budget": 1, "created_at": 253402300000}', "out of range"),
    ):
        litellm = tmp_path / "user_cost.json"
        litellm.write_text(f'{{"bob": {record}}}')
        assert message in quickly(2, "import-litellm", str(litellm), "-p", "imported")
    assert digest(alice.parent) == before


# --- numbers and times in the state file ------------------------------------------------------

STATE_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "amount 1e-99999999": lambda record: record.update(current_cost="1e-99999999"),
    "amount 1e+999999999": lambda record: record.update(total_budget="1e+999999999"),
    "model cost 1e-99999999": lambda record: record.update(model_cost={"gpt-4o": "1e-99999999"}),
    "alert at 1e+999999999": lambda record: record.update(alert_at="1e+999999999"),
    "next reset in 9999": lambda record: record.update(next_reset_at="9999-12-31T00:00:00Z"),
    "period start in 9999": lambda record: record.update(period_start="9999-12-31T23:59:59Z"),
    "duration 1e400d": lambda record: record.update(duration="1e400d"),
    "a next reset without a duration": lambda record: record.pop("duration"),
}


@pytest.mark.parametrize("edit", sorted(STATE_EDITS))
@pytest.mark.parametrize(
    "args",
    [
        ("show",),
        ("show", "alice"),
        ("update-cost", "alice", "--cost", "1"),
        ("check", "alice", "-m", "gpt-4o", "--prompt", "hi"),
        ("history", "alice"),
    ],
    ids=" ".join,
)
def test_a_bad_number_or_time_in_the_state_is_corrupt_state(
    alice: Path, edit: str, args: tuple[str, ...]
) -> None:
    doc = json.loads(alice.read_text())
    STATE_EDITS[edit](doc["users"]["alice"])
    alice.write_text(json.dumps(doc))
    before = digest(alice.parent)
    error = quickly(1, *args)
    assert str(alice) in error and "alice" in error
    assert digest(alice.parent) == before


# reset-due rolls a due record over without decoding it whole: the fields it reads.
ROLLED_OVER = sorted(
    set(STATE_EDITS)
    - {"next reset in 9999", "alert at 1e+999999999", "a next reset without a duration"}
)


@pytest.mark.parametrize("edit", [e for e in ROLLED_OVER if not e.startswith("model cost")])
def test_reset_due_on_a_bad_record_that_is_due_is_corrupt_state(alice: Path, edit: str) -> None:
    doc = json.loads(alice.read_text())
    record = doc["users"]["alice"]
    record.update(period_start="2026-01-01T00:00:00Z", next_reset_at="2026-02-01T00:00:00Z")
    STATE_EDITS[edit](record)
    alice.write_text(json.dumps(doc))
    before = digest(alice.parent)
    error = quickly(1, "reset-due")
    assert str(alice) in error and "alice" in error
    assert digest(alice.parent) == before


# --- BUDGETCTL_LOCK_TIMEOUT ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize("args", [("update-cost", "alice", "--cost", "1"), ("show",)], ids=" ".join)
def test_a_lock_timeout_that_is_not_seconds_is_a_usage_error(
    alice: Path, value: str, args: tuple[str, ...]
) -> None:
    before = digest(alice.parent)
    result = run(*args, env={"BUDGETCTL_LOCK_TIMEOUT": value})
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: BUDGETCTL_LOCK_TIMEOUT=")
    assert result.stderr.count("\n") == 1
    assert digest(alice.parent) == before
    assert os.environ.get("BUDGETCTL_LOCK_TIMEOUT") is None
