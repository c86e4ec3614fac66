"""CLI: reset (by hand) and reset-due (cron), in one project and across all of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import NOW, data, digest, fails, ok, run

from budgetctl.cli import output
from budgetctl.core.periods import parse_utc
from budgetctl.ledger import Ledger

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

MoveClock = Callable[[str], None]
LATER = "2026-03-12T00:05:00Z"  # two daily boundaries after NOW (2026-03-10T12:00Z)


@pytest.fixture
def daily(alice: Path) -> Path:
    """alice (monthly, $2.50 spent) and bob (daily, $1 spent today) in project default."""
    ok("create", "bob", "--budget", "2", "--duration", "daily")
    ok("update-cost", "bob", "--cost", "1", "--model", "gpt-4o")
    return alice


@pytest.fixture
def move_clock(monkeypatch: pytest.MonkeyPatch) -> MoveClock:
    """Every Ledger's clock jumps to the given time (as cron would see it later)."""

    def move(moment: str) -> None:
        monkeypatch.setattr(Ledger, "now", lambda self: parse_utc(moment))

    return move


# --- reset -------------------------------------------------------------------------------------


def test_reset_users_archives_their_spend(daily: Path) -> None:
    document = data("reset", "bob")
    assert document["reset"] == [
        {
            "user": "bob",
            "period_start": "2026-03-10T00:00:00Z",
            "period_end": "2026-03-10T12:00:00Z",
            "spent": Decimal(1),
            "budget": Decimal(2),
        }
    ]
    assert data("show", "bob")["current_cost"] == 0
    assert data("show", "alice")["current_cost"] == Decimal("2.5")


def test_reset_all_plain(daily: Path) -> None:
    assert ok("reset", "--all", "--yes").stdout.splitlines() == [
        "reset alice: $2.50 spent of $10.00 from 2026-03-01T00:00:00Z to 2026-03-10T12:00:00Z",
        "reset bob: $1.00 spent of $2.00 from 2026-03-10T00:00:00Z to 2026-03-10T12:00:00Z",
    ]


def test_reset_needs_users_or_all(daily: Path) -> None:
    before = digest(daily.parent)
    fails(2, "reset")
    fails(2, "reset", "bob", "--all")
    fails(4, "reset", "bob", "zed")
    assert ok("reset", "--all", "--dry-run").stdout.startswith("would reset alice")
    assert ok("reset", "bob", "-q").stdout == "" and digest(daily.parent) != before


# --- reset-due ---------------------------------------------------------------------------------


def test_reset_due_resets_ended_periods_at_their_boundary(
    daily: Path, move_clock: MoveClock
) -> None:
    move_clock(LATER)
    document = data("reset-due", "--now", LATER)
    assert document["checked"] == 2
    assert document["reset"] == [
        {
            "user": "bob",
            "period_start": "2026-03-10T00:00:00Z",
            "period_end": "2026-03-11T00:00:00Z",
            "spent": Decimal(1),
            "budget": Decimal(2),
        }
    ]
    again = data("reset-due", "--now", LATER)  # idempotent
    assert (again["checked"], again["reset"]) == (2, [])


def test_reset_due_plain_and_quiet(daily: Path, move_clock: MoveClock) -> None:
    assert ok("reset-due").stdout == "checked 2 budgets in project default: reset 0\n"
    before = digest(daily.parent)
    assert ok("reset-due", "--now", LATER, "--dry-run").stdout.splitlines() == [
        "would reset bob: $1.00 spent of $2.00 from 2026-03-10T00:00:00Z to 2026-03-11T00:00:00Z",
        "checked 2 budgets in project default: would reset 1 (dry run, nothing changed)",
    ]
    assert digest(daily.parent) == before
    move_clock(LATER)
    assert ok("reset-due", "--now", LATER, "-q").stdout == ""
    assert digest(daily.parent) != before


def test_reset_due_all_projects(daily: Path, move_clock: MoveClock) -> None:
    for project in ("p1", "p2"):
        ok("create", "carol", "-b", "1", "-d", "daily", "-p", project)
        ok("update-cost", "carol", "--cost", "0.25", "-p", project)
    move_clock(LATER)
    document = data("reset-due", "--all-projects", "--now", LATER)
    assert document["projects"] == ["default", "p1", "p2"]
    assert document["checked"] == 4
    assert [(r["project"], r["user"]) for r in document["reset"]] == [
        ("default", "bob"),
        ("p1", "carol"),
        ("p2", "carol"),
    ]
    assert ok("reset-due", "--all-projects").stdout.endswith(
        "checked 4 budgets in 3 projects: reset 0\n"
    )


