"""Helpers and fixtures shared by the CLI tests (a plugin, not a test module: the test modules
load it with ``pytest_plugins = ["helpers.cli"]``).

The CLI runs in-process through typer's ``CliRunner``; the autouse fixture in conftest.py already
points ``BUDGETCTL_DATA_DIR`` at a temp dir. Here: pinned terminal settings (rich width, colour,
time zone), a frozen clock, and a digest of every file in the data dir to prove that a failed or
dry-run command changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import typer.testing
from typer.testing import CliRunner, Result

from budgetctl.cli import output
from budgetctl.cli.root import make_app
from budgetctl.ledger import Ledger

RESPONSES = Path(__file__).parents[1] / "fixtures" / "responses"
CLI_FIXTURES = Path(__file__).parents[1] / "fixtures" / "cli"
NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone.utc)  # a Tuesday
APP = make_app()
# typer's CliRunner turns the Typer app into a click command on every invoke, reading every
# command's signature again: ~70 of the ~90 ms of an in-process call. The real CLI builds it once
# per process; so do the tests, for APP (any other app is still built on each invoke).
_COMMAND = typer.main.get_command(APP)
_build_command = typer.main.get_command


def _get_command(typer_instance: typer.Typer) -> Any:
    return _COMMAND if typer_instance is APP else _build_command(typer_instance)


typer.testing._get_command = _get_command


def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    """``budgetctl ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(APP, list(args), input=input, env=env, catch_exceptions=False)


def ok(*args: str, input: str | bytes | None = None) -> Result:
    """``run`` that must succeed."""
    result = run(*args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def data(*args: str, input: str | bytes | None = None) -> Any:
    """The ``--json`` document of a successful command, numbers read as exact Decimals."""
    result = ok(*args, "--json", input=input)
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout, parse_float=Decimal)


def fails(code: int, *args: str, input: str | bytes | None = None) -> str:
    """Run a command that must fail with ``code``; its stderr, checked to be one error line."""
    result = run(*args, input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder`` (empty when it does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable settings for every CLI test (``pytestmark = pytest.mark.usefixtures("cli_env")``):
    local time is UTC, lines are 120 wide, no colour forced."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "60")
    monkeypatch.setenv("BUDGETCTL_PAGER", "cat")  # a test never waits on a pager
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Every Ledger's clock stops at NOW."""
    monkeypatch.setattr(Ledger, "now", lambda self: NOW)
    return NOW


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stdout is a colour terminal 120 columns wide (rich draws tables, bars and colours)."""
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    yield


@pytest.fixture
def alice(cli_env: None, data_dir: Path) -> Path:
    """Project ``default`` with alice ($10 monthly) who has spent $2.50."""
    ok("create", "alice", "--budget", "10", "--duration", "monthly", "--alert-at", "80")
    ok("update-cost", "alice", "--cost", "2.5", "--model", "gpt-4o")
    return data_dir / "default.json"
