"""Where output goes: one JSON document, plain text, or rich on a terminal; problems to stderr.

``-q/--quiet`` prints nothing on success (cron mails only failures); warnings still go to
stderr. ``--json`` writes exactly one JSON document on stdout. Rich is imported only when
stdout is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from budgetctl.cli import interrupts, plain
from budgetctl.cli.jsonout import dumps
from budgetctl.cli.report import Line, Report

if TYPE_CHECKING:
    from rich.progress import Progress


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def needs_rich(report: Report) -> bool:
    """Tables, charts and coloured lines need rich; plain sentences print as they are (a one-line
    answer at a terminal should not pay ~20 ms to import rich)."""
    return any(not isinstance(b, Line) or b.tone not in (None, "ok") for b in report.blocks)


class Output:
    """How one command invocation prints."""

    def __init__(self, *, as_json: bool = False, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet

    def show(self, report: Report) -> None:
        if self.quiet or interrupts.is_stdout_closed():
            return
        try:
            if self.as_json:
                sys.stdout.write(dumps(report.data) + "\n")
            elif stdout_is_terminal() and needs_rich(report):
                from budgetctl.cli import richui

                richui.render(report.blocks, sys.stdout)
            else:
                plain.render(report.blocks, sys.stdout)
            sys.stdout.flush()  # a closed pipe fails here, not at exit after the exit code
        except BrokenPipeError:  # the reader left (``| head``, ``| true``): the command goes on
            interrupts.stdout_closed()

    def warn(self, message: str) -> None:
        """A warning goes to stderr even with ``-q``: quiet hides success chatter, not news a
        person must act on (over budget, a threshold crossed)."""
        sys.stderr.write(f"warning: {message}\n")

    @contextmanager
    def progress(self, description: str, minimum: int = 2) -> Iterator[Callable[[int, int], None]]:
        """A ``(done, total)`` callback that draws a bar on a terminal once ``total`` reaches
        ``minimum``; in a pipe, in cron or with ``--quiet`` it does nothing."""
        if self.quiet or not stderr_is_terminal():
            yield lambda done, total: None
            return
        bars: list[Progress] = []

        def advance(done: int, total: int) -> None:
            if not bars:
                if total < minimum:
                    return
                from budgetctl.cli import richui

                bars.append(richui.progress(description, total))
                bars[0].start()
            bars[0].update(bars[0].task_ids[0], completed=done, total=total)

        try:
            yield advance
        finally:
            if bars:
                bars[0].stop()
