"""Whether this process has made a change durable, for callers that must never report a change
that happened as one that did not.

A store marks the one call that makes a change visible to every reader (the JSON store's
``os.replace`` of the state or prices file) with :func:`point`. The command line reads the marks:
an interrupt that arrives from the start of that call on is deferred, and the command exits 0
rather than 130, so a caller who retries does not charge twice (issue 8, item 9). No signal
handling here: the library only records where the commit is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_window = [False]  # inside the committing call (it may or may not have happened yet)
_done = [False]  # a change was committed since the last reset()
checks: list[Callable[[], None]] = []  # run just before a commit; one may raise to stop it


@contextmanager
def point() -> Iterator[None]:
    """Around the call that commits a change; it counts as committed if the block completes."""
    for check in checks:
        check()
    _window[0] = True
    try:
        yield
        _done[0] = True
    finally:
        _window[0] = False


def committing() -> bool:
    """True from the start of a commit on: an interrupt now cannot undo what may have happened."""
    return _window[0] or _done[0]


def committed() -> bool:
    """True when a change was committed since :func:`reset`."""
    return _done[0]


def reset() -> None:
    """Forget earlier commits (a new command in the same process, as in tests)."""
    _window[0] = _done[0] = False
