"""Where output goes: one JSON document, plain text, or colour on a terminal; problems to stderr.

``-q/--quiet`` prints nothing on success (cron mails only failures); warnings still go to
stderr. ``--json`` writes exactly one JSON document on stdout. On a terminal, output longer
than the screen goes through a pager (as git does); a reader that closes the pipe early
(``show | head -1``, ``| true``) loses only the output. Rich is imported only for a
progress bar on a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from budgetctl.cli import interrupts, plain
from budgetctl.cli.jsonout import dumps
from budgetctl.cli.report import Report

if TYPE_CHECKING:
    from rich.progress import Progress


def _is_terminal(stream: Any) -> bool:
    """``stream.isatty()``; False for a stream that is closed or missing (``>&-`` makes it None)."""
    try:
        return stream is not None and bool(stream.isatty())
    except (OSError, ValueError):
        return False


def stdout_is_terminal() -> bool:
    return _is_terminal(sys.stdout)


def stdin_is_terminal() -> bool:
    return _is_terminal(sys.stdin)


def stderr_is_terminal() -> bool:
    return _is_terminal(sys.stderr)


def pager_command() -> str | None:
    """The pager for output longer than the screen, as git chooses one: ``BUDGETCTL_PAGER``, else
    ``PAGER``, else ``less -FRX``; empty or ``cat`` means none."""
    command = os.environ.get("BUDGETCTL_PAGER")
    if command is None:
        command = os.environ.get("PAGER", "less -FRX")
    command = command.strip()
    return None if command in ("", "cat") else command


def page(text: str, command: str) -> bool:
    """Show ``text`` through the pager ``command``; False if it cannot be started (then the
    caller writes it itself). ``LESS=FRX`` is set when unset, as git does; Ctrl-C belongs to the
    pager while it runs."""
    import shlex
    import shutil
    import signal
    import subprocess

    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        return False
    if shutil.which(program) is None:
        return False
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    pager = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert pager.stdin is not None
        try:
            pager.stdin.write(text.encode(sys.stdout.encoding or "utf-8", "replace"))
            pager.stdin.close()
        except BrokenPipeError:  # the reader quit before the end: fine
            pass
        pager.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return True


class Output:
    """How one command invocation prints."""

    def __init__(self, *, as_json: bool = False, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet

    def show(self, report: Report) -> None:
        if self.quiet or interrupts.is_stdout_closed():
            return
        if sys.stdout is None:  # started with stdout closed (``>&-``): the output has nowhere to go
            interrupts.stdout_closed()
            return
        try:
            if self.as_json:
                sys.stdout.write(dumps(report.data) + "\n")
            elif stdout_is_terminal():
                self._terminal(report)
            else:
                plain.render(report.blocks, sys.stdout)
            sys.stdout.flush()
        except OSError:  # the reader left (``| head``, ``| true``), or a full or bad stdout
            interrupts.stdout_closed()  # (``> /dev/full``): the output is lost, the command goes on

    def raw(self, text: str) -> None:
        """``text`` as it is on stdout (a hold id for ``hold=$(...)``), even with ``-q``."""
        if interrupts.is_stdout_closed():
            return
        if sys.stdout is None:
            interrupts.stdout_closed()
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError:
            interrupts.stdout_closed()

    @staticmethod
    def to_stderr(report: Report) -> None:
        """A report as plain text on stderr (when stdout carries a value for a script)."""
        import io

        buffer = io.StringIO()
        plain.render(report.blocks, buffer)
        interrupts.to_stderr(buffer.getvalue())

    @staticmethod
    def _terminal(report: Report) -> None:
        """Coloured, fitted to the window, and paged when longer than the screen (as git)."""
        from budgetctl.cli import terminal

        window = terminal.size()
        text = terminal.render(report.blocks, window.columns)
        command = pager_command()
        if command is not None and text.count("\n") >= window.lines and page(text, command):
            return
        sys.stdout.write(text)

    def warn(self, message: str) -> None:
        """A warning goes to stderr even with ``-q``: quiet hides success chatter, not news a
        person must act on (over budget, a threshold crossed)."""
        interrupts.to_stderr(f"warning: {message}\n")

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
