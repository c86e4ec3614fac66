"""budgetctl's operations timed inside one process (no interpreter start, no imports).

Shows where a command's time goes at a given project size: ``charge`` (Ledger.charge_tokens: a
full locked, fsynced transaction), ``get`` (one user, as ``show USER``), ``view`` (every user,
as ``show``) and ``reset_due`` (every user due, one write; the project's files are restored
before each one, untimed). Prints one JSON object of lists of seconds.

usage: python budgetctl_inproc.py DATA_DIR PROJECT REPS RESET_DUE_NOW
"""

import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from budgetctl.ledger import Ledger

data_dir, project, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
reset_time = datetime.fromisoformat(sys.argv[4])
ledger = Ledger(project, data_dir)
user = ledger.users()[0]
ledger.charge_tokens(user, "gpt-4o", 1200, 300)  # warm-up: the price table loads once


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


result: dict[str, list[float]] = {"charge": [], "get": [], "view": [], "reset_due": []}
for _ in range(reps):
    result["charge"].append(timed(lambda: ledger.charge_tokens(user, "gpt-4o", 1200, 300)))
    result["get"].append(timed(lambda: ledger.get(user)))
    result["view"].append(timed(lambda: ledger.view()))
pristine = Path(tempfile.mkdtemp(prefix="budgetctl-inproc-"))
for name in (f"{project}.json", f"{project}+history.jsonl"):
    shutil.copy2(Path(data_dir) / name, pristine / name)
for _ in range(reps):
    for name in (f"{project}.json", f"{project}+history.jsonl"):
        shutil.copy2(pristine / name, Path(data_dir) / name)
    result["reset_due"].append(timed(lambda: ledger.reset_due(now=reset_time)))
shutil.rmtree(pristine)
print(json.dumps(result))
