"""A client-mode worker for the server load and kill -9 tests (tests/test_server_load.py).

    python tests/_serve_worker.py PROJECT WORKER OPS SEED

The server is ``BUDGETCTL_SERVER`` (+ ``BUDGETCTL_SERVER_TOKEN``); the process has its own
:class:`~budgetctl.client.remote.RemoteLedger`. Operation ``i`` has the request id ``wWORKER-i``:
even ones charge user ``spend`` a cost, odd ones reserve ``HOLD`` of user ``held``'s budget and,
when the hold is granted, commit an actual cost of at most the hold (with the request id) or
release it. A call the server does not answer (it is down, or killed mid-request) is retried with
the same request id until it is answered, so each id is charged at most once whatever happened.

Lines, flushed, printed only once the server acknowledged the call:
``ack ID COST`` (charged or committed; ``dup`` appended when the server said duplicate),
``refused`` (the hold did not fit), ``released HOLD_ID``; ``retry ID`` after an unanswered call;
``done`` at the end.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from decimal import Decimal
from functools import partial
from typing import TypeVar

from budgetctl import Ledger
from budgetctl.client.remote import RemoteLedger
from budgetctl.errors import LockLostError, LockTimeoutError, StorageIOError, UnknownHoldError

HOLD = Decimal("0.05")
COSTS = [Decimal(x) for x in ("0.01", "0.013", "0.0275", "0.000123", "0.05")]
DEADLINE = 50.0  # seconds: a worker that cannot finish by then says so (exit 3)
T = TypeVar("T")


def say(line: str) -> None:
    print(line, flush=True)


def until_answered(what: str, call: Callable[[], T], started: float) -> T:
    """``call()`` until the server answers it (a retry is safe: the same request id)."""
    while True:
        try:
            return call()
        except (StorageIOError, LockTimeoutError, LockLostError):
            if time.monotonic() - started > DEADLINE:
                say(f"gave up {what}")
                sys.exit(3)
            say(f"retry {what}")
            time.sleep(0.05)


def release(book: Ledger, hold_id: str) -> None:
    with suppress(UnknownHoldError):  # released by a try whose answer was lost
        book.release([hold_id])


def main(project: str, worker: str, ops: int, seed: int) -> None:
    rng = random.Random(seed)
    book = Ledger(project)
    assert isinstance(book, RemoteLedger), book  # client mode: BUDGETCTL_SERVER is set
    started = time.monotonic()
    for i in range(ops):
        rid = f"w{worker}-{i}"
        if i % 2 == 0:
            cost = rng.choice(COSTS)
            charge = partial(book.charge_cost, "spend", cost, request_id=rid)
            result = until_answered(rid, charge, started)
            say(f"ack {rid} {cost}" + (" dup" if result.duplicate else ""))
            continue
        held = until_answered(rid, partial(book.reserve, "held", HOLD, ttl="120s"), started)
        if held.hold is None:
            say("refused")
            continue
        hold_id = held.hold.hold_id
        time.sleep(rng.uniform(0, 0.004))  # the call
        if rng.random() < 0.25:
            until_answered(rid, partial(release, book, hold_id), started)
            say(f"released {hold_id}")
            continue
        actual = (HOLD * Decimal(rng.choice((1, 10, 40, 100))) / 100).normalize()
        commit = partial(book.commit, hold_id, "held", actual, request_id=rid)
        result = until_answered(rid, commit, started)
        say(f"ack {rid} {actual}" + (" dup" if result.duplicate else ""))
    say("done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
