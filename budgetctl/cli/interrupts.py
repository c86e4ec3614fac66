"""Ctrl-C, SIGTERM and a closed stdout: the exit code tells the truth about the change.

Before a command commits its change (:mod:`budgetctl.commits`), an interrupt stops it and
nothing has changed: exit 130 (SIGINT) or 143 (SIGTERM), one line on stderr. From the start of the
commit on, an interrupt is only noted: the command finishes, exits 0 and says on stderr that the
change stands, because a caller who saw a failure would retry and charge twice. Likewise a
stdout closed under a command (``budgetctl update-cost ... | true``) loses the output, not the
exit code. Never a traceback, during start-up included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from budgetctl import commits

if TYPE_CHECKING:
    import signal
    from types import FrameType
else:
    try:  # the C module: ``import signal`` builds enums of every signal first (about 1 ms)
        import _signal as signal
    except ImportError:  # an interpreter without it
        import signal

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Interrupted(BaseException):
    """SIGINT or SIGTERM before the commit. Not ``KeyboardInterrupt``, which click turns into an
    ``Abort`` (exit 1); a ``BaseException``, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED

    @property
    def message(self) -> str:
        what = "terminated" if self.signum == signal.SIGTERM else "interrupted"
        return f"{what}; nothing changed"


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"permanent": False, "finished": False, "stdout_closed": False}
_requested: list[int] = []  # the signal that stopped the command (before any commit)
_pending: list[int] = []  # signals that came too late to stop it


def _handler(signum: int, frame: FrameType | None) -> None:
    if commits.committing() or _state["finished"] or _requested:
        _pending.append(signum)  # too late to stop: the change stands, or it is stopping already
        return
    _requested.append(signum)
    raise Interrupted(signum)


def _before_commit() -> None:
    """A stop that was asked for must not let a commit through: the ``Interrupted`` raised by the
    handler is lost when it lands in a ``__del__`` or a weakref callback (Python only reports
    it), so the commit itself checks."""
    if _requested and not _state["finished"]:
        raise Interrupted(_requested[0])


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """An interrupt that landed where Python cannot raise it (a finalizer) is kept in
    ``_requested`` and acted on at the next commit or at the end: no "Exception ignored"
    traceback for it."""
    if isinstance(unraisable.exc_value, (Interrupted, KeyboardInterrupt)):
        return
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """For the console script, once its command is built: handlers for the whole process."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    _state["permanent"] = True


@contextmanager
def guarded() -> Iterator[None]:
    """One command's run: fresh marks, and (in-process, as in tests) handlers while it runs."""
    previous: dict[int, object] = {}
    if not _state["permanent"]:  # in-process (tests): each run starts afresh
        commits.reset()
        _pending.clear()
        _requested.clear()
        _state.update(finished=False, stdout_closed=False)
        try:
            previous = {number: signal.signal(number, _handler) for number in _SIGNALS}
        except ValueError:  # not the main thread: leave the process's handlers alone
            previous = {}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable
    commits.checks.append(_before_commit)
    try:
        yield
    finally:
        commits.checks.remove(_before_commit)
        sys.unraisablehook = previous_hook
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]


def stopped_quietly() -> Interrupted | None:
    """A stop that was asked for, lost in a finalizer, in a command that then committed nothing:
    the command is reported as interrupted all the same."""
    if _requested and not commits.committed():
        return Interrupted(_requested[0])
    return None


def finish() -> None:
    """The exit code is decided: later signals are only noted, and in the console script they
    are ignored from here on, since at exit the interpreter restores the default action of a
    handler it installed (which would kill a process whose change was saved: exit -2)."""
    _state["finished"] = True
    if _state["permanent"]:
        for number in _SIGNALS:
            signal.signal(number, signal.SIG_IGN)


def exit_code(exc: BaseException) -> int | None:
    """The exit code of an interrupt or a closed stdout, or None for other exceptions."""
    if isinstance(exc, (KeyboardInterrupt, Interrupted, BrokenPipeError)) and commits.committed():
        return 0  # the change stands; say so and do not invite a retry
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, Interrupted):
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        stdout_closed()
        return 0  # a reader that stopped reading (``| head``) is not a failure
    return None


def stdout_closed() -> None:
    """stdout's reader went away: drop what is buffered and write nothing more there."""
    _state["stdout_closed"] = True
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)  # so the flush at exit has somewhere to go
    finally:
        os.close(devnull)


def to_stderr(text: str) -> None:
    """Write ``text`` to stderr, if it can be written: a full or closed stderr (``2>/dev/full``,
    ``2>&-``) loses the sentence, never the command's exit code (its change may be saved)."""
    stream = sys.stderr
    try:
        if stream is None:
            return
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        with suppress(AttributeError, OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())  # so the flush at exit has somewhere to go
            finally:
                os.close(devnull)


def is_stdout_closed() -> bool:
    return _state["stdout_closed"]


def after_commit_notes() -> list[str]:
    """What to tell a person on stderr when a committed change met an interrupt or lost stdout."""
    if not commits.committed():
        return []
    notes = []
    if _pending:
        notes.append(
            "interrupted after the change was saved: it stands (exit 0), do not run it again"
        )
    if _state["stdout_closed"]:
        notes.append(
            "stdout was closed or full, so the output was lost; the change was saved all the same"
        )
    return notes
