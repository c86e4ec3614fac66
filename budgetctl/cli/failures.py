"""The one place where a failure becomes a sentence on stderr and an exit code.

Library errors carry their exit code (:mod:`budgetctl.errors`); click/typer usage errors are 2
(Click's convention); anything else is a bug: exit 1 and a request to report it. No traceback is
shown unless ``BUDGETCTL_DEBUG=1``.
"""

from __future__ import annotations

import os
import traceback

import typer
from typer import _click

from budgetctl.cli import interrupts
from budgetctl.errors import BudgetctlError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def debug() -> bool:
    return os.environ.get("BUDGETCTL_DEBUG", "") not in ("", "0")


def exit_code(exc: BaseException) -> int:
    """The documented exit code for ``exc`` (docs/cli.md, "Exit codes")."""
    if isinstance(exc, BudgetctlError):
        return exc.exit_code
    if isinstance(exc, _click.exceptions.UsageError):
        return EXIT_USAGE
    if isinstance(exc, _click.exceptions.ClickException):
        return exc.exit_code
    interrupted = interrupts.exit_code(exc)  # Ctrl-C, SIGTERM, a closed stdout
    return EXIT_FAILED if interrupted is None else interrupted


def message(exc: BaseException) -> str:
    """One sentence: what was wrong and what to do."""
    if isinstance(exc, BudgetctlError):
        return exc.message
    if isinstance(exc, _click.exceptions.UsageError):
        text = exc.format_message().strip()
        where = exc.ctx.command_path if exc.ctx is not None else "budgetctl"
        return f"{text.rstrip('.')} (see '{where} --help')"
    if isinstance(exc, _click.exceptions.ClickException):
        return exc.format_message()
    if isinstance(exc, typer.Abort):
        return "aborted; nothing changed"
    if isinstance(exc, interrupts.Interrupted):  # raised only before a commit (see interrupts)
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; nothing changed"
    return (
        f"unexpected {type(exc).__name__}: {exc}; this is a bug in budgetctl, please report it "
        "(BUDGETCTL_DEBUG=1 shows the traceback)"
    )


def report(exc: BaseException) -> int:
    """Print ``exc`` for a person on stderr and return its exit code."""
    if isinstance(exc, _click.exceptions.NoArgsIsHelpError):
        # Help for a bare command: typer's rich help has already printed it; plain help is
        # the message. Either way it is help, not an error sentence.
        interrupts.to_stderr(
            exc.format_message().rstrip("\n") + "\n" if exc.format_message() else ""
        )
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):  # stdout's reader left: nothing to say on stdout
        return exit_code(exc)
    if debug() and not isinstance(exc, _click.exceptions.ClickException):
        traceback.print_exception(exc)
    interrupts.to_stderr(f"error: {message(exc)}\n")
    return exit_code(exc)
