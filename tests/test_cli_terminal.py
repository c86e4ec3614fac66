"""The terminal a person meets, in a real pseudo-terminal at 80 and 200 columns (tests/helpers/
terminal.py): nothing a person needs is cut, figures add up, times are in the budget's zone, long
output is paged; and the same commands in a pipe keep their plain, stable form."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.terminal import BUDGETCTL, Screen, in_terminal

from budgetctl.cli.humanize import local
from budgetctl.core import rules
from budgetctl.core.periods import parse_duration, parse_utc
from budgetctl.ledger import Ledger
from budgetctl.store.json_store import JsonStore

pytestmark = pytest.mark.process

WIDTHS = [80, 200]
USERS = ["alice", "bob@example.com", "carol.long-name@example.org"]


def piped(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``budgetctl ARGS`` with stdout and stderr to pipes (a script or cron)."""
    return subprocess.run(
        [str(BUDGETCTL), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TZ": "UTC", "PAGER": "sed s/^/PAGED:/"},
    )


def row(screen: Screen, first: str) -> str:
    """The table row that starts with ``first``, its wrapped continuation lines joined, spaces
    collapsed: what a person reads across the row."""
    lines = screen.lines  # (a row stacked under its user or model: on a line of its own)
    start = next(i for i, line in enumerate(lines) if line == first or line.startswith(first + " "))
    parts = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        parts.append(line)
    return " ".join(" ".join(parts).split())


@pytest.fixture
def people(data_dir: Path) -> Ledger:
    """Three budgets whose names, amounts and reset times are long enough to be cut at 80
    columns: a Paris monthly one, a daily one with a spend of seven decimal places."""
    ledger = Ledger("default")
    ledger.create("alice", "25", duration="monthly", timezone="Europe/Paris")
    ledger.charge_tokens("alice", "claude-3-5-sonnet-20241022", 1000, 200)
    ledger.create("bob@example.com", "25", duration="daily")
    ledger.charge_cost("bob@example.com", "0.6054475", model="gpt-4o-2024-08-06")
    ledger.create("carol.long-name@example.org", "1000", duration="weekly", alert_at="80")
    ledger.charge_cost("carol.long-name@example.org", "999.125")
    return ledger


@pytest.mark.parametrize("columns", WIDTHS)
def test_show_cuts_no_user_money_or_time(people: Ledger, columns: int) -> None:
    screen = in_terminal("show", columns=columns)
    assert screen.code == 0, screen.text
    assert max(map(len, screen.lines)) <= columns
    assert "…" not in screen.text
    assert screen.lines[0].split()[:2] == ["user", "budget"]  # the header first
    bob = row(screen, "bob@example.com")
    assert "$25.00 $0.605448 $24.394552" in bob  # rounded, and they add up
    assert "$1,000.00 $999.125 $0.875" in row(screen, "carol.long-name@example.org")
    document = json.loads(piped("show", "--json").stdout)
    for user in document["users"]:  # each reset time in its budget's zone, with the zone's name
        shown = local(parse_utc(user["next_reset_at"]), user["timezone"])
        assert shown in row(screen, user["user"])
    assert "CET" in row(screen, "alice") or "CEST" in row(screen, "alice")
    drawn = "█" in screen.text or "░" in screen.text
    assert drawn == (columns == 200)  # the bar goes first when the table does not fit
    assert ("2.4%" in bob) == (columns == 200)  # at 80, so is the % (spent of budget says it)


def test_show_drops_the_columns_others_imply_before_wrapping(data_dir: Path) -> None:
    # one 20-character user with nothing spent: 88 wide with the duration, at most 79 without
    Ledger("default").create("user1000@example.com", "25", duration="30d")
    screen = in_terminal("show", columns=80)
    assert screen.code == 0 and max(map(len, screen.lines)) <= 80
    assert screen.lines[0].split() == [
        "user",
        "budget",
        "spent",
        "remaining",
        "used",
        "next",
        "reset",
    ]
    assert screen.lines[2].startswith("user1000@example.com ") and len(screen.lines) == 3
    assert "30d" not in screen.text  # on one line, not the duration kept and the reset wrapped
    shown = " ".join(screen.lines[2].split())
    assert re.search(r" \$25\.00 \$0\.00 \$25\.00 0% \w{3} \d+ \w{3} \d{4} \d\d:\d\d UTC$", shown)


def test_show_of_a_long_user_fits_without_splitting_an_amount(data_dir: Path) -> None:
    long = "averyveryveryverylongname.with.many.parts@example-company.com"[:58]
    ledger = Ledger("default")
    ledger.create(long, "25", duration="daily")
    ledger.charge_cost(long, "0.6054475")
    ledger.create("bob@example.com", "1000", duration="monthly")
    ledger.charge_cost("bob@example.com", "999.125")
    screen = in_terminal("show", columns=80)
    assert screen.code == 0 and max(map(len, screen.lines)) <= 80  # the terminal splits nothing
    assert long in screen.lines  # whole, each row stacked under its user
    shown = row(screen, long)
    assert "$25.00 $0.605448 $24.394552 2.4% daily" in shown  # the used column is kept
    reset = ledger.get(long).next_reset_at
    assert reset is not None and local(reset, "UTC") in shown
    assert "$1,000.00 $999.125 $0.875 99.9% monthly" in row(screen, "bob@example.com")
    for amount in ("$0.605448", "$24.394552", "$999.125"):
        assert any(amount in line for line in screen.lines)


def test_a_table_stacks_only_when_its_names_fit_the_window() -> None:
    from budgetctl.cli.report import Column, Table
    from budgetctl.cli.terminal import render

    columns = (Column("model"), Column("input $/1M", numeric=True), Column("source", optional=True))
    table = Table(columns, [("m" * 30, "$3.00", "bundled"), ("short", "$15.00", "project")])
    fits = render([table], width=44, colour=False).splitlines()  # the source goes, no stack
    assert fits[2:] == ["m" * 30 + "       $3.00", "short" + " " * 25 + "      $15.00"]
    assert render([table], width=32, colour=False).splitlines() == [
        "model",
        "  input $/1M  source",
        "─" * 30,
        "m" * 30,
        "       $3.00  bundled",
        "short",
        "      $15.00  project",
    ]
    wide = render([table], width=20, colour=False).splitlines()  # the names alone are too wide
    assert wide[3:] == ["m" * 30 + "   $3.00", "short" + " " * 25 + "  $15.00"]


def test_show_colours_the_used_column_by_state(people: Ledger) -> None:
    screen = in_terminal("show", columns=200)
    raw = {line.split()[0]: line for line in screen.raw.splitlines() if "@" in line}
    assert "\x1b[33m" in raw["carol.long-name@example.org"]  # past 80%: yellow
    assert "\x1b[33m" not in raw["bob@example.com"] and "\x1b[1;31m" not in raw["bob@example.com"]
    plain = in_terminal("show", columns=200, env={"NO_COLOR": "1"})
    assert "\x1b[3" not in plain.raw and "█" in plain.text


def test_a_piped_show_keeps_iso_utc_and_its_header_first(people: Ledger) -> None:
    ledger = people
    ledger.set_cap("5000", duration="monthly")  # a cap line must not push the header down
    result = piped("show")
    assert result.returncode == 0 and "PAGED:" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "USER",
        "BUDGET",
        "SPENT",
        "REMAINING",
        "USED",
        "DURATION",
        "NEXT",
        "RESET",
    ]
    assert re.search(r"alice .* \d{4}-\d\d-\d\dT\d\d:00:00Z$", lines[1])
    assert lines[-1].startswith("project cap:")


