"""Charges per second through budgetctl's Ledger in one process.

Each charge is one full transaction: lock, read the state, append the history and fsync it,
write a temp file, fsync, ``os.replace``, fsync the directory. Prints one JSON object:
``{"form": [batch seconds, ...], ...}`` for the forms ``tokens`` (``charge_tokens``) and
``text`` (``charge_text``, counting tokens with the bundled tokenizer).

usage: python budgetctl_throughput.py DATA_DIR PROJECT CHARGES_PER_BATCH BATCHES MODEL IN OUT
"""

import json
import sys
import time

from budgetctl.ledger import Ledger

data_dir, project = sys.argv[1], sys.argv[2]
per_batch, batches = int(sys.argv[3]), int(sys.argv[4])
model, input_text, output_text = sys.argv[5:8]
ledger = Ledger(project, data_dir)
users = ledger.users()


def tokens(user: str) -> None:
    ledger.charge_tokens(user, model, 1200, 300)


def text(user: str) -> None:
    ledger.charge_text(user, model, input_text, output_text)


result = {}
for name, charge in (("tokens", tokens), ("text", text)):
    charge(users[0])  # warm-up: the price table (and the tokenizer) load once
    seconds = []
    for batch in range(batches):
        start = time.perf_counter()
        for i in range(per_batch):
            charge(users[(batch * per_batch + i) % len(users)])
        seconds.append(time.perf_counter() - start)
    result[name] = seconds
result["charges_per_batch"] = per_batch
print(json.dumps(result))
