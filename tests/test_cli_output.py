"""CLI output contracts: exact JSON numbers, one document on stdout, errors on stderr without a
traceback, exit codes, --version, and which commands the entry point builds."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import APP, data, fails, ok, run
from typer.testing import CliRunner

from budgetctl._version import __version__
from budgetctl.cli import root as app_module
from budgetctl.cli.jsonout import dumps
from budgetctl.ledger import Ledger

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env")


def test_json_numbers_are_the_exact_decimals() -> None:
    document = {
        "tiny": Decimal("0.000123"),
        "sum": Decimal("0.1") + Decimal("0.2"),
        "big": Decimal("1E+3"),
        "zero": Decimal("0E-8"),
        "trailing": Decimal("1.500"),
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "nested": [{"ok": True, "none": None, "n": 3}],
        "text": 'naïve "quoted"',
        "empty": {},
    }
    text = dumps(document)
    assert '"tiny": 0.000123' in text and '"sum": 0.3' in text and '"big": 1000' in text
    assert '"zero": 0' in text and '"trailing": 1.5' in text
    assert json.loads(text, parse_float=Decimal) == {
        **document,
        "when": "2026-01-02T03:04:05Z",
        "big": 1000,
    }


@pytest.mark.parametrize("bad", [0.1, Decimal("NaN"), Decimal("Infinity"), object()])
def test_json_refuses_floats_and_non_finite_numbers(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        dumps({"x": bad})


def test_json_output_is_one_document_on_stdout_only(alice: Path) -> None:
    result = run("update-cost", "alice", "--cost", "0.000123", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert '"cost": 0.000123,' in result.stdout
    json.loads(result.stdout)  # one document, nothing around it


def test_errors_print_nothing_on_stdout_even_with_json(alice: Path) -> None:
    result = run("show", "zed", "--json")
    assert (result.exit_code, result.stdout) == (4, "")


def test_version() -> None:
    assert ok("--version").stdout == f"budgetctl {__version__}\n"


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in app_module.COMMANDS:
        assert name in result.stdout
    assert "Exit codes" in result.stdout


def test_bare_command_prints_help_and_exits_2() -> None:
    result = run()
    assert result.exit_code == 2 and "Usage" in result.stdout + result.stderr
    assert "error:" not in result.stderr


def test_usage_errors_are_one_line_with_a_pointer_to_help() -> None:
    assert fails(2, "update-cos") == (
        "error: No such command 'update-cos'. Did you mean 'update-cost'? "
        "(see 'budgetctl --help')\n"
    )
    assert (
        fails(2, "show", "--nope")
        == "error: No such option: --nope (see 'budgetctl show --help')\n"
    )


def test_an_unexpected_error_is_a_sentence_not_a_traceback(
    alice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Ledger) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Ledger, "view", broken)
    error = fails(1, "show")
    assert error == (
        "error: unexpected RuntimeError: disk on fire; this is a bug in budgetctl, please report "
        "it (BUDGETCTL_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("BUDGETCTL_DEBUG", "1")
    debug = run("show")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr and "disk on fire" in debug.stderr


def test_a_library_error_with_debug_shows_its_traceback(
    alice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETCTL_DEBUG", "1")
    result = run("show", "zed")
    assert result.exit_code == 4 and "UnknownUserError" in result.stderr


def test_busy_project_is_exit_5(alice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from budgetctl.store import lock

    monkeypatch.setenv("BUDGETCTL_LOCK_TIMEOUT", "0.05")
    with lock.exclusive(alice.parent):
        error = fails(5, "update-cost", "alice", "--cost", "1")
    assert "project is busy" in error and "safe to retry" in error
    assert data("show", "alice")["current_cost"] == Decimal("2.5")


def test_env_vars_choose_project_and_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETCTL_PROJECT", "from-env")
    monkeypatch.setenv("BUDGETCTL_DATA_DIR", str(tmp_path / "elsewhere"))
    ok("create", "x", "-b", "1", "--duration", "none")
    assert (tmp_path / "elsewhere" / "from-env.json").exists()
    other = tmp_path / "flag"
    ok("create", "y", "-b", "1", "--duration", "none", "--data-dir", str(other), "-p", "flagged")
    assert (other / "flagged.json").exists()


def test_help_shows_the_environment_variables() -> None:
    text = run("update-cost", "--help").stdout
    for name in ("BUDGETCTL_PROJECT", "BUDGETCTL_DATA_DIR", "BUDGETCTL_PRICES"):
        assert name in text


def test_the_entry_point_builds_only_the_command_it_runs() -> None:
    invoked = app_module._invoked
    assert invoked(["update-cost", "alice", "--cost", "1"]) == "update-cost"
    assert invoked(["--version"]) == ""
    assert invoked(["--help"]) is None
    assert invoked(["updat-cost"]) is None  # all of them, for "did you mean"
    assert invoked([]) is None
    one = app_module.make_app("reset-due")
    assert [c.name for c in one.registered_commands] == ["reset-due"]
    assert len(APP.registered_commands) + len(APP.registered_groups) == len(app_module.COMMANDS)


def test_the_full_app_and_a_single_command_app_agree(alice: Path) -> None:
    single = app_module.make_app("show")
    result = CliRunner().invoke(single, ["show", "alice", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(run("show", "alice", "--json").stdout)


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["-p", "q", "create", "a", "-b", "1"], ["create", "-p", "q", "a", "-b", "1"]),
        (["--data-dir", "/d", "--json", "show"], ["show", "--data-dir", "/d", "--json"]),
        (["--project=q", "price", "set", "m"], ["price", "set", "--project=q", "m"]),
        (["--version"], ["--version"]),
        (["show", "-p", "q"], ["show", "-p", "q"]),
        (["-p", "q"], ["-p", "q"]),
    ],
)
def test_options_before_the_command_are_passed_to_it(args: list[str], hoisted: list[str]) -> None:
    assert app_module.hoist(args) == hoisted


def test_project_before_the_command(data_dir: Path) -> None:
    ok("-p", "quickstart", "create", "alice", "--budget", "10", "--duration", "monthly")
    ok("-p", "quickstart", "update-cost", "alice", "--cost", "1")
    assert data("--project", "quickstart", "show", "alice")["current_cost"] == 1


def test_dash_v_prints_the_version() -> None:
    assert ok("-V").stdout == f"budgetctl {__version__}\n"


def test_root_help_lists_project_and_data_dir() -> None:
    text = ok("--help").stdout
    assert "--project" in text and "-p" in text and "--data-dir" in text and "-V" in text
    options = text.split("Commands")[0]  # docs/cli.md: the root help lists it, as --data-dir
    assert "--prices" in options and "FILE" in options


def test_prices_before_the_command_is_a_missing_command_alone(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text("{}")
    assert "Missing command" in fails(2, "--prices", str(prices))


def test_project_without_a_command_says_a_command_is_missing(data_dir: Path) -> None:
    for args in (["-p", "x"], ["--data-dir", str(data_dir)], ["-p", "x", "--data-dir", "d"]):
        message = fails(2, *args)
        assert "Missing command" in message and "No such option" not in message
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "command", [*[c for c in app_module.COMMANDS if c != "price"], "price set", "price remove"]
)
def test_each_command_help_shows_an_example(command: str) -> None:
    text = " ".join(ok(*command.split(), "--help").stdout.split())
    assert f"Example: budgetctl {command} " in text
