"""The command line on PostgreSQL (docs/cli.md, "--database-url" and "budgetctl db"): the same
commands give the same answers as on the JSON store, ``db migrate``/``db status``, a database
without the schema, one that is down (fail closed), and no driver installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import CLI_FIXTURES, digest, fails, ok, run
from helpers.postgres import fresh_schema

from budgetctl.cli.root import hoist
from budgetctl.store.postgres.store import redact

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env")

DOWN = "postgresql://budgets:s3cret@127.0.0.1:1/budgets"  # nothing listens on port 1


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def on_pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every command of the test runs on a fresh, migrated schema (``BUDGETCTL_DATABASE_URL``)."""
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", pg_url)
    return pg_url


def test_database_url_before_the_command_moves_after_it() -> None:
    url = ["--database-url", "U"]
    assert hoist([*url, "show", "alice"]) == ["show", *url, "alice"]
    assert hoist([*url, "db", "migrate"]) == ["db", "migrate", *url]
    assert hoist(["-p", "t", "--database-url=U", "price", "set", "m"]) == [
        "price", "set", "-p", "t", "--database-url=U", "m"
    ]  # fmt: skip


def test_the_option_or_the_variable_puts_the_state_in_the_database(
    pg_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("--database-url", pg_url, "create", "alice", "-b", "10", "-d", "monthly")
    ok("update-cost", "alice", "--cost", "2.5", "--database-url", pg_url)
    assert digest(data_dir) == {}  # nothing in the data dir
    assert fails(4, "show", "alice")  # without the URL: the data dir, where alice is not
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", pg_url)
    assert json.loads(ok("show", "alice", "--json").stdout)["current_cost"] == 2.5
    assert digest(data_dir) == {}


# --- the same answers on both stores --------------------------------------------------------------

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_HOLD = re.compile(r"h_[0-9a-f]{8,}")


def _normal(value: Any) -> Any:
    """``value`` with what may differ between stores made equal: times, hold ids, and where the
    project lives (``data_dir`` or ``database``)."""
    if isinstance(value, dict):
        return {
            key: bool(item) if key == "created_project" else _normal(item)
            for key, item in value.items()
            if key not in ("data_dir", "database")
        }
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, str):
        return "<time>" if _TIME.match(value) else _HOLD.sub("<hold>", value)
    return value


def _session() -> list[tuple[str, int, Any, str]]:
    """One sequence of commands (every kind of write and read); each one's exit code, its
    ``--json`` document (or, when it failed, whether it said anything on stdout) and its
    stderr."""
    seen: list[tuple[str, int, Any, str]] = []
    url = os.environ.get("BUDGETCTL_DATABASE_URL")
    where = redact(url) if url else os.environ["BUDGETCTL_DATA_DIR"]

    def step(*args: str) -> Any:
        result = run(*args, "--json")
        if result.exit_code in (0, 3):
            found = json.loads(result.stdout, parse_float=Decimal)
        else:
            assert result.stderr.startswith("error: "), result.stderr
            found = result.stdout
        said = _normal(result.stderr.replace(where, "<store>"))
        seen.append((_normal(" ".join(args)), result.exit_code, _normal(found), said))
        return found

    step("create", "alice", "-b", "10", "-d", "monthly", "--alert-at", "80")
    step("create", "bob", "-b", "5", "-d", "none")
    step("create", "alice", "-b", "1", "-d", "none")  # exists: 1
    step("-p", "team", "create", "carol", "-b", "3", "-d", "weekly", "--tz", "Europe/Paris")
    step("update-cost", "alice", "--cost", "2.5", "-m", "gpt-4o")
    charge = ("-m", "gpt-4o", "--prompt-tokens", "1000", "--completion-tokens", "200")
    step("update-cost", "alice", *charge, "--request-id", "r1")
    step("update-cost", "alice", *charge, "--request-id", "r1")  # a duplicate
    step("update-cost", "bob", "--cost", "1", "--request-id", "r1")  # a conflict: 1
    step("-p", "team", "update-cost", "carol", "--cost", "4")  # over budget: a warning
    step("check", "alice", "--cost", "1")
    step("check", "bob", "--cost", "50")  # 3
    held = step("check", "alice", "--cost", "2", "--reserve")["hold_id"]
    step("holds")
    step("show", "alice")
    step("update-cost", "alice", "--cost", "1.5", "--hold", held)
    other = step("check", "bob", "--cost", "1", "--reserve", "--ttl", "10m")["hold_id"]
    step("holds", "bob")
    step("release", other)
    step("release", other)  # released already
    step("release", "h_0123456789abcdef01234567")  # unknown: 4
    step("cap", "--budget", "100", "--duration", "monthly")
    step("cap")
    step("price", "set", "acme/llama", "--input", "1", "--output", "2")
    step("update-cost", "bob", "-m", "acme/llama", "--prompt-tokens", "1000")
    step("models", "acme/llama")
    step("reset", "bob")
    step("reset-due")
    step("reset-due", "--all-projects")
    step("set", "alice", "--budget", "20", "--alert-at", "none")
    step("show")
    step("history")
    step("history", "alice", "--limit", "3")
    step("projects")
    step("delete", "bob", "--yes")
    step("show", "bob")  # 4
    step("-p", "nowhere", "show")  # 4
    step("-p", "team", "show")
    step("-p", "imported", "import-litellm", str(CLI_FIXTURES / "litellm_user_cost.json"))
    step("-p", "imported", "show")
    step("price", "remove", "acme/llama")
    step("cap", "--clear")
    return seen


