"""An exclusive, timed lock on a project, held across every read-modify-write.

``flock`` on a lock file beside the state file: the kernel releases it when its holder exits,
however it exits (kill -9 included), so a dead holder never blocks the next command. The lock file
is never deleted (deleting it would let two processes lock two different files).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from budgetctl.errors import LockTimeoutError, StorageIOError

DEFAULT_TIMEOUT = 10.0


def lock_timeout() -> float:
    """Seconds to wait for a busy project: ``BUDGETCTL_LOCK_TIMEOUT``, else 10."""
    raw = os.environ.get("BUDGETCTL_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value >= 0 else DEFAULT_TIMEOUT


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
