"""An exclusive, timed lock on a data dir, held across every read-modify-write of its projects.

``flock`` on the data directory itself (opened ``O_RDONLY | O_DIRECTORY``): the kernel releases it
when its holder exits, however it exits (kill -9 included), so a dead holder never blocks the next
command. budgetctl 0.1 and earlier builds locked a file beside the state instead; anyone could
delete it, and processes that had opened the old file then locked a different file than those that
opened the new one, so two writers ran at once (no check of the file's inode closes that window).
Deleting files cannot take a directory's lock away. What remains is the data dir itself being
moved or replaced: a lock counts only if, once taken, the path still names the very directory
locked, and a holder checks it still does before it changes anything (:meth:`Held.check`).

One lock for the whole data dir: writers of different projects take turns too (each one is
bound by its fsyncs anyway). Readers and dry runs never lock.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from budgetctl.errors import LockLostError, LockTimeoutError, StorageIOError, UsageError

DEFAULT_TIMEOUT = 10.0


def lock_timeout() -> float:
    """Seconds to wait for a busy project: ``BUDGETCTL_LOCK_TIMEOUT``, else 10.

    A value that is not a finite number of seconds >= 0 (``abc``, ``-1``, ``nan``, ``inf``) is a
    usage error: silently waiting 10 s (or for ever) instead of what was asked is not.
    """
    raw = os.environ.get("BUDGETCTL_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    return check_timeout(value, f"BUDGETCTL_LOCK_TIMEOUT={raw[:40]!r}")


def check_timeout(value: float, what: str = "lock timeout") -> float:
    """``value`` if it is a finite number of seconds >= 0, else a UsageError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{what} is not a number of seconds >= 0 (such as 10 or 0.5)")
    return float(value)


class Held:
    """The lock a ``with exclusive(...)`` block holds, on the data dir ``path``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def check(self) -> None:
        """Raise LockLostError if the data dir was moved or replaced while held: another process
        may then hold the lock of the directory now at its path. Called before changing
        anything."""
        if not _still_named(self.fd, self.path):
            raise LockLostError(self.path)


@contextmanager
def exclusive(path: Path, timeout: float | None = None) -> Iterator[Held]:
    """Hold an exclusive lock on the existing directory ``path`` for the ``with`` block.

    Once locked, if ``path`` no longer names the directory locked (it was moved or replaced
    meanwhile), the lock is worthless: the directory at ``path`` is opened and locked instead.
    """
    wait = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + wait
    delay = 0.001
    fd = _open(path)
    try:
        while True:
            if _try_lock(fd, path):
                if _still_named(fd, path):
                    break
                os.close(fd)  # locked a directory that is no longer the data dir: start again
                fd = -1
                fd = _open(path)
                continue
            if time.monotonic() >= deadline:
                raise LockTimeoutError(path, wait)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield Held(path, fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        if fd >= 0:
            os.close(fd)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StorageIOError(
            path, f"cannot open the data directory to lock it ({exc.strerror})"
        ) from None


def _try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StorageIOError(path, f"cannot lock ({exc.strerror})") from None
        return False


def _still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the directory open as ``fd`` (not moved, not replaced).

    A data dir given through a symlink is the directory it points at (as everywhere else)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageIOError(path, f"cannot check the data directory ({exc.strerror})") from None
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
