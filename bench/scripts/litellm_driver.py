"""LiteLLM's side of bench/differential.py: its BudgetManager, driven line by line on stdin.

Runs in bench/.venv-litellm. One JSON request a line, one JSON answer a line:

- ``{"op": "new", "dir": D, "t": T}``: a fresh ``BudgetManager`` working in D (LiteLLM keeps
  ``user_cost.json`` in the working directory) with the clock at T;
- ``{"op": "clock", "t": T}``: LiteLLM's ``time.time()`` returns T from now on (its module's
  ``time`` is replaced; the ``created_at`` default was bound when LiteLLM was imported);
- ``{"op": "call", "method": M, "kwargs": {...}}``: the call's outcome (diffwire.outcome); a
  ``completion_obj`` arrives as a dict and is passed as LiteLLM's ``ModelResponse``;
- ``{"op": "dump"}``: ``user_dict``;
- ``{"op": "sync", "user": U, "record": R}``: set one user's record (R None: remove it), and
  ``{"op": "order", "users": [...]}``: put ``user_dict`` in that order; the harness does both after
  a documented difference, so that later calls start from the same state.
"""

import json
import os
import sys
import time as real_time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from diffwire import dec, enc, outcome
from litellm import ModelResponse
from litellm import budget_manager as module


class FakeTime:
    """The ``time`` module as LiteLLM's budget_manager sees it, with a clock we set."""

    def __init__(self) -> None:
        self.now = real_time.time()

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> object:
        return getattr(real_time, name)


clock = FakeTime()
module.time = clock
litellm.suppress_debug_info = True
manager = None


def handle(request: dict) -> object:
    global manager
    op = request["op"]
    if op == "new":
        os.chdir(request["dir"])
        clock.now = request["t"]
        manager = module.BudgetManager(project_name="differential")
        return ["ok", enc(None)]
    if op == "clock":
        clock.now = request["t"]
        return ["ok", enc(None)]
    if op == "dump":
        return ["ok", enc(manager.user_dict)]
    if op == "sync":
        user, record = dec(request["user"]), dec(request["record"])
        if record is None:
            manager.user_dict.pop(user, None)
        else:
            manager.user_dict[user] = record
        return ["ok", enc(None)]
    if op == "order":
        keys = [dec(user) for user in request["users"]]
        rest = {k: v for k, v in manager.user_dict.items() if k not in keys}
        manager.user_dict = {**{k: manager.user_dict[k] for k in keys}, **rest}
        return ["ok", enc(None)]
    kwargs = {name: dec(value) for name, value in request["kwargs"].items()}
    if isinstance(kwargs.get("completion_obj"), dict):
        kwargs["completion_obj"] = ModelResponse(**kwargs["completion_obj"])
    return outcome(lambda: getattr(manager, request["method"])(**kwargs))


for line in sys.stdin:
    print(json.dumps(handle(json.loads(line))), flush=True)
