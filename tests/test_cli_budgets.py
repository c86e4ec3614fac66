"""CLI: create, set, show, delete, cap (through typer's CliRunner)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import NOW, data, digest, fails, ok, run

from budgetctl.cli import output
from budgetctl.core import events, rules
from budgetctl.ledger import Ledger

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

SHOW_USER_KEYS = {
    "user", "total_budget", "current_cost", "remaining", "over_budget", "duration", "timezone",
    "period_start", "next_reset_at", "model_cost", "alert_at",
}  # fmt: skip


# --- create ------------------------------------------------------------------------------------


def test_create_prints_the_budget_and_its_next_reset(data_dir: Path) -> None:
    result = ok("create", "alice", "--budget", "10", "--duration", "monthly")
    assert result.stdout == (
        f"created project default in {data_dir}\n"  # the first write makes the project
        "created alice's budget: $10.00 monthly (UTC); spent $0.00, "
        "resets in 3 weeks (Wed 1 Apr 2026 00:00 UTC)\n"
    )
    assert (data_dir / "default.json").exists()
    second = ok("create", "bob", "--budget", "1", "--duration", "daily").stdout
    assert second.startswith("created bob's budget")  # the project exists now


def test_create_json_has_the_documented_keys_and_exact_numbers(data_dir: Path) -> None:
    record = data("create", "bob", "-b", "0.1", "-d", "weekly", "--alert-at", "80%")
    assert record.keys() >= SHOW_USER_KEYS
    assert record["total_budget"] == Decimal("0.1")
    assert record["alert_at"] == Decimal(80)
    assert record["period_start"] == "2026-03-09T00:00:00Z"  # Monday
    assert record["next_reset_at"] == "2026-03-16T00:00:00Z"
    assert record["dry_run"] is False


def test_create_start_anchors_the_periods(data_dir: Path) -> None:
    record = data("create", "carol", "-b", "5", "-d", "monthly", "--start", "2026-01-15")
    assert (record["period_start"], record["next_reset_at"]) == (
        "2026-02-15T00:00:00Z",
        "2026-03-15T00:00:00Z",
    )


def test_create_in_a_time_zone_resets_at_local_midnight(data_dir: Path) -> None:
    record = data("create", "dave", "-b", "5", "-d", "daily", "--tz", "Europe/Paris")
    assert record["timezone"] == "Europe/Paris"
    assert record["next_reset_at"] == "2026-03-10T23:00:00Z"


def test_create_twice_is_exit_1_with_a_hint(alice: Path) -> None:
    before = digest(alice.parent)
    error = fails(1, "create", "alice", "--budget", "20", "--duration", "none")
    assert "already has a budget" in error and "'set'" in error and "--replace" in error
    assert digest(alice.parent) == before


def test_create_replace_starts_over(alice: Path) -> None:
    record = data("create", "alice", "--budget", "20", "--duration", "none", "--replace")
    assert (record["total_budget"], record["current_cost"]) == (Decimal(20), Decimal(0))


def test_create_dry_run_and_quiet(data_dir: Path) -> None:
    result = ok("create", "erin", "--budget", "3", "--duration", "none", "--dry-run")
    assert result.stdout.splitlines()[:2] == [
        f"would create project default in {data_dir}",
        "would create erin's budget: $3.00 lifetime (UTC); spent $0.00",
    ]
    assert digest(data_dir) == {}
    assert ok("create", "erin", "--budget", "3", "--duration", "none", "-q").stdout == ""
    assert data("show", "erin")["total_budget"] == Decimal(3)


def test_create_needs_a_duration(data_dir: Path) -> None:
    # Without one the budget silently never reset (issue 8, item 8).
    error = fails(2, "create", "bob", "--budget", "5")
    assert "--duration" in error and "'none'" in error and "lifetime" in error
    assert digest(data_dir) == {}
    record = data("create", "bob", "--budget", "5", "--duration", "none")
    assert (record["duration"], record["next_reset_at"]) == (None, None)


# --- set ---------------------------------------------------------------------------------------


def test_set_changes_the_budget_and_keeps_the_spend(alice: Path) -> None:
    record = data("set", "alice", "--budget", "4", "--duration", "weekly")
    assert record["total_budget"] == Decimal(4)
    assert record["current_cost"] == Decimal("2.5")
    assert record["duration"] == "weekly"
    assert record["next_reset_at"] == "2026-03-16T00:00:00Z"


def test_set_lifetime_and_clear_the_alert(alice: Path) -> None:
    record = data("set", "alice", "--duration", "none", "--alert-at", "none")
    assert (record["duration"], record["next_reset_at"], record["alert_at"]) == (None, None, None)
    assert ok("show", "alice").stdout.count("never (lifetime budget)") == 1


def test_set_needs_something_to_change(alice: Path) -> None:
    before = digest(alice.parent)
    assert "nothing to change" in fails(2, "set", "alice")
    assert digest(alice.parent) == before


def test_set_dry_run_changes_nothing(alice: Path) -> None:
    before = digest(alice.parent)
    assert ok("set", "alice", "-b", "99", "--dry-run").stdout.startswith("would update")
    assert digest(alice.parent) == before


# --- show --------------------------------------------------------------------------------------


def test_show_plain_table(alice: Path) -> None:
    ok("create", "bob", "--budget", "1", "--duration", "none")
    ok("update-cost", "bob", "--cost", "1.5")
    lines = ok("show").stdout.splitlines()
    assert lines[0].split() == [
        "USER", "BUDGET", "SPENT", "REMAINING", "USED", "DURATION", "NEXT", "RESET",
    ]  # fmt: skip
    assert lines[1].split() == [
        "alice", "$10.00", "$2.50", "$7.50", "25%", "monthly", "2026-04-01T00:00:00Z",
    ]  # fmt: skip
    assert lines[2].split() == ["bob", "$1.00", "$1.50", "$0.00", "150%", "lifetime", "never"]
    assert "\x1b[" not in ok("show").stdout


def test_show_json_lists_every_user_and_the_cap(alice: Path) -> None:
    ok("cap", "--budget", "100", "--duration", "monthly")
    document = data("show")
    assert document.keys() >= {"project", "cap", "users"}
    assert document["project"] == "default"
    assert document["cap"]["total_budget"] == Decimal(100)
    assert document["cap"]["current_cost"] == Decimal("2.5")  # alice spent it this month
    [user] = document["users"]
    assert user.keys() >= SHOW_USER_KEYS
    assert user["model_cost"] == {"gpt-4o": Decimal("2.5")}


def test_show_user_plain(alice: Path) -> None:
    text = ok("show", "alice").stdout
    assert "alice (project default)" in text
    assert "$10.00 monthly (UTC), alert at 80%" in text
    assert "in 3 weeks (Wed 1 Apr 2026 00:00 UTC)" in text
    assert "gpt-4o" in text and "100%" in text  # all the spend is gpt-4o


def test_show_user_json(alice: Path) -> None:
    record = data("show", "alice")
    assert record.keys() >= SHOW_USER_KEYS
    assert (record["current_cost"], record["remaining"], record["over_budget"]) == (
        Decimal("2.5"),
        Decimal("7.5"),
        False,
    )


def test_show_unknown_user_and_project_are_exit_4(alice: Path) -> None:
    message = fails(4, "show", "zed")
    assert "no budget for user 'zed'" in message
    assert "'budgetctl create zed --budget AMOUNT --duration D'" in message  # create needs both
    assert "no project 'nope'" in fails(4, "show", "-p", "nope")


def test_show_empty_project(alice: Path) -> None:
    ok("delete", "alice", "--yes")
    hint = "no budgets in project 'default' yet; add one with "
    assert hint + "'budgetctl create USER --budget AMOUNT --duration D'" in ok("show").stdout
    assert data("show")["users"] == []


def test_show_on_a_terminal_draws_bars_coloured_by_state(alice: Path, terminal: None) -> None:
    ok("create", "bob", "-b", "1", "--duration", "none")
    ok("update-cost", "bob", "--cost", "2")  # over budget: red
    ok("create", "carol", "-b", "1", "--duration", "none", "--alert-at", "50")
    ok("update-cost", "carol", "--cost", "0.6")  # past the alert threshold: yellow
    lines = {line.split()[0]: line for line in ok("show").stdout.splitlines()[2:] if line.strip()}
    assert "█" in lines["alice"] and "Wed 1 Apr 2026 00:00 UTC" in lines["alice"]
    assert "\x1b[32m" in lines["alice"]  # green
    assert "\x1b[1;31m" in lines["bob"]  # bold red
    assert "\x1b[33m" in lines["carol"]  # yellow


def test_no_color_on_a_terminal_keeps_the_bars_without_colour(
    alice: Path, terminal: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    text = ok("show").stdout
    assert "█" in text and "\x1b[3" not in text


def test_show_user_on_a_terminal_charts_recent_periods(alice: Path, terminal: None) -> None:
    ok("reset", "alice")  # closes a period with $2.50 spent
    ok("update-cost", "alice", "--cost", "12")  # the current one is over budget
    text = ok("show", "alice").stdout
    assert "recent periods" in text
    assert "$2.50 of $10.00 (25%)" in text
    assert "$12.00 of $10.00 (120%)" in text
    assert "│" in text  # the budget line


# --- delete ------------------------------------------------------------------------------------


def test_delete_with_yes(alice: Path) -> None:
    assert data("delete", "alice", "--yes") == {"deleted": ["alice"], "dry_run": False}
    fails(4, "show", "alice")


def test_delete_refuses_without_yes_when_stdin_is_not_a_terminal(alice: Path) -> None:
    before = digest(alice.parent)
    assert "needs --yes" in fails(2, "delete", "alice")
    assert digest(alice.parent) == before


def test_delete_asks_on_a_terminal(alice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "stdin_is_terminal", lambda: True)
    before = digest(alice.parent)
    refused = run("delete", "alice", input="n\n")
    assert refused.exit_code == 1 and "aborted; nothing changed" in refused.stderr
    assert digest(alice.parent) == before
    accepted = run("delete", "alice", input="y\n")
    assert accepted.exit_code == 0 and "deleted 1 budget: alice" in accepted.stdout


def test_delete_unknown_user_fails_before_asking(alice: Path) -> None:
    before = digest(alice.parent)
    fails(4, "delete", "alice", "zed", "--yes")
    assert digest(alice.parent) == before


def test_delete_dry_run(alice: Path) -> None:
    before = digest(alice.parent)
    assert ok("delete", "alice", "--dry-run").stdout == "would delete 1 budget: alice\n"
    assert digest(alice.parent) == before


# --- cap ---------------------------------------------------------------------------------------


def test_cap_show_set_and_clear(alice: Path) -> None:
    assert "has no cap" in ok("cap").stdout
    assert data("cap")["cap"] is None
    set_ = ok("cap", "--budget", "50", "--duration", "monthly").stdout
    assert set_.startswith("set project cap: $50.00 monthly; spent $2.50")  # alice's, this month
    ok("update-cost", "alice", "--cost", "1")
    cap = data("cap")["cap"]
    assert (cap["total_budget"], cap["current_cost"], cap["remaining"]) == (
        Decimal(50),
        Decimal("3.5"),
        Decimal("46.5"),
    )
    assert ok("cap", "--clear").stdout == "cleared the cap of project 'default'\n"
    assert "nothing to clear" in ok("cap", "--clear").stdout


def test_a_cap_set_mid_period_counts_what_was_spent_in_it(
    alice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It started at $0 although the users had spent in its period (issue 8, item 6).
    ok("create", "bob", "-b", "5", "-d", "weekly")
    ok("update-cost", "bob", "--cost", "1")  # Tue 10 Mar, like alice's $2.50
    ok("delete", "bob", "--yes")  # deleted, but the money was spent in the project
    monkeypatch.setattr(Ledger, "now", lambda self: NOW + timedelta(days=1))
    ok("update-cost", "alice", "--cost", "0.25")  # Wed 11 Mar
    daily = data("cap", "--budget", "10", "--duration", "daily")["cap"]
    assert (daily["period_start"], daily["current_cost"]) == (
        "2026-03-11T00:00:00Z",
        Decimal("0.25"),
    )
    monthly = data("cap", "--duration", "monthly")["cap"]  # a new grid: its period is counted
    assert monthly["current_cost"] == Decimal("3.75")
    assert data("cap", "--budget", "20")["cap"]["current_cost"] == Decimal("3.75")
    assert data("cap", "--dry-run", "--duration", "weekly")["cap"]["current_cost"] == Decimal(
        "3.75"
    )
    # the history's replay agrees with the stored cap
    state = json.loads((alice.parent / "default.json").read_bytes())
    lines = (alice.parent / "default+history.jsonl").read_bytes().splitlines()
    replayed = rules.replay(events.from_json(json.loads(line)) for line in lines)
    assert replayed[rules.CAP] == Decimal(state["cap"]["current_cost"]) == Decimal("3.75")


def test_cap_dry_run_and_bad_combinations(alice: Path) -> None:
    before = digest(alice.parent)
    assert ok("cap", "-b", "5", "--dry-run").stdout.startswith("would set project cap")
    assert "cannot be combined" in fails(2, "cap", "--clear", "-b", "5")
    assert digest(alice.parent) == before


def test_amounts_read_back_as_show_prints_them(data_dir: Path) -> None:
    ok("create", "big", "--budget", "1,000", "-d", "monthly")
    assert data("show", "big")["total_budget"] == 1000
    printed = ok("show").stdout.splitlines()[1].split()[1]
    assert printed == "$1,000.00"
    ok("set", "big", "--budget", printed.replace("1,000", "2,500"))
    ok("update-cost", "big", "--cost", "1,234.5")
    assert (data("show", "big")["total_budget"], data("show", "big")["current_cost"]) == (
        2500,
        Decimal("1234.5"),
    )
    assert "commas may only group thousands" in fails(2, "set", "big", "--budget", "2,5")


def test_used_is_never_rounded_up_to_100_or_down_to_0(data_dir: Path) -> None:
    ok("create", "near", "-b", "1000", "--duration", "monthly")
    ok("update-cost", "near", "--cost", "999.125")
    ok("create", "nearer", "-b", "1000", "--duration", "monthly")
    ok("update-cost", "nearer", "--cost", "999.9995")
    ok("create", "past", "-b", "1000", "--duration", "monthly")
    ok("update-cost", "past", "--cost", "1000.0005")
    ok("create", "full", "-b", "1000", "--duration", "monthly")
    ok("update-cost", "full", "--cost", "1000")
    ok("create", "tiny", "-b", "1000", "--duration", "monthly")
    ok("update-cost", "tiny", "--cost", "1.001")
    used = {line.split()[0]: line.split()[4] for line in ok("show").stdout.splitlines()[1:]}
    assert used == {
        "near": "99.9%",
        "nearer": ">99.9%",
        "past": ">100%",
        "full": "100%",
        "tiny": "0.1%",
    }
