"""Shared by the PostgreSQL many-hosts and fault tests: worker processes and the ledger checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

from test_holds_race import Child

from budgetctl import Ledger
from budgetctl.core import events, rules

WORKER = Path(__file__).with_name("_pg_worker.py")
REPO = Path(__file__).resolve().parent.parent


class Host(Child):
    """A tests/_pg_worker.py process: a host with its own Ledger and connection."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.buffer = b""
        self.lines = []


def acknowledged(lines: list[str]) -> dict[str, str]:
    """Request id -> user of every charge a worker printed as done (``ok`` or ``duplicate``)."""
    found: dict[str, str] = {}
    for line in lines:
        word, *rest = line.split()
        if word in ("ok", "duplicate"):
            found[rest[0]] = rest[1]
    return found


def in_flight(lines: list[str]) -> tuple[str, str] | None:
    """The (id, user) a killed ``loop`` worker was charging and had not acknowledged, if any."""
    last = None
    done = acknowledged(lines)
    for line in lines:
        if line.startswith("charging "):
            _, request_id, user = line.split()
            last = (request_id, user)
    if last is None or last[0] in done:
        return None
    return last


def checked(book: Ledger) -> tuple[list[events.Event], dict[str, Decimal], Counter[str]]:
    """The project's history (oldest first), its stored balances (the cap's under rules.CAP), and
    how many times each request id was charged; asserts the balances equal the history's replay."""
    history = list(reversed(book.history()))
    view = book.view()
    balances = {budget.user: budget.current_cost for budget in view.users}
    if view.cap is not None:
        balances[rules.CAP] = view.cap.current_cost
    assert balances == rules.replay(history), "the balances differ from the history's replay"
    charged = Counter(
        event.request_id
        for event in history
        if isinstance(event, (events.Charge, events.Commit)) and event.request_id is not None
    )
    twice = [key for key, n in charged.items() if n > 1]
    assert not twice, f"request ids charged more than once: {twice[:10]}"
    return history, balances, charged
