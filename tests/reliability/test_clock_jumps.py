"""The clock jumps: backwards (nothing resets, nothing breaks) and years forwards (one roll-over).

Budgets on several grids (daily in a DST zone, monthly on the 31st, 3-day, weekly, lifetime) live
through a random walk of the clock, forwards and backwards, charging and running reset-due. After
every step the balances equal the history's replay, every period lies on its budget's grid, and a
reset-due repeated at the same instant changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _support import PROJECT, Counts, consistent
from helpers import T0, Clock, digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetctl import Ledger
from budgetctl.core import periods
from budgetctl.core.rules import Budget

pytestmark = pytest.mark.reliability

SETUPS = [
    ("daily", {"timezone": "Europe/Paris"}),
    ("monthly", {"start": "2026-01-31T00:00:00Z"}),
    ("3d", {}),
    ("weekly", {"timezone": "America/New_York"}),
    (None, {}),
]
TRIED = {"steps": 0, "backwards": 0, "rollovers": 0}  # over all the random walk's examples


def on_grid(budget: Budget) -> bool:
    if budget.duration is None:
        return budget.next_reset_at is None
    tz = periods.parse_timezone(budget.timezone)
    span = periods.period_containing(budget.duration, budget.anchor(), tz, budget.period_start)
    return span == (budget.period_start, budget.next_reset_at)


def setup(data_dir: Path, clock: Clock) -> Ledger:
    book = Ledger(PROJECT, clock=clock)
    for i, (duration, extra) in enumerate(SETUPS):
        book.create(f"u{i}", "100", duration=duration, **extra)  # type: ignore[arg-type]
        book.charge_cost(f"u{i}", "1.5")
    return book


def test_reset_due_with_the_clock_backwards_changes_nothing(data_dir: Path, counts: Counts) -> None:
    clock = Clock(T0)
    book = setup(data_dir, clock)
    state = data_dir / f"{PROJECT}.json"
    before = digest(state)
    tried = 0
    for back in (
        timedelta(seconds=1),
        timedelta(days=1),
        timedelta(days=400),
        timedelta(days=9000),
    ):
        done = book.reset_due(now=T0 - back)
        tried += 1
        assert done.reset == () and done.cap is None
        assert digest(state) == before  # nothing to write, nothing written
    clock.now = T0 - timedelta(days=30)  # charges while the clock is behind count, on the grid
    book.charge_cost("u0", "2")
    balances, _ = consistent(book, data_dir)
    line = counts(operations=tried + 1, faults_injected=tried + 1, wrong_resets=0)
    assert balances["u0"] == 3.5, line
    assert all(on_grid(b) for b in book.view().users), line


def test_years_forwards_roll_over_once_on_the_grid(data_dir: Path, counts: Counts) -> None:
    clock = Clock(T0)
    book = setup(data_dir, clock)
    later = T0 + timedelta(days=7 * 365 + 13, hours=5)
    done = book.reset_due(now=later)
    due = [f"u{i}" for i, (duration, _) in enumerate(SETUPS) if duration is not None]
    assert sorted(user for user, _ in done.reset) == due  # one closed period each, no more
    clock.now = later
    for listed in book.view().users:
        budget = book.get(listed.user)  # get() reads its closed periods from the history too
        assert on_grid(budget)
        if budget.duration is not None:
            assert budget.period_start <= later < budget.next_reset_at  # caught up, no drift
            assert len(budget.recent_periods) == 1 and budget.current_cost == 0
    again = book.reset_due(now=later)
    balances, _ = consistent(book, data_dir)
    line = counts(
        operations=2, faults_injected=1, rollovers=len(done.reset), repeated=len(again.reset)
    )
    assert again.reset == (), line
    assert balances["u4"] == 1.5  # the lifetime budget keeps its spend


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=-3 * 365 * 24, max_value=4 * 365 * 24),  # hours to jump
            st.sampled_from(["charge", "reset-due", "view"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_random_walk_of_the_clock_keeps_every_invariant(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    counts: Counts,
    steps: list[tuple[int, str]],
) -> None:
    data_dir = tmp_path_factory.mktemp("walk")
    monkeypatch.setenv("BUDGETCTL_DATA_DIR", str(data_dir))
    clock = Clock(T0)
    book = setup(data_dir, clock)
    state = data_dir / f"{PROJECT}.json"
    for hours, action in steps:
        moment: datetime = clock.now + timedelta(hours=hours)
        TRIED["steps"] += 1
        TRIED["backwards"] += hours < 0
        clock.now = moment
        if action == "charge":
            book.charge_cost("u1", "0.25")
        elif action == "reset-due":
            TRIED["rollovers"] += len(book.reset_due(now=moment).reset)
            before = digest(state)
            assert book.reset_due(now=moment).reset == ()  # idempotent
            assert digest(state) == before
        for budget in book.view().users:
            assert on_grid(budget), budget
            if budget.next_reset_at is not None and moment >= budget.period_start:
                assert moment < budget.next_reset_at  # as seen now, the current period holds now
        consistent(book, data_dir)
    counts(  # totals over the examples so far (the last example's call leaves the run's totals)
        operations=TRIED["steps"], faults_injected=TRIED["backwards"], rollovers=TRIED["rollovers"]
    )
