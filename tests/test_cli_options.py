"""The shared options, defined once (``budgetctl.cli.options.shared_options``): every command gets
the same ones, in the same place, and a new command gets them with one decorator."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer
from typer import _click
from typer.core import TyperGroup
from typer.testing import CliRunner

from budgetctl.cli.options import CommonOptions, Project, User, shared_options
from budgetctl.cli.root import make_app

SHARED = ["prices", "project", "data_dir", "database_url", "as_json", "dry_run", "quiet"]


def _commands() -> dict[str, _click.Command]:
    root = typer.main.get_command(make_app())
    assert isinstance(root, TyperGroup)
    found: dict[str, _click.Command] = {}
    for name, command in root.commands.items():
        if isinstance(command, TyperGroup):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def test_every_command_ends_with_the_shared_options_in_one_order() -> None:
    for name, command in _commands().items():
        names = [p.name for p in command.params if p.name != "help"]
        shared = [n for n in names if n in SHARED]
        assert names[-len(shared) :] == shared, name  # after the command's own
        assert shared == [n for n in SHARED if n in shared], name
        assert "database_url" in shared, name
        # dump's and export's stdout is the data itself; serve prints nothing but its log
        assert ("as_json" in shared) == (name not in ("dump", "export", "serve")), name
        assert ("data_dir" in shared) == (not name.startswith("db ")), name
        every_project = name in ("projects", "serve") or name.startswith("db ")
        assert ("project" in shared) == (not every_project), name


def test_writing_commands_take_dry_run_and_quiet() -> None:
    commands = _commands()
    readers = {"show", "history", "models", "projects", "check", "holds", "dump", "db status"}
    readers |= {"export", "report"}
    readers.add("serve")  # its clients write, each request with its own dry_run
    readers |= {"hook list", "hook test"}  # a test event is sent, nothing is written
    for name, command in commands.items():
        names = {p.name for p in command.params}
        assert ("dry_run" in names) == (name not in readers | {"db migrate"}), name
        assert ("quiet" in names) == (name not in readers - {"check"}), name
    priced = {n for n, c in commands.items() if "prices" in {p.name for p in c.params}}
    assert priced == {"update-cost", "check", "models", "serve"}


def _demo_app(**flags: bool) -> tuple[typer.Typer, list[tuple[str, CommonOptions]]]:
    seen: list[tuple[str, CommonOptions]] = []

    @shared_options(**flags)
    def hello(opts: CommonOptions, user: User, loud: bool = False) -> None:
        """Say hello."""
        seen.append((user.upper() if loud else user, opts))

    app = typer.Typer()
    app.command("hello")(hello)
    app.command("other")(lambda: None)  # two commands: "hello" must be named, as in budgetctl
    return app, seen


def test_a_new_command_gets_the_shared_options(data_dir: object) -> None:
    app, seen = _demo_app(writes=True)
    runner = CliRunner()
    result = runner.invoke(app, ["hello", "alice", "-p", "team", "--dry-run", "--loud", "-q"])
    assert result.exit_code == 0, result.output
    expected = CommonOptions(project="team", data_dir=str(data_dir), dry_run=True, quiet=True)
    assert seen == [("ALICE", expected)]
    seen.clear()
    env = {"BUDGETCTL_PROJECT": "fromenv", "BUDGETCTL_DATA_DIR": "/elsewhere"}
    assert runner.invoke(app, ["hello", "bob", "--json"], env=env).exit_code == 0
    assert seen == [("bob", CommonOptions("fromenv", "/elsewhere", as_json=True))]
    help_text = runner.invoke(app, ["hello", "--help"], env={"COLUMNS": "200"}).output
    flags = ("--loud", "--project", "-p", "--data-dir", "--database-url", "--json", "--dry-run")
    for flag in (*flags, "--quiet"):
        assert flag in help_text
    assert help_text.index("--loud") < help_text.index("--project") < help_text.index("--quiet")
    assert "--prices" not in help_text


def test_the_options_a_command_does_not_take_keep_their_defaults() -> None:
    app, seen = _demo_app(project=False, as_json=False)
    runner = CliRunner()
    result = runner.invoke(app, ["hello", "x", "--data-dir", "d"])
    assert result.exit_code == 0, result.output
    assert seen == [("x", CommonOptions(data_dir="d"))]
    for flag in ("-p", "--json", "--dry-run", "-q", "--prices"):
        assert runner.invoke(app, ["hello", "x", flag, "v"]).exit_code == 2, flag


def test_the_signature_typer_reads() -> None:
    # Typer builds parameters from inspect.signature: a wrapper taking **kwargs would show none
    # (Typer issue #1898), so the decorator gives it an explicit __signature__.
    @shared_options(prices=True, quiet=True)
    def command(opts: CommonOptions, user: User, count: int = 1) -> None:
        """Doc."""

    parameters = inspect.signature(command).parameters
    assert list(parameters) == [
        "user",
        "count",
        "prices",
        "project",
        "data_dir",
        "database_url",
        "as_json",
        "quiet",
    ]
    assert parameters["project"].annotation is Project
    assert parameters["project"].default == "default"
    assert all(
        parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in SHARED if n in parameters
    )
    assert command.__doc__ == "Doc." and command.__name__ == "command"


def test_a_command_without_a_place_for_the_options_is_refused() -> None:
    def plain(user: User) -> None:
        pass

    def twice(project: Project = "default", *, opts: CommonOptions) -> None:
        pass

    with pytest.raises(TypeError, match="exactly one CommonOptions parameter"):
        shared_options()(plain)
    with pytest.raises(TypeError, match="declares shared options itself"):
        shared_options()(twice)


def test_the_common_options_open_the_ledger_and_the_output(data_dir: Any) -> None:
    opts = CommonOptions(project="team", data_dir=str(data_dir), as_json=True, quiet=True)
    ledger = opts.ledger()
    assert (ledger.project, ledger.data_dir) == ("team", data_dir)
    out = opts.output()
    assert (out.as_json, out.quiet) == (True, True)


def test_the_common_options_open_a_ledger_in_the_database_of_database_url(
    data_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budgetctl.store.json_store import JsonStore
    from budgetctl.store.postgres.store import PostgresStore

    url = "postgresql://budgets@127.0.0.1:1/budgets"  # nothing connects until the first call
    ledger = CommonOptions(project="team", database_url=url).ledger()
    assert isinstance(ledger.store, PostgresStore) and ledger.database_url == url
    assert isinstance(CommonOptions(project="team").ledger().store, JsonStore)
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", url)  # the variable, as Ledger reads it
    assert isinstance(CommonOptions(project="team").ledger().store, PostgresStore)