def test_every_command_answers_the_same_on_postgresql(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_json = _session()
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", pg_url)
    on_pg = _session()
    assert [step[:2] for step in on_pg] == [step[:2] for step in on_json]
    for json_step, pg_step in zip(on_json, on_pg, strict=True):
        assert pg_step == json_step


# --- db migrate and db status ---------------------------------------------------------------------


def test_db_migrate_is_idempotent_and_db_status_says_when_it_is_needed() -> None:
    with fresh_schema(migrate=False) as url:
        before = json.loads(ok("db", "status", "--database-url", url, "--json").stdout)
        assert (before["version"], before["migrate_needed"]) == (0, True)
        assert before["needed"] >= 1 and "search_path" in before["database"]
        assert "budgetctl db migrate" in ok("db", "status", "--database-url", url).stdout
        # A command against a database without the schema says what to run, and changes nothing.
        message = fails(1, "--database-url", url, "create", "alice", "-b", "5", "-d", "none")
        assert "run 'budgetctl db migrate'" in message
        done = json.loads(ok("--database-url", url, "db", "migrate", "--json").stdout)
        assert (done["before"], done["after"]) == (0, before["needed"])
        again = ok("db", "migrate", "--database-url", url)
        assert "already up to date" in again.stdout
        assert ok("db", "migrate", "--database-url", url, "-q").stdout == ""
        after = json.loads(ok("db", "status", "--database-url", url, "--json").stdout)
        assert (after["version"], after["migrate_needed"]) == (before["needed"], False)
        ok("--database-url", url, "create", "alice", "-b", "5", "-d", "none")


def test_a_database_of_a_newer_budgetctl_is_left_alone(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO budgetctl_schema VALUES (99, now())")
    found = json.loads(ok("db", "status", "--database-url", pg_url, "--json").stdout)
    assert (found["version"], found["migrate_needed"]) == (99, False)
    assert "upgrade budgetctl" in ok("db", "status", "--database-url", pg_url).stdout
    assert "upgrade budgetctl" in fails(1, "db", "migrate", "--database-url", pg_url)
    assert "upgrade budgetctl" in fails(1, "show", "--database-url", pg_url)


@pytest.mark.parametrize("command", [("db", "migrate"), ("db", "status")])
def test_db_commands_need_a_database_url(command: tuple[str, ...]) -> None:
    message = fails(2, *command)
    assert f"budgetctl {' '.join(command)} needs a PostgreSQL database" in message
    assert "--database-url" in message and "BUDGETCTL_DATABASE_URL" in message


def test_db_commands_take_no_data_dir_or_project() -> None:
    assert run("db", "status", "--data-dir", "x").exit_code == 2
    assert run("db", "status", "-p", "team").exit_code == 2


def test_a_url_that_is_not_postgresql_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", "mysql://db/budgets")
    assert "is not a PostgreSQL URL" in fails(2, "show")


# --- fail closed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("show",),
        ("show", "alice", "--json"),
        ("update-cost", "alice", "--cost", "1"),
        ("update-cost", "alice", "--cost", "1", "--json"),
        ("check", "alice", "--cost", "1"),
        ("check", "alice", "--cost", "0", "--json"),
        ("check", "alice", "--cost", "1", "--reserve"),
        ("create", "alice", "-b", "5", "-d", "none"),
        ("reset-due", "-q"),
        ("reset-due", "--all-projects"),
        ("projects",),
        ("db", "status"),
        ("db", "migrate"),
    ],
)
def test_a_database_that_is_down_is_exit_1_naming_it_and_nothing_on_stdout(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", DOWN)
    result = run(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""  # check never says "ok" without the database
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "127.0.0.1:1" in result.stderr and "Connection refused" in result.stderr
    assert "s3cret" not in result.stderr  # the password is never shown


# --- projects on a database -----------------------------------------------------------------------


def test_projects_and_reset_due_all_projects_go_over_the_database(on_pg: str) -> None:
    assert json.loads(ok("projects", "--json").stdout)["projects"] == []
    assert "warning: no projects in postgresql://" in ok("projects").stderr
    for project in ("b-team", "a-team", "Zed"):
        ok("-p", project, "create", "u", "-b", "1", "-d", "daily")
    listed = json.loads(ok("projects", "--json").stdout)
    assert listed["projects"] == ["Zed", "a-team", "b-team"]
    assert listed["database"].startswith("postgresql://") and "data_dir" not in listed
    done = json.loads(ok("reset-due", "--all-projects", "--json").stdout)
    assert done["projects"] == ["Zed", "a-team", "b-team"]
    created = json.loads(ok("-p", "new", "create", "u", "-b", "1", "-d", "none", "--json").stdout)
    assert created["created_project"] == {"project": "new", "database": listed["database"]}


def test_reset_due_all_closes_ended_periods_in_every_project_of_the_database(
    pg_url: str,
) -> None:
    from datetime import timedelta

    from budgetctl.ledger import Ledger
    from budgetctl.maintenance import reset_due_all

    for project in ("one", "two"):
        ledger = Ledger(project, database_url=pg_url)
        ledger.create("u", 5, duration="1h")
        ledger.charge_cost("u", "2")
    later = Ledger("one", database_url=pg_url).now() + timedelta(hours=2)
    done = reset_due_all(database_url=pg_url, now=later, dry_run=True)
    assert done.found.projects == ("one", "two") and done.exit_code == 0
    assert [len(result.reset) for result in done.results] == [1, 1]


# --- the driver -----------------------------------------------------------------------------------

WITHOUT_DRIVER = """
import sys
sys.modules["psycopg"] = None  # as if budgetctl[postgres] were not installed
from budgetctl.cli.app import main
sys.argv = ["budgetctl", *sys.argv[1:]]
main()
"""


def _without_driver(*args: str, url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BUDGETCTL_DATABASE_URL"}
    if url is not None:
        env["BUDGETCTL_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DRIVER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.process
def test_without_the_driver_a_database_url_says_how_to_install_it(data_dir: Path) -> None:
    for args in (("show",), ("update-cost", "a", "--cost", "1"), ("db", "status")):
        result = _without_driver(*args, url="postgresql://postgres@127.0.0.1:5432/postgres")
        assert result.returncode == 2, result.stderr
        assert "pip install 'budgetctl[postgres]'" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    # Without a database URL, nothing needs the driver.
    assert _without_driver("create", "a", "-b", "5", "-d", "none", url=None).returncode == 0
    assert _without_driver("show", "a", "--json", url=None).returncode == 0


PROBE = """
import json, sys
from budgetctl.cli.app import main
sys.argv = ["budgetctl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps([code, "psycopg" in sys.modules]), file=sys.stderr)
"""


@pytest.mark.process
@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["db", "--help"],
        ["db", "migrate", "--help"],
        ["show", "--help"],
        ["create", "bob", "-b", "5", "-d", "monthly"],
        ["show"],
        ["update-cost", "alice", "--cost", "0.5", "--request-id", "r"],
        ["check", "alice", "--cost", "1", "--reserve"],
        ["reset-due", "--all-projects"],
        ["projects", "--json"],
        ["price", "set", "m", "--input", "1", "--output", "2"],
    ],
)
def test_no_database_no_driver_import(data_dir: Path, args: list[str]) -> None:
    assert ok("create", "alice", "-b", "5", "-d", "monthly").exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "BUDGETCTL_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    code, loaded = json.loads(result.stderr.splitlines()[-1])
    assert code == 0, result.stderr
    assert loaded is False
