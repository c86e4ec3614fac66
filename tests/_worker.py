"""A budgetctl client process for tests/test_processes.py (data dir from BUDGETCTL_DATA_DIR).

    python tests/_worker.py charge PROJECT USER COST COUNT TAG   charge COUNT times, exit 0
    python tests/_worker.py try PROJECT USER COST COUNT TAG      the same; exit-5 errors are noted
    python tests/_worker.py loop PROJECT USER COST TAG           charge until killed
    python tests/_worker.py hold PROJECT                         lock the data dir until killed
    python tests/_worker.py reset-due PROJECT TIME               Ledger.reset_due(now=TIME)

(``reset-due`` is the library call: the command line refuses a ``--now`` later than the clock,
and a test that races charges against periods closing cannot wait days for them to end.)

Every charge carries the request id ``TAG-<n>``; after it returns, the worker prints ``done <id>``
(flushed), so the test knows which charges were acknowledged before it killed the worker; in
``try`` mode, a charge that fails with an exit-5 error (busy: nothing changed) prints ``busy <id>``
and the worker goes on.
"""

from __future__ import annotations

import sys
import time

from budgetctl import Ledger
from budgetctl.errors import BudgetctlError
from budgetctl.store import lock
from budgetctl.store.json_store import JsonStore


def charge(project: str, user: str, cost: str, count: int, tag: str, busy_ok: bool = False) -> None:
    ledger = Ledger(project, lock_timeout=60)
    print("ready", flush=True)
    n = 0
    while count < 0 or n < count:
        rid = f"{tag}-{n}"
        try:
            result = ledger.charge_cost(user, cost, request_id=rid)
        except BudgetctlError as exc:
            if not (busy_ok and exc.exit_code == 5):  # busy: nothing changed, safe to retry
                raise
            print(f"busy {rid}", flush=True)
        else:
            assert not result.duplicate, rid
            print(f"done {rid}", flush=True)
        n += 1


def hold(project: str) -> None:
    store = Ledger(project).store
    assert isinstance(store, JsonStore)
    with lock.exclusive(store.data_dir, timeout=10):
        print("locked", flush=True)
        time.sleep(120)  # until the test kills this process


def reset_due(project: str, moment: str) -> None:
    from budgetctl.core.periods import parse_datetime

    Ledger(project, lock_timeout=60).reset_due(now=parse_datetime(moment))


def main(argv: list[str]) -> None:
    mode, project, *rest = argv
    if mode == "charge":
        user, cost, count, tag = rest
        charge(project, user, cost, int(count), tag)
    elif mode == "try":
        user, cost, count, tag = rest
        charge(project, user, cost, int(count), tag, busy_ok=True)
    elif mode == "loop":
        user, cost, tag = rest
        charge(project, user, cost, -1, tag)
    elif mode == "hold":
        hold(project)
    elif mode == "reset-due":
        reset_due(project, *rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
