"""The root command: the Typer app and its commands, built whole or one command at a time.

Every failure ends in :mod:`budgetctl.cli.failures` (one sentence on stderr, the documented exit
code, no traceback unless ``BUDGETCTL_DEBUG=1``), whether the app runs from the console script
(:mod:`budgetctl.cli.app`) or from a test's ``CliRunner``.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, TextIO

import typer
from typer import _click
from typer.core import TyperGroup

from budgetctl._version import __version__
from budgetctl.cli import complete, failures, interrupts
from budgetctl.errors import BudgetctlWarning


class BudgetctlGroup(TyperGroup):
    """Runs a command and turns whatever it raises into a message and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        with interrupts.guarded(), warnings.catch_warnings():
            warnings.simplefilter("always", BudgetctlWarning)
            warnings.showwarning = _show_warning
            try:
                from budgetctl.store import lock

                lock.lock_timeout()  # a bad BUDGETCTL_LOCK_TIMEOUT is exit 2 for every command
                returned = super().main(
                    hoist(sys.argv[1:] if args is None else args),
                    prog_name or "budgetctl",
                    complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                )
                code = returned if isinstance(returned, int) else failures.EXIT_OK
                lost = interrupts.stopped_quietly()
                if lost is not None:
                    code = failures.report(lost)
            except SystemExit:  # shell completion, and click's own exits
                interrupts.finish()
                raise
            except BaseException as exc:  # the one place errors are mapped
                code = failures.report(exc)
            for note in interrupts.after_commit_notes():
                interrupts.to_stderr(f"warning: {note}\n")
            interrupts.finish()
        if standalone_mode:
            sys.exit(code)
        return code


_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """The library's warnings as the CLI's own (stderr, even with ``-q``); others as Python's."""
    if issubclass(category, BudgetctlWarning):
        interrupts.to_stderr(f"warning: {message}\n")
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"budgetctl {__version__}\n")
        raise typer.Exit()


HELP = "Per-user budgets for LLM API spending: exact costs, calendar periods, cron resets."
EPILOG = (
    "Example: budgetctl -p team create alice --budget 25 --duration monthly --tz Europe/Paris. "
    "Exit codes: 0 done, 1 could not be done, 2 usage, 3 over budget (check), 4 not found, "
    "5 busy (retry). Environment: BUDGETCTL_PROJECT, BUDGETCTL_DATA_DIR, "
    "BUDGETCTL_DATABASE_URL, BUDGETCTL_PRICES, BUDGETCTL_LOCK_TIMEOUT, BUDGETCTL_DEBUG, "
    "BUDGETCTL_PAGER (else PAGER), NO_COLOR."
)


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="NAME",
            show_default=False,
            autocompletion=complete.projects,
            help="Project: a namespace of users with its own state file (default: 'default', "
            "or BUDGETCTL_PROJECT). Before or after the command.",
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            show_default=False,
            help="Directory of the state files (default: BUDGETCTL_DATA_DIR, else the "
            "platform's user data directory). Before or after the command.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            show_default=False,
            help="A PostgreSQL database to use instead of the data directory (default: "
            "BUDGETCTL_DATABASE_URL). Before or after the command.",
        ),
    ] = None,
    prices: Annotated[
        str | None,
        typer.Option(
            "--prices",
            metavar="FILE",
            show_default=False,
            help="A LiteLLM-format price map whose entries win over the bundled table "
            "(default: BUDGETCTL_PRICES). Before or after the command.",
        ),
    ] = None,
) -> None:
    """Per-user budgets for LLM API spending: exact costs, calendar periods, cron resets."""
    # -p, --data-dir, --database-url and --prices written before a command are moved after it
    # (see hoist); they arrive here only when no command follows, which click reports as a
    # missing command.


# name -> (module under budgetctl.cli.commands, attribute). Modules load only when their command
# is built: a one-shot command builds only itself (see main), and --help builds them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("budgets", "create"),
    "set": ("budgets", "set_budget"),
    "show": ("budgets", "show"),
    "update-cost": ("charges", "update_cost"),
    "check": ("charges", "check"),
    "release": ("charges", "release"),
    "holds": ("charges", "holds"),
    "reset": ("resets", "reset"),
    "reset-due": ("resets", "reset_due"),
    "cap": ("budgets", "cap"),
    "delete": ("budgets", "delete"),
    "history": ("charges", "history"),
    "export": ("reports", "export"),
    "report": ("reports", "report"),
    "models": ("catalog", "models"),
    "price": ("catalog", "price_app"),
    "projects": ("catalog", "projects"),
    "import-litellm": ("catalog", "import_litellm"),
    "dump": ("backup", "dump"),
    "restore": ("backup", "restore"),
    "db": ("database", "db_app"),
    "serve": ("serve", "serve"),
    "hook": ("hooks", "hook_app"),
}
GROUPS = {"price", "db", "hook"}  # commands with subcommands: options written before go after those


def make_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or only the one named ``only`` (``""``: none)."""
    app = typer.Typer(
        cls=BudgetctlGroup,
        name="budgetctl",
        help=HELP,
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name, (module_name, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"budgetctl.cli.commands.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


ROOT_OPTIONS = {"--version", "-V", "--help", "-h", "--install-completion", "--show-completion"}
TAKES_VALUE = {"-p", "--project", "--data-dir", "--database-url", "--prices"}


def hoist(args: Sequence[str]) -> list[str]:
    """Options written before the command moved after it: ``budgetctl -p team show`` is
    ``budgetctl show -p team`` (the root itself only takes --version, --help and completion)."""
    rest = list(args)
    root: list[str] = []
    moved: list[str] = []
    while rest and rest[0].startswith("-") and rest[0] != "--":
        arg = rest.pop(0)
        if arg.split("=", 1)[0] in ROOT_OPTIONS:
            root.append(arg)
            continue
        moved.append(arg)
        if arg in TAKES_VALUE and rest:
            moved.append(rest.pop(0))
    if not moved or not rest:
        return [*root, *moved, *rest]
    path = [rest.pop(0)]
    if path[0] in GROUPS and rest and not rest[0].startswith("-"):
        path.append(rest.pop(0))  # a command group: options go after its subcommand
    return [*root, *path, *moved, *rest]


def _invoked(args: Sequence[str]) -> str | None:
    """The one command ``args`` need built: its name, ``""`` for none (``--version``), or None
    for all of them (help, completion, a mistyped name that deserves suggestions)."""
    for arg in args:
        if arg in ("--version", "-V"):
            return ""
        if arg.startswith("-") and arg != "--":
            continue
        return arg if arg in COMMANDS else None
    return None


def build(args: Sequence[str]) -> _click.Command:
    """The click command that runs ``args`` (already hoisted): only the command they name."""
    return typer.main.get_command(make_app(_invoked(args)))
