"""Docs stay true by test (as sqlite-utils does): every command and option has help text, every
command has a section in docs/cli.md, and every environment variable is documented there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer import _click
from typer.core import TyperGroup

from budgetctl.cli.root import make_app

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands() -> Iterator[tuple[str, _click.Command]]:
    root = typer.main.get_command(make_app())
    assert isinstance(root, TyperGroup)
    for name, command in root.commands.items():
        if isinstance(command, TyperGroup):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, command


COMMANDS = dict(_commands())
HEADINGS = set(re.findall(r"^#+ budgetctl (.+?)\s*$", CLI_DOC.read_text(), flags=re.M))


def test_the_commands_are_the_documented_set() -> None:
    assert set(COMMANDS) >= {
        "create", "set", "show", "update-cost", "check", "reset", "reset-due", "cap",
        "delete", "history", "models", "projects", "import-litellm", "price set", "price remove",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    command = COMMANDS[name]
    assert command.help and len(command.help.strip()) > 20, f"{name} has no help text"
    for param in command.params:
        if param.name == "help":
            continue
        assert getattr(param, "help", None), f"{name}: {param.name} has no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_in_docs_cli_md(name: str) -> None:
    assert name in HEADINGS, f"docs/cli.md has no '### budgetctl {name}' section"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_in_docs_cli_md(name: str) -> None:
    text = CLI_DOC.read_text()
    for param in COMMANDS[name].params:
        for option in getattr(param, "opts", []):
            if option.startswith("--") and option != "--help":
                assert option in text, f"docs/cli.md never mentions {name} {option}"


def test_every_environment_variable_is_documented() -> None:
    text = CLI_DOC.read_text()
    variables = {
        envvar
        for command in COMMANDS.values()
        for param in command.params
        for envvar in [getattr(param, "envvar", None)]
        if envvar
    }
    variables |= {"BUDGETCTL_LOCK_TIMEOUT", "BUDGETCTL_DEBUG", "NO_COLOR"}
    for variable in variables:
        assert f"`{variable}`" in text, f"docs/cli.md does not document {variable}"
