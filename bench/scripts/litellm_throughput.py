"""Charges per second through LiteLLM's BudgetManager in one process: update_cost + save_data.

Runs in bench/.venv-litellm with ``./user_cost.json``. Each charge is ``update_cost`` (text form;
it starts a background save thread) and then ``save_data()``; a batch ends when every save thread
it started has finished, so the batch pays for all the writing it caused. Prints one JSON object:
``{"batch_seconds": [...], "charges_per_batch": N}``.

usage: python litellm_throughput.py CHARGES_PER_BATCH BATCHES MODEL INPUT_TEXT OUTPUT_TEXT
"""

import json
import sys
import threading
import time

from litellm import BudgetManager

per_batch, batches = int(sys.argv[1]), int(sys.argv[2])
model, input_text, output_text = sys.argv[3:6]
manager = BudgetManager(project_name="bench")
users = manager.get_users()


def join_savers() -> None:
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join()


# warm-up: the first token count loads the tokenizer
manager.update_cost(user=users[0], model=model, input_text=input_text, output_text=output_text)
manager.save_data()
join_savers()
seconds = []
for batch in range(batches):
    start = time.perf_counter()
    for i in range(per_batch):
        user = users[(batch * per_batch + i) % len(users)]
        manager.update_cost(user=user, model=model, input_text=input_text, output_text=output_text)
        manager.save_data()
    join_savers()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"batch_seconds": seconds, "charges_per_batch": per_batch}))
