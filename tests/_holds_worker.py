"""A client process that reserves and commits, for the holds race and kill -9 tests.

    python tests/_holds_worker.py race PROJECT USER COST ROUNDS SEED
    python tests/_holds_worker.py loop PROJECT USER COST SEED

(data dir from BUDGETCTL_DATA_DIR; each process has its own ``Ledger``.)

``race``: prints ``ready``, waits for a line on stdin, reserves COST once and prints ``held ID``
or ``refused``; waits for another line, releases that hold, then runs ROUNDS rounds of reserve
COST -> sleep a few ms -> commit an actual cost <= COST, or release; prints ``done``.

``loop``: prints ``ready``, then reserve -> commit or release, until killed. Before each call it
prints ``reserving``, ``committing ID`` or ``releasing ID``, so the test knows which call a kill
interrupted.

After each call returns: ``held ID``, ``refused``, ``committed ID COST`` or ``released ID``
(every line flushed, so what a killed worker printed was acknowledged before the kill).
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal

from budgetctl import Ledger


def say(line: str) -> None:
    print(line, flush=True)


def reserve(book: Ledger, user: str, cost: Decimal) -> str | None:
    result = book.reserve(user, cost)
    if result.hold is None:
        say("refused")
        return None
    say(f"held {result.hold.hold_id}")
    return result.hold.hold_id


def settle(book: Ledger, user: str, hold_id: str, cost: Decimal, rng: random.Random) -> None:
    """Commit an actual cost of at most the hold (2 times in 3), or release it."""
    if rng.random() < 1 / 3:
        say(f"releasing {hold_id}")
        book.release([hold_id])
        say(f"released {hold_id}")
        return
    actual = (cost * Decimal(rng.choice((0, 1, 2, 5, 10, 20))) / 100).normalize()
    say(f"committing {hold_id}")
    result = book.commit(hold_id, user, actual)
    assert result.held == cost and not result.duplicate, result
    say(f"committed {hold_id} {actual}")


def race(project: str, user: str, cost: Decimal, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    book = Ledger(project, lock_timeout=60)
    say("ready")
    sys.stdin.readline()
    first = reserve(book, user, cost)
    sys.stdin.readline()  # every worker has answered: settle
    if first is not None:
        book.release([first])
        say(f"released {first}")
    for _ in range(rounds):
        hold_id = reserve(book, user, cost)
        if hold_id is None:
            time.sleep(rng.uniform(0, 0.005))
            continue
        time.sleep(rng.uniform(0, 0.005))  # the call
        settle(book, user, hold_id, cost, rng)
    say("done")


def loop(project: str, user: str, cost: Decimal, seed: int) -> None:
    rng = random.Random(seed)
    book = Ledger(project, lock_timeout=60)
    say("ready")
    while True:
        say("reserving")
        hold_id = reserve(book, user, cost)
        if hold_id is not None:
            settle(book, user, hold_id, cost, rng)


def main(argv: list[str]) -> None:
    mode, project, user, cost, *rest = argv
    if mode == "race":
        race(project, user, Decimal(cost), int(rest[0]), int(rest[1]))
    elif mode == "loop":
        loop(project, user, Decimal(cost), int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
