"""An exclusive, timed lock on a project, held across every read-modify-write.

``flock`` on a lock file beside the state file: the kernel releases it when its holder exits,
however it exits (kill -9 included), so a dead holder never blocks the next command. The lock file
is never deleted (deleting it would let two processes lock two different files).
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

from budgetctl.errors import LockTimeoutError, StorageIOError, UsageError

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


@contextmanager
def exclusive(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600 if missing) for the ``with`` block."""
    wait = lock_timeout() if timeout is None else timeout
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageIOError(path, f"cannot open lock file ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + wait
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StorageIOError(path, f"cannot lock ({exc.strerror})") from None
            if time.monotonic() >= deadline:
                raise LockTimeoutError(path, wait)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
