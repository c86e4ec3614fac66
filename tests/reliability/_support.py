"""Helpers of the reliability suite, on top of tests/test_processes.py's worker and checks.

Project ``p`` in the test's data dir, as in tests/test_processes.py, whose ``spawn`` (the worker
tests/_worker.py), ``wait_for`` and ``consistent`` (the state loads, the history it counts has no
partial line, replay equals the balances) are reused here rather than written again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from test_processes import DEADLINE, consistent, spawn, wait_for

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
PROJECT = "p"
Counts = Callable[..., str]  # the ``counts`` fixture of tests/reliability/conftest.py

__all__ = [
    "BUDGETCTL",
    "DEADLINE",
    "PROJECT",
    "Counts",
    "children",
    "cli",
    "consistent",
    "counted_size",
    "spawn",
    "wait_for",
]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``budgetctl`` in project ``p``, bounded in time."""
    return subprocess.run(
        [str(BUDGETCTL), *args, "-p", PROJECT],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=DEADLINE,
        check=False,
    )


def counted_size(data_dir: Path) -> int:
    """How many bytes of history the state file counts."""
    size: int = json.loads((data_dir / f"{PROJECT}.json").read_bytes())["history"]["size"]
    return size


@contextmanager
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Children a test starts; any still running at the end are killed (by their own pid)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for child in started:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=DEADLINE)