@pytest.mark.parametrize("columns", WIDTHS)
def test_show_user_in_the_budgets_zone(people: Ledger, columns: int) -> None:
    screen = in_terminal("show", "alice", columns=columns)
    assert screen.code == 0 and max(map(len, screen.lines)) <= columns
    budget = people.get("alice")
    assert budget.next_reset_at is not None
    reset = local(budget.next_reset_at, "Europe/Paris")
    assert re.search(r" (CET|CEST)\)?$", reset)
    assert f"({reset})" in screen.text
    assert "claude-3-5-sonnet-20241022" in screen.text
    total, spent = screen.text.split("budget", 1)[1], screen.text.split("remaining", 1)[1]
    assert "$25.00" in total and "$24.994" in spent


def test_a_paris_monthly_budget_resets_at_midnight_paris_time(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers.cli import ok, run

    monkeypatch.setattr(Ledger, "now", lambda self: datetime(2026, 12, 15, tzinfo=timezone.utc))
    monkeypatch.setenv("TZ", "UTC")
    ok("create", "paris", "-b", "10", "-d", "monthly", "--tz", "Europe/Paris")
    from budgetctl.cli import output

    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    text = run("show", "paris").stdout
    assert "in 2 weeks (Fri 1 Jan 2027 00:00 CET)" in text
    assert "Thu 31 Dec 2026 23:00 UTC" not in text
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: False)
    assert "2026-11-30T23:00:00Z to 2026-12-31T23:00:00Z" in run("show", "paris").stdout