def test_reset_due_all_projects_goes_on_past_a_broken_project(
    daily: Path, move_clock: MoveClock
) -> None:
    ok("create", "carol", "-b", "1", "-d", "daily", "-p", "p1")
    ok("update-cost", "carol", "--cost", "0.25", "-p", "p1")
    broken = daily.parent / "b0rken.json"
    broken.write_text("{not json")
    move_clock(LATER)
    result = run("reset-due", "--all-projects", "--now", LATER)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: project b0rken: ")
    assert broken.read_text() == "{not json"
    assert "reset carol (project p1)" in result.stdout
    assert data("show", "carol", "-p", "p1")["current_cost"] == 0


def test_reset_due_has_no_progress_bar_in_a_pipe(daily: Path, move_clock: MoveClock) -> None:
    for number in range(12):
        ok("create", "u", "-b", "1", "-d", "daily", "-p", f"proj{number:02}")
    move_clock(LATER)
    result = run("reset-due", "--all-projects", "--now", LATER)
    assert result.exit_code == 0 and result.stderr == ""


def test_reset_due_errors(daily: Path) -> None:
    before = digest(daily.parent)
    assert "no project 'nope'" in fails(4, "reset-due", "-p", "nope")
    assert "cannot read time" in fails(2, "reset-due", "--now", "tomorrow")
    assert digest(daily.parent) == before


def test_reset_all_of_one_user_asks_in_the_singular(
    alice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "stdin_is_terminal", lambda: True)
    refused = run("reset", "--all", input="n\n")
    assert refused.exit_code == 1
    assert "Reset the spend of the 1 user of project default?" in refused.stdout


def test_reset_all_asks_on_a_terminal_as_delete_does(
    daily: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = digest(daily.parent)
    assert "reset --all needs --yes when stdin is not a terminal" in fails(2, "reset", "--all")
    assert digest(daily.parent) == before
    monkeypatch.setattr(output, "stdin_is_terminal", lambda: True)
    refused = run("reset", "--all", input="n\n")
    assert refused.exit_code == 1 and "aborted; nothing changed" in refused.stderr
    assert "Reset the spend of all 2 users of project default?" in refused.stdout
    assert digest(daily.parent) == before
    accepted = run("reset", "--all", input="y\n")
    assert accepted.exit_code == 0 and "reset alice: $2.50 spent" in accepted.stdout
    assert data("show", "alice")["current_cost"] == 0


@pytest.mark.parametrize("where", [(), ("--all-projects",)])
def test_reset_due_refuses_a_now_later_than_the_clock(
    data_dir: Path, where: tuple[str, ...]
) -> None:
    # A 1-hour budget reset with a --now a month ahead got a month-long "hour" (issue 8, item 1).
    ok("create", "hourly", "-b", "1", "-d", "1h")
    ok("update-cost", "hourly", "--cost", "0.5")
    before = digest(data_dir)
    ahead = "2026-04-10T12:00:00Z"
    error = fails(2, "reset-due", "--now", ahead, *where)
    assert "--now 2026-04-10T12:00:00Z is later than the clock (2026-03-10T12:00:00Z)" in error
    assert "--dry-run" in error
    assert digest(data_dir) == before
    preview = data("reset-due", "--now", ahead, "--dry-run", *where)
    assert [entry["user"] for entry in preview["reset"]] == ["hourly"]
    assert digest(data_dir) == before
    # the clock itself, or a time before it (a backfill), is allowed
    assert data("reset-due", "--now", NOW.isoformat(), *where)["reset"] == []
    shown = data("show", "hourly")
    assert (shown["period_start"], shown["next_reset_at"]) == (
        "2026-03-10T12:00:00Z",
        "2026-03-10T13:00:00Z",
    )


def test_reset_due_all_projects_names_a_data_dir_without_projects(data_dir: Path) -> None:
    # Cron pointed at a data dir that does not exist was silent and green (issue 8, item 17).
    missing = run("reset-due", "--all-projects", "-q")
    assert (missing.exit_code, missing.stdout) == (0, "")
    assert missing.stderr == f"warning: no projects in {data_dir} (the directory does not exist)\n"
    data_dir.mkdir()
    empty = run("reset-due", "--all-projects", "--json")
    assert empty.exit_code == 0 and empty.stderr == f"warning: no projects in {data_dir}\n"
    assert json.loads(empty.stdout)["projects"] == []
    ok("create", "u", "-b", "1", "-d", "daily")
    assert run("reset-due", "--all-projects", "-q").stderr == ""
