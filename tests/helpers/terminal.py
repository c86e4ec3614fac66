"""Run the installed ``budgetctl`` in a real pseudo-terminal of a given size, as a person sees it.

CliRunner only pretends stdout is a terminal; here the process gets a pty for stdin, stdout and
stderr, with the window size set on it (``COLUMNS``/``LINES`` removed, so the program must ask the
terminal), ``TERM=xterm-256color``, and whatever it writes (colours included) is read back.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import NamedTuple

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Screen(NamedTuple):
    code: int
    raw: str  # what the program wrote, colour codes included (CRLF made LF)

    @property
    def text(self) -> str:
        """What a person reads: the colour codes removed."""
        return ANSI.sub("", self.raw)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def in_terminal(
    *args: str,
    columns: int,
    lines: int = 50,
    env: dict[str, str] | None = None,
    answer: str | None = None,
    timeout: float = 120,
) -> Screen:
    """``budgetctl ARGS`` on a ``columns`` x ``lines`` terminal; ``answer`` is typed once the
    program asks (a confirmation prompt)."""
    assert os.environ.get("BUDGETCTL_DATA_DIR"), "never the real user data dir"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    environment = {**os.environ, "TERM": "xterm-256color", "TZ": "UTC", **(env or {})}
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        if env is None or name not in env:
            environment.pop(name, None)
    process = subprocess.Popen(
        [str(BUDGETCTL), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    typed = answer is None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if not typed and b"?" in b"".join(chunks):
                    os.write(master, answer.encode())  # type: ignore[union-attr]
                    typed = True
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise TimeoutError(f"budgetctl {' '.join(args)} did not finish")
        code = process.wait(timeout=timeout)
    finally:
        os.close(master)
    return Screen(code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n"))
