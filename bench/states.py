"""Pre-populated projects for the benchmarks, written quickly through the library's store.

budgetctl: ``JsonStore.create_many`` writes N monthly budgets in one transaction (not N CLI calls),
each with some spend on one model, created at ``CREATED``, so that all of them are due at
``RESET_DUE_AT``. LiteLLM: a ``user_cost.json`` of N users in
the shape (and indentation) its ``save_data`` writes.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

PROJECT = "bench"
MODEL = "gpt-4o"
CREATED = datetime(2024, 1, 15, 12, 0, tzinfo=timezone.utc)
SPENT = Decimal("1.234567")
RESET_DUE_AT = "2024-02-20T00:00:00Z"  # a month after CREATED: every budget is due


def user_name(i: int) -> str:
    return f"user-{i:06d}"


def budgetctl_state(data_dir: Path, users: int, closed_periods: int = 0) -> Path:
    """A project of ``users`` monthly budgets in ``data_dir``; returns the state file.

    ``closed_periods``: the project is that many months older, and has rolled every budget over
    once a month since (through the store's own ``reset_due``, so the history holds a closed
    period per budget per month, linked from each record, as a real project's would). Its budgets
    then start the current month with no spend; a fresh project's carry ``SPENT``.
    """

    from budgetctl.core import rules
    from budgetctl.core.periods import parse_duration
    from budgetctl.store.json_store import JsonStore

    monthly = parse_duration("monthly")
    months = [
        datetime(2024 - (k + 11) // 12, 12 - (k + 11) % 12, 1, tzinfo=timezone.utc)
        for k in range(closed_periods + 1)
    ]  # 2024-01-01, 2023-12-01, 2023-11-01, ...
    created = CREATED if closed_periods == 0 else months[closed_periods].replace(day=15, hour=12)
    budgets = [
        rules.new_budget(
            user_name(i),
            Decimal(10),
            created,
            duration=monthly,
            current_cost=SPENT,
            model_cost={MODEL: SPENT},
        )
        for i in range(users)
    ]
    store = JsonStore(PROJECT, data_dir)
    store.create_many(budgets)
    for k in range(closed_periods - 1, -1, -1):  # roll over at each month's start, oldest first
        store.reset_due(months[k])
    return store.path


def litellm_state(folder: Path, users: int) -> Path:
    """LiteLLM's ``user_cost.json`` with ``users`` monthly budgets, as its save_data writes it."""
    epoch = CREATED.timestamp()
    users_dict = {
        user_name(i): {
            "total_budget": 10.0,
            "duration": 28,
            "created_at": epoch,
            "last_updated_at": epoch,
            "current_cost": float(SPENT),
            "model_cost": {MODEL: float(SPENT)},
        }
        for i in range(users)
    }
    path = folder / "user_cost.json"
    folder.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        json.dump(users_dict, handle, indent=4)
    return path


def copy_project(source: Path, target: Path) -> Path:
    """A fresh copy of a generated data dir (so that one phase's writes do not affect another)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target
