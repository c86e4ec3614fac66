"""Opening the store's files safely: in a data dir nobody else can write, never through a
symbolic link, only regular files we own.

A data dir that another user can write lets them put a symlink where a project's file will be
opened, and the next writer (root's cron, say) truncates or appends to whatever it points at. So:

- the data dir must be a directory owned by us that neither group nor others can write
  (:func:`check_dir`); missing directories are created 0700, every one of them (:func:`make_dirs`);
- every file is opened with ``O_NOFOLLOW`` (a symlink is an error, not followed) and
  ``O_NONBLOCK`` (a FIFO in its place fails or opens at once instead of hanging), then checked
  with ``fstat``: a regular file owned by us (:func:`open_file`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from budgetctl.errors import StorageIOError

_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LINK_ERRORS = (errno.ELOOP, errno.EMLINK)  # what O_NOFOLLOW gives on a link (Linux, BSDs)
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symbolic link",
}
MOVE_ASIDE = "move it aside; budgetctl only uses regular files it owns"


def check_dir(path: Path) -> None:
    """Refuse a data dir that is not a directory we own that only we can write.

    FileNotFoundError when there is none (the caller knows whether that is an error).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageIOError(path, f"cannot read the data directory ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StorageIOError(
            path, "is not a directory", "give a folder as --data-dir/BUDGETCTL_DATA_DIR"
        )
    if info.st_uid != os.geteuid():
        raise StorageIOError(
            path,
            f"the data directory is owned by user id {info.st_uid}, not by you ({os.geteuid()})",
            "use a data directory of your own (--data-dir/BUDGETCTL_DATA_DIR)",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(info.st_mode)
        raise StorageIOError(
            path,
            f"the data directory can be written by other users (mode {mode:04o}), who could "
            "replace budgetctl's files",
            f"make it private with 'chmod go-w {path}' (budgetctl creates it 0700)",
        )


def make_dirs(path: Path) -> None:
    """Create ``path`` and every missing parent, each 0700 (not only the last one)."""
    missing = []
    folder = path
    while not os.path.lexists(folder):
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageIOError(
                folder, f"cannot create the data directory ({exc.strerror})"
            ) from None


def open_file(path: Path | str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` without following a symlink or blocking on a FIFO; the file must be a regular
    file owned by us. StorageIOError if it is not; other OSErrors (FileNotFoundError...) as
    they are, for the caller to word."""
    try:
        fd = os.open(path, flags | _SAFE, mode)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise StorageIOError(
                path, "is a symbolic link, which budgetctl does not follow", MOVE_ASIDE
            ) from None
        if exc.errno == errno.ENXIO:  # a FIFO with no reader, or a socket
            raise StorageIOError(
                path, "is not a regular file (a FIFO or a socket)", MOVE_ASIDE
            ) from None
        raise
    try:
        check_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_fd(fd: int, path: Path | str) -> os.stat_result:
    """The ``fstat`` of ``fd``, which must be a regular file owned by us."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise StorageIOError(path, f"is {kind}, not a regular file", MOVE_ASIDE)
    if info.st_uid != os.geteuid():
        raise StorageIOError(
            path, f"is owned by user id {info.st_uid}, not by you ({os.geteuid()})", MOVE_ASIDE
        )
    return info


def open_first(paths: Sequence[Path], flags: int) -> tuple[int, Path]:
    """The first of ``paths`` that exists, opened with :func:`open_file` (read-only uses).

    Tried twice: a writer may rename an old name to a new one between two tries.
    FileNotFoundError when none exists.
    """
    for _ in range(2):
        for path in paths:
            try:
                return open_file(path, flags), path
            except FileNotFoundError:
                continue
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(paths[0]))


def read_all(fd: int) -> bytes:
    """Everything in the open file ``fd`` (closed afterwards)."""
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


# --- writing safely ------------------------------------------------------------------------------


def copy_tail(fd: int, start: int, target: Path) -> int:
    """Copy ``fd``'s bytes from ``start`` into the new file ``target`` (fsynced); their lines."""
    out = open_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        lines = each_chunk(fd, start, lambda chunk: write_all(out, chunk))
        os.fsync(out)
    except BaseException:
        with suppress(OSError):
            os.unlink(target)  # a partial copy: the tail is still in the history
        raise
    finally:
        os.close(out)
    return lines


def each_chunk(fd: int, start: int, use: Callable[[bytes], None] | None = None) -> int:
    """Pass ``fd``'s bytes from ``start`` to ``use``, a MiB at a time; how many lines they are
    (a last line cut short counts)."""
    lines, offset, last = 0, start, b"\n"
    while chunk := os.pread(fd, 1 << 20, offset):
        if use is not None:
            use(chunk)
        lines += chunk.count(b"\n")
        offset += len(chunk)
        last = chunk[-1:]
    return lines + (last != b"\n")


def count_lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def inode(path: Path) -> int | None:
    """The inode ``path`` names now (``os.replace`` of the state gives it a new one), or None."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
