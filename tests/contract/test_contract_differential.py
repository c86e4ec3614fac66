"""The differential test: one sequence of operations on every store, and on the reference model.

Every store must give the same outcome at every step (balances, periods, over-budget flags,
duplicate flags, the errors raised and what they say) as the others and as the model in
tests/contract/model.py. A store that decides a rule itself (where a period ends, whether a charge
landing exactly on a total fits, which total refuses it, whether a retry is a duplicate) instead of
calling the core's rules makes this test fail, naming the step and the store.

The sequence charges exactly up to the user's budget and exactly up to the project cap with
``enforce`` (allowed: a charge landing on the total fits) and one cent past each (refused, with
``scope`` "user", then "project"), retries under a request id, rolls over at a boundary exactly, and
runs ``reset_due`` twice. Its cap is set before anything is charged in its period, so stores with
and without a history count it alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.contract.driver import Driver, Failed, ModelDriver, StoreDriver
from tests.contract.model import KEEP, LedgerModel, Outcome

if TYPE_CHECKING:
    from tests.contract.conftest import StoreFactory

DAY1 = datetime(2026, 1, 15, tzinfo=timezone.utc)
T0 = DAY1 + timedelta(hours=12)
MIDNIGHT = DAY1 + timedelta(days=1)
D = Decimal

STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("no project yet", "charge", {"user": "alice", "cost": D(1), "now": T0}),
    ("create", "create", {"budgets": [("alice", D(10), "daily"), ("bob", D(5), None)], "now": T0}),
    ("create again", "create", {"budgets": [("bob", D(1), None)], "now": T0}),
    ("cap", "set_cap", {"now": T0, "total": D(12)}),
    ("alice to a cent", "charge", {"user": "alice", "cost": D("9.99"), "now": T0, "enforce": True}),
    ("alice exactly", "charge", {"user": "alice", "cost": D("0.01"), "now": T0, "enforce": True}),
    (
        "alice a cent over",
        "charge",
        {"user": "alice", "cost": D("0.01"), "now": T0, "enforce": True},
    ),
    ("alice zero", "charge", {"user": "alice", "cost": D(0), "now": T0, "enforce": True}),
    ("cap exactly", "charge", {"user": "bob", "cost": D(2), "now": T0, "enforce": True}),
    ("cap a cent over", "charge", {"user": "bob", "cost": D("0.01"), "now": T0, "enforce": True}),
    ("cap over, unenforced", "charge", {"user": "bob", "cost": D("0.01"), "now": T0}),
    ("bob over, unenforced", "charge", {"user": "bob", "cost": D(3), "now": T0}),
    ("unknown user", "charge", {"user": "carol", "cost": D(1), "now": T0}),
    ("with an id", "charge", {"user": "alice", "cost": D(1), "now": T0, "request_id": "x"}),
    (
        "retried",
        "charge",
        {"user": "alice", "cost": D("1.00"), "now": T0, "request_id": "x", "enforce": True},
    ),
    ("id conflict", "charge", {"user": "bob", "cost": D(1), "now": T0, "request_id": "x"}),
    ("dry run", "charge", {"user": "bob", "cost": D(1), "now": T0, "dry_run": True}),
    ("raise the cap", "set_cap", {"now": MIDNIGHT, "total": D(30), "duration": KEEP}),
    (
        "alice rolled, exactly",
        "charge",
        {"user": "alice", "cost": D(10), "now": MIDNIGHT, "enforce": True},
    ),
    ("reset-due", "reset_due", {"now": MIDNIGHT}),
    ("alice's budget", "change", {"user": "alice", "now": MIDNIGHT, "total": D(20)}),
    ("bob hourly", "change", {"user": "bob", "now": MIDNIGHT, "duration": "1h"}),
    ("reset bob", "reset", {"users": ["bob"], "now": MIDNIGHT}),
    ("charge bob", "charge", {"user": "bob", "cost": D("0.5"), "now": MIDNIGHT}),
    ("reset-due later", "reset_due", {"now": MIDNIGHT + timedelta(days=1)}),
    ("reset-due again", "reset_due", {"now": MIDNIGHT + timedelta(days=1)}),
    ("get", "get", {"user": "alice", "now": MIDNIGHT + timedelta(days=1)}),
    ("delete", "delete", {"users": ["bob", "carol"]}),
    ("delete bob", "delete", {"users": ["bob"]}),
    ("clear the cap", "clear_cap", {}),
    ("clear it again", "clear_cap", {}),
]
LATER = MIDNIGHT + timedelta(days=1)


def transcript(driver: Driver) -> list[tuple[str, Any, Any]]:
    """Each step's name, its outcome, and the whole project as of that step's moment."""
    seen = []
    for name, op, kwargs in STEPS:
        result = driver.run(op, **kwargs)
        seen.append((name, result, driver.run("snapshot", now=kwargs.get("now", LATER))))
    return seen


def test_every_store_gives_the_same_outcomes(all_store_factories: dict[str, StoreFactory]) -> None:
    expected = transcript(ModelDriver(LedgerModel()))
    outcomes = dict((name, result) for name, result, _ in expected)
    # The boundaries, as the model has them: landing exactly on a total fits, a cent more does not.
    assert isinstance(outcomes["alice exactly"], Outcome)
    assert outcomes["alice exactly"].user.spent == D(10)
    assert not outcomes["alice exactly"].user.over_budget
    assert outcomes["alice a cent over"] == Failed("BudgetExceededError", ("user", D(10), D(10)))
    assert isinstance(outcomes["cap exactly"], Outcome)
    assert outcomes["cap exactly"].cap is not None and outcomes["cap exactly"].cap.spent == D(12)
    assert outcomes["cap a cent over"] == Failed("BudgetExceededError", ("project", D(12), D(12)))
    assert isinstance(outcomes["retried"], Outcome) and outcomes["retried"].duplicate
    assert isinstance(outcomes["id conflict"], Failed)
    assert outcomes["id conflict"].error == "RequestIdConflictError"
    for name, factory in all_store_factories.items():
        got = transcript(StoreDriver(factory()))
        for step, want in zip(got, expected, strict=True):
            assert step == want, f"the {name} store differs at step {step[0]!r}"
