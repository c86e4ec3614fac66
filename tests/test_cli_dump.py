"""CLI: dump and restore. A project moved from the JSON store to PostgreSQL and back shows the same
``show --json`` and ``history --json``, remembers its request ids, and a dump that is cut short,
corrupt or aimed at an existing project is refused with nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import NOW, data, digest, fails, ok, run

from budgetctl.ledger import Ledger
from budgetctl.store.postgres.store import PostgresStore

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(Ledger, "now", lambda self: moment)


@pytest.fixture
def pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The environment of a command on a fresh PostgreSQL schema, whose store uses the tests'
    frozen clock (not the database's)."""
    from tests.helpers.postgres import fresh_schema

    monkeypatch.setattr(PostgresStore, "_database_time", property(lambda self: False))
    with fresh_schema() as url:
        yield {"BUDGETCTL_DATABASE_URL": url}


def on(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = run(*args, env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def project(monkeypatch: pytest.MonkeyPatch) -> None:
    """Project ``team`` in the JSON store: budgets of every kind, a cap, a price, closed
    periods (rolled over and reset by hand), charges with request ids, a deleted user, a hold."""
    p = ("-p", "team")
    ok(
        "create",
        "alice",
        "-b",
        "25",
        "-d",
        "monthly",
        "--tz",
        "Europe/Paris",
        "--alert-at",
        "80",
        *p,
    )
    ok("create", "bob", "-b", "5", "-d", "daily", "--start", "2026-01-15", *p)
    ok("create", "carol", "-b", "3", "-d", "none", *p)
    ok("create", "dave", "-b", "1", "-d", "weekly", *p)
    ok("cap", "--budget", "100", "-d", "monthly", *p)
    ok("price", "set", "my-llama", "--input", "0.20", "--output", "0.60", *p)
    ok("update-cost", "alice", "--cost", "1.25", "-m", "gpt-4o", "--request-id", "r-1", *p)
    ok("update-cost", "bob", "--prompt-tokens", "1000", "--completion-tokens", "10", "-m",
       "my-llama", "--request-id", "r-2", *p)  # fmt: skip
    ok("reset", "alice", *p)
    ok("delete", "dave", "--yes", *p)
    at(monkeypatch, NOW + timedelta(days=2, hours=3))
    ok("reset-due", *p)
    ok("update-cost", "bob", "--cost", "0.5", "--request-id", "r-3", *p)
    ok("check", "alice", "--cost", "2", "--reserve", "--ttl", "1h", *p)
    ok("update-cost", "carol", "--cost", "0.001", *p)


def views(env: dict[str, str] | None = None, *extra: str) -> list[Any]:
    out = []
    for args in (("show",), ("show", "alice"), ("show", "bob"), ("history",), ("holds",)):
        result = on(env or {}, *args, "-p", "team", "--json", *extra)
        out.append(json.loads(result.stdout))
    return out


def test_json_to_postgres_and_back_shows_the_same(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg: dict[str, str]
) -> None:
    project(monkeypatch)
    before = views()
    dump = ok("dump", "-p", "team").stdout
    (tmp_path / "team.jsonl").write_text(dump)
    lines = [json.loads(line) for line in dump.splitlines()]
    assert lines[0]["format"] == "budgetctl-dump" and lines[0]["version"] == 1
    assert lines[-1] == {"kind": "end", "budgets": 3, "caps": 1, "prices": 1, "holds": 1,
                         "events": len(before[3]["events"])}  # fmt: skip

    restored = json.loads(
        on(pg, "restore", str(tmp_path / "team.jsonl"), "-p", "team", "--json").stdout
    )
    assert restored["budgets"] == 3 and restored["replaced"] is False
    assert views(pg) == before

    again = on(pg, "dump", "-p", "team").stdout
    assert again.splitlines()[1:] == dump.splitlines()[1:]  # the same dump, but for its header
    other = tmp_path / "other"
    ok("restore", "-", "-p", "team", "--data-dir", str(other), input=again)
    assert views(None, "--data-dir", str(other)) == before

    # the request ids charged went with the project: a retry is a duplicate, in both stores
    for env, extra in ((pg, ()), ({}, ("--data-dir", str(other)))):
        result = on(env, "update-cost", "alice", "--cost", "1.25", "-m", "gpt-4o",
                    "--request-id", "r-1", "-p", "team", "--json", *extra)  # fmt: skip
        assert json.loads(result.stdout)["duplicate"] is True
        assert on(env, "update-cost", "bob", "--cost", "0.5", "--request-id", "r-3", "-p", "team",
                  "--json", *extra).stdout.count('"duplicate": true') == 1  # fmt: skip
    assert views(pg) == before


def test_restore_into_an_existing_project_needs_replace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path, pg: dict[str, str]
) -> None:
    project(monkeypatch)
    dump = tmp_path / "team.jsonl"
    dump.write_text(ok("dump", "-p", "team").stdout)
    before = views()
    ok("create", "erin", "-b", "2", "-d", "none", "-p", "other")
    kept = digest(data_dir)
    assert "already exists" in fails(1, "restore", str(dump), "-p", "other")
    assert digest(data_dir) == kept
    # a dry run says what it would replace and changes nothing
    assert data("restore", str(dump), "-p", "other", "--replace", "--dry-run")["replaced"] is True
    assert digest(data_dir) == kept
    assert data("restore", str(dump), "-p", "other", "--replace")["replaced"] is True
    assert views(None) == before  # team untouched
    shown = data("show", "-p", "other")
    assert sorted(u["user"] for u in shown["users"]) == ["alice", "bob", "carol"]
    aside = sorted(p.name for p in data_dir.iterdir() if ".replaced." in p.name)
    assert [name.split(".")[0] for name in aside] == ["other+history", "other+state"]

    # the same on PostgreSQL
    on(pg, "create", "erin", "-b", "2", "-d", "none", "-p", "team")
    assert "already exists" in on(pg, "restore", str(dump), "-p", "team", code=1).stderr
    assert json.loads(on(pg, "show", "-p", "team", "--json").stdout)["users"][0]["user"] == "erin"
    on(pg, "restore", str(dump), "-p", "team", "--replace")
    assert views(pg) == before


def cut(text: str, how: str) -> str:
    lines = text.splitlines(keepends=True)
    if how == "truncated":
        return "".join(lines[:-1])
    if how == "mid-line":
        return "".join(lines)[: len(text) // 2]
    if how == "counts":
        return "".join(lines[:3] + lines[4:])  # a line missing, the end line says otherwise
    if how == "bad-json":
        return "".join(lines[:2]) + "{not json\n" + "".join(lines[2:])
    if how == "newer":
        return text.replace('"version":1', '"version":2', 1)
    if how == "not-a-dump":
        return '{"format": "budgetctl-state"}\n'
    if how == "bad-budget":
        return text.replace('"total_budget":"25"', '"total_budget":"-3"', 1)
    if how == "bad-event":
        return text.replace('"type":"charge"', '"type":"spend"', 1)
    if how == "empty":
        return ""
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["truncated", "mid-line", "counts", "bad-json", "newer", "not-a-dump", "bad-budget",
     "bad-event", "empty"],
)  # fmt: skip
def test_a_broken_dump_is_refused_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, how: str
) -> None:
    project(monkeypatch)
    broken = cut(ok("dump", "-p", "team").stdout, how)
    kept = digest(data_dir)
    message = fails(2, "restore", "-", "-p", "copy", input=broken)
    assert "nothing was restored" in message
    if how not in ("not-a-dump", "empty", "truncated"):
        assert "line " in message
    assert digest(data_dir) == kept
    fails(4, "show", "-p", "copy")


def test_a_broken_dump_writes_nothing_to_postgresql(
    monkeypatch: pytest.MonkeyPatch, pg: dict[str, str]
) -> None:
    project(monkeypatch)
    broken = cut(ok("dump", "-p", "team").stdout, "truncated")
    assert run("restore", "-", "-p", "team", input=broken, env=pg).exit_code == 2
    on(pg, "show", "-p", "team", code=4)


def test_dump_of_a_missing_project_fails() -> None:
    assert "no project 'nope'" in fails(4, "dump", "-p", "nope")
