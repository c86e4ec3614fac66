"""A client process on a PostgreSQL ledger, for the many-hosts and fault tests.

    python tests/_pg_worker.py charge URL PROJECT USERS COUNT COST PREFIX SEED
    python tests/_pg_worker.py loop URL PROJECT USERS COST PREFIX SEED
    python tests/_pg_worker.py retry URL PROJECT USER COST ID...
    python tests/_pg_worker.py reset-due URL PROJECT NOW
    python tests/_pg_worker.py charge-at URL PROJECT USERS COUNT COST PREFIX SEED NOW

Each process is a host: its own ``Ledger(project, database_url=URL)`` and its own connection.
USERS is one name, or ``N*PREFIX`` for the users PREFIX0 .. PREFIX{N-1}, picked at random (SEED).

``charge``: prints ``ready``, waits for a line on stdin, then charges COST COUNT times with the
request ids PREFIX-0, PREFIX-1, ...; after each charge returns, prints ``ok ID USER``; then
``done``. ``loop``: the same without end (until killed), ``charging ID USER`` before each call.
A charge the database cannot take (the server restarting) prints ``failed ID`` and is tried
again with the same id after a short pause, so a retried id is never charged twice.
``retry``: charges each ID once more (a client that lost its answer), prints ``ok ID USER`` or
``duplicate ID USER``.
``reset-due``: prints ``ready``, waits for a line, runs ``reset_due(now=NOW)`` and prints
``closed USER SPENT`` per closed period, ``cap SPENT`` for the cap's, then ``done``.
``charge-at``: ``charge`` with the ledger's clock fixed at NOW (ISO 8601).

    python tests/_pg_worker.py squeeze URL PROJECT USER COST ROLE

``squeeze``: prints ``ready``, waits for a line, then spends COST on USER's budget until it is
refused 20 times in a row: as ROLE ``charge``, a charge with ``enforce`` (no request id: the
one-statement path); as ROLE ``hold``, a hold of COST committed at once. Prints ``charged``,
``committed`` or ``refused`` for each try, then ``done``.

Every line is flushed: what a killed worker printed was acknowledged before the kill.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from budgetctl import Ledger
from budgetctl.errors import StorageIOError


def say(line: str) -> None:
    print(line, flush=True)


def picker(users: str, seed: int) -> Callable[[], str]:
    if "*" not in users:
        return lambda: users
    count, prefix = users.split("*", 1)
    rng = random.Random(seed)
    return lambda: f"{prefix}{rng.randrange(int(count))}"


def charge_once(book: Ledger, user: str, cost: Decimal, request_id: str) -> None:
    """Charge until the database takes it (the same request id each time)."""
    while True:
        try:
            result = book.charge_cost(user, cost, request_id=request_id)
        except StorageIOError:
            say(f"failed {request_id}")
            time.sleep(0.2)
            continue
        say(f"{'duplicate' if result.duplicate else 'ok'} {request_id} {user}")
        return


def charge(book: Ledger, users: str, count: int | None, cost: str, prefix: str, seed: int) -> None:
    pick = picker(users, seed)
    amount = Decimal(cost)
    say("ready")
    if count is not None:
        sys.stdin.readline()
    n = 0
    while count is None or n < count:
        user = pick()
        request_id = f"{prefix}-{n}"
        if count is None:
            say(f"charging {request_id} {user}")
        charge_once(book, user, amount, request_id)
        n += 1
    say("done")


def squeeze(book: Ledger, user: str, cost: str, role: str) -> None:
    from datetime import timedelta

    from budgetctl.errors import BudgetExceededError

    amount = Decimal(cost)
    say("ready")
    sys.stdin.readline()
    refused = 0
    while refused < 20:
        if role == "charge":
            try:
                book.charge_cost(user, amount, enforce=True)
            except BudgetExceededError:
                refused += 1
                say("refused")
                continue
            say("charged")
        else:
            placed = book.reserve(user, amount, ttl=timedelta(minutes=10))
            if placed.hold is None:
                refused += 1
                say("refused")
                continue
            book.commit(placed.hold.hold_id, user, amount)
            say("committed")
        refused = 0
    say("done")


def main(argv: list[str]) -> None:
    mode, url, project, *rest = argv
    if mode == "charge":
        users, count, cost, prefix, seed = rest
        charge(Ledger(project, database_url=url), users, int(count), cost, prefix, int(seed))
    elif mode == "charge-at":
        users, count, cost, prefix, seed, now = rest
        moment = datetime.fromisoformat(now)
        book = Ledger(project, database_url=url, clock=lambda: moment)
        charge(book, users, int(count), cost, prefix, int(seed))
    elif mode == "loop":
        users, cost, prefix, seed = rest
        charge(Ledger(project, database_url=url), users, None, cost, prefix, int(seed))
    elif mode == "retry":
        user, cost, *ids = rest
        book = Ledger(project, database_url=url)
        for request_id in ids:
            charge_once(book, user, Decimal(cost), request_id)
        say("done")
    elif mode == "squeeze":
        user, cost, role = rest
        squeeze(Ledger(project, database_url=url), user, cost, role)
    elif mode == "reset-due":
        (now,) = rest
        book = Ledger(project, database_url=url)
        say("ready")
        sys.stdin.readline()
        result = book.reset_due(now=datetime.fromisoformat(now))
        for user, closed in result.reset:
            say(f"closed {user} {closed.spent}")
        if result.cap is not None:
            say(f"cap {result.cap.spent}")
        say("done")
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
