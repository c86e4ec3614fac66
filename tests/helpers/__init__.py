"""Small shared test helpers: a hand-moved clock and file fingerprints."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

T0 = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand (``clock.now += timedelta(...)``); tests never sleep."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def digest(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` with the sha256 of its bytes."""
    return {path.name: digest(path) for path in sorted(folder.iterdir()) if path.is_file()}