@pytest.mark.parametrize("columns", WIDTHS)
def test_models_names_are_whole(data_dir: Path, columns: int) -> None:
    names = [m["model"] for m in json.loads(piped("models", "gpt-4o", "--json").stdout)["models"]]
    assert len(names) > 40 and max(map(len, names)) > 45
    screen = in_terminal("models", "gpt-4o", columns=columns, lines=500)
    assert screen.code == 0 and max(map(len, screen.lines)) <= columns
    rule = next(i for i, line in enumerate(screen.lines) if line.startswith("───"))
    shown = [line.split()[0] for line in screen.lines[rule + 1 : -1] if line.strip()]
    assert shown == names  # every name whole, so no two look alike
    assert ("provider" in screen.text) == (columns == 200)  # an optional column goes at 80


def test_models_whose_names_fit_fit_the_window(data_dir: Path) -> None:
    document = piped("models", "claude-3-5-sonnet-2024", "--json").stdout
    found = json.loads(document, parse_float=Decimal)["models"]
    names = [m["model"] for m in found]
    assert 60 <= max(map(len, names)) <= 70  # the names fit 80 columns, with the prices not
    screen = in_terminal("models", "claude-3-5-sonnet-2024", columns=80, lines=500)
    assert screen.code == 0 and max(map(len, screen.lines)) <= 80
    assert [line for line in screen.lines if line in names] == names  # whole, a line each
    rule = next(i for i, line in enumerate(screen.lines) if line.startswith("───"))
    assert "cache read $/1M" in " ".join(screen.lines[:rule])  # the header not split by the tty
    for model in found:
        shown = row(screen, model["model"])
        assert f"${Decimal(model['input_per_1m']):,.2f} ${model['output_per_1m']:,.2f}" in shown


@pytest.mark.parametrize("columns", WIDTHS)
def test_history_times_to_the_second_and_a_given_cost(people: Ledger, columns: int) -> None:
    screen = in_terminal("history", "bob@example.com", columns=columns)
    assert screen.code == 0 and max(map(len, screen.lines)) <= columns
    charge = next(line for line in screen.lines if " charge " in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  charge  \$0\.605448  ", charge)
    assert charge.endswith("gpt-4o-2024-08-06: cost given")
    paris = in_terminal("history", "alice", columns=columns)
    assert re.search(r"\d\d:\d\d:\d\d (CET|CEST)  charge", paris.text)
    assert "1,000 prompt + 200 completion tokens" in row(paris, paris.lines[2].split()[0])
    assert re.search(r"^\S+Z\s+charge\s", piped("history", "alice").stdout.splitlines()[1])


def _many(data_dir: Path, count: int) -> None:
    monthly = parse_duration("monthly")
    now = datetime.now(timezone.utc)
    budgets = [
        rules.new_budget(f"user-{i:05d}@example.com", Decimal(10), now, duration=monthly)
        for i in range(count)
    ]
    JsonStore("default", data_dir).create_many(budgets)


def test_long_output_goes_through_the_pager_on_a_terminal_only(data_dir: Path) -> None:
    _many(data_dir, 40)
    pager = {"PAGER": "sed s/^/PAGED:/"}
    long = in_terminal("show", columns=120, lines=20, env=pager)
    assert long.code == 0
    assert all(line.startswith("PAGED:") for line in long.lines) and len(long.lines) == 42
    assert "PAGED:" not in in_terminal("show", columns=120, lines=60, env=pager).text  # fits
    assert "PAGED:" not in in_terminal("show", "--json", columns=120, lines=20, env=pager).text
    assert "PAGED:" not in piped("show").stdout
    assert "PAGED:" not in in_terminal("show", columns=120, lines=20, env={"PAGER": ""}).text
    own = in_terminal("show", columns=120, lines=20, env={**pager, "BUDGETCTL_PAGER": "cat"})
    assert "PAGED:" not in own.text and len(own.lines) == 42


def test_show_into_head_under_pipefail_is_not_an_error(data_dir: Path, tmp_path: Path) -> None:
    _many(data_dir, 3000)  # far more than a pipe buffer: the writes meet the closed pipe
    script = textwrap.dedent(
        f"""
        set -euo pipefail
        '{BUDGETCTL}' show | head -1
        '{BUDGETCTL}' history | head -1
        """
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.split()[0] == "USER"


def test_reset_all_asks_first_on_a_real_terminal(people: Ledger) -> None:
    refused = in_terminal("reset", "--all", columns=80, answer="n\n")
    assert (
        refused.code == 1 and "Reset the spend of all 3 users of project default?" in refused.text
    )
    assert "aborted; nothing changed" in refused.text
    assert people.get("bob@example.com").current_cost == Decimal("0.6054475")
    accepted = in_terminal("reset", "--all", columns=80, answer="y\n")
    assert accepted.code == 0 and "reset bob@example.com: $0.605448 spent" in accepted.text
    assert people.get("bob@example.com").current_cost == 0
    piped_run = piped("reset", "--all")
    assert piped_run.returncode == 2 and "needs --yes" in piped_run.stderr
