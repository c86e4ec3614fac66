"""The stores the contract suite runs on, and the one place that reads a store's history.

A store joins the suite with one line in :data:`STORES`: a context manager that, given the test's
``request``, sets up what the store needs (a temp dir, a server) and yields a function returning a
fresh, empty project each time it is called, and whether the store keeps a history. The fixtures:

- ``store_factory``: every store, one test each;
- ``history_store_factory``: the stores that keep a history (the hosted store's LiteLLM protocol
  keeps none: ``history`` raises NotSupportedError there, so the tests that read history are
  parametrised over the other stores only, never skipped);
- ``all_store_factories``: every store at once, for the differential test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import NamedTuple

import pytest

from budgetctl.core import events as ev
from budgetctl.core import rules
from budgetctl.core.money import EXACT
from budgetctl.core.rules import CAP, ClosedPeriod
from budgetctl.store import spend
from budgetctl.store.hosted import HostedStore
from budgetctl.store.interface import Store
from budgetctl.store.json_store import JsonStore
from tests.helpers.budget_server import budget_server


@dataclass(frozen=True)
class StoreFactory:
    """Makes fresh, empty projects of one kind of store."""

    name: str
    has_history: bool
    new: Callable[[], Store]

    def __call__(self) -> Store:
        return self.new()


class StoreKind(NamedTuple):
    setup: Callable[[pytest.FixtureRequest], AbstractContextManager[Callable[[], Store]]]
    has_history: bool


def _names() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"contract-{next(counter)}"


@contextmanager
def _json_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    data_dir = request.getfixturevalue("tmp_path") / "json-store"
    name = _names()
    yield lambda: JsonStore(name(), data_dir, lock_timeout=10)


@contextmanager
def _hosted_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    with budget_server(request.getfixturevalue("monkeypatch")) as server:
        name = _names()
        yield lambda: HostedStore(name(), api_base=server.url, timeout=10)


def _postgres(
    one_statement: bool,
) -> Callable[[pytest.FixtureRequest], AbstractContextManager[Callable[[], Store]]]:
    @contextmanager
    def setup(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
        from budgetctl.store.postgres.store import Database, PostgresStore
        from tests.helpers.postgres import fresh_schema

        with fresh_schema() as url:
            database = Database(url)
            name = _names()
            # The suite's times are fixed moments: the store uses them, not the database's clock.
            yield lambda: PostgresStore(
                name(), database, use_database_clock=False, one_statement=one_statement
            )
            database.close()

    return setup


STORES: dict[str, StoreKind] = {
    "json": StoreKind(_json_store, has_history=True),
    "hosted": StoreKind(_hosted_store, has_history=False),
    # charges that are a plain increment in one statement, as by default (one_statement.py)
    "postgres": StoreKind(_postgres(one_statement=True), has_history=True),
    # every charge in the locked transaction, where the core decides
    "postgres-locked": StoreKind(_postgres(one_statement=False), has_history=True),
}


@contextmanager
def _factory(name: str, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    kind = STORES[name]
    with kind.setup(request) as new:
        yield StoreFactory(name, kind.has_history, new)


@pytest.fixture(params=list(STORES))
def store_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    with _factory(request.param, request) as factory:
        yield factory


@pytest.fixture(params=[name for name, kind in STORES.items() if kind.has_history])
def history_store_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    with _factory(request.param, request) as factory:
        yield factory


@pytest.fixture
def all_store_factories(request: pytest.FixtureRequest) -> Iterator[dict[str, StoreFactory]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(_factory(name, request)) for name in STORES}


# --- history: the one place the suite reads it ----------------------------------------------


class Replayed(NamedTuple):
    """What a store's history says."""

    balances: dict[str, Decimal]  # rules.replay: each user's spend, the cap's under CAP
    touched: dict[str, datetime]  # when each of those balances was last written
    closed: list[tuple[str, ClosedPeriod]]  # every closed period, oldest first (user, or CAP)
    charged: Decimal  # every charge recorded, summed


def replay_history(store: Store) -> Replayed:
    """Replay ``store``'s history (newest first from ``history()``) oldest first."""
    events = list(reversed(store.history()))
    touched: dict[str, datetime] = {}
    closed: list[tuple[str, ClosedPeriod]] = []
    charged = Decimal(0)
    for event in events:
        if isinstance(event, (ev.Create, ev.Set)):
            names: list[str] = [event.user]
        elif isinstance(event, (ev.Charge, ev.Commit)):
            names = [event.user, CAP]  # a charge rolls the cap over too
        elif isinstance(event, ev.PeriodClosed):
            names = [event.user if event.user is not None else CAP]
        elif isinstance(event, ev.CapSet):
            names = [CAP]
        else:
            names = []
        if event.time is not None:
            for name in names:
                touched[name] = event.time
        if isinstance(event, ev.PeriodClosed):
            period = ClosedPeriod(event.start, event.end, event.spent, event.budget, event.reason)
            closed.append((event.user if event.user is not None else CAP, period))
        spent = ev.spend(event)
        if spent is not None:
            charged += spent
    # export and report read the same charges without typed events (Store.spend): to the digit
    rows = spend.from_events(events)
    assert store.spend() == rows, "the spend read is not the history's"
    summed = getattr(type(store), "spend_totals", None)  # PostgreSQL sums for report
    for key, of in (("user", 1), ("model", 3), ("day", 0), ("hour", 0)):
        found = summed(store, key) if summed is not None else None
        if found is not None:
            assert found == _sums(rows, key, of), f"the store's spend by {key} is not the rows'"
    return Replayed(rules.replay(events), touched, closed, charged)


def _sums(rows: list[spend.Spend], key: str, index: int) -> dict[object, list[object]]:
    """[charges, cost, tokens...] per user, model, UTC day or UTC hour, one row at a time."""
    found: dict[object, list[object]] = {}
    with localcontext(EXACT):
        for row in rows:
            if key in ("user", "model"):
                grouped: object = row[index]
            elif row.time is None:
                continue
            else:
                grouped = row.time[: 10 if key == "day" else 13]
            acc = found.setdefault(grouped, [0, Decimal(0), 0, 0, 0])
            for position, value in enumerate((1, row.cost, *row[4:7])):
                acc[position] += value  # type: ignore[operator]
    return found


def replayed_as_of(store: Store, now: datetime) -> dict[str, Decimal]:
    """Each balance as the history replays it, as of ``now``: a balance last written before its
    current period began (a boundary passed since, and no write rolled it over yet) is 0."""
    replayed = replay_history(store)
    view = store.view(now)
    starts = {budget.user: budget.period_start for budget in view.users}
    if view.cap is not None:
        starts[CAP] = view.cap.period_start
    return {
        name: (Decimal(0) if name in starts and replayed.touched[name] < starts[name] else spent)
        for name, spent in replayed.balances.items()
    }


def balances(store: Store, now: datetime) -> dict[str, Decimal]:
    """Each user's spend as the store shows it at ``now``, and the cap's under CAP."""
    view = store.view(now)
    shown = {budget.user: budget.current_cost for budget in view.users}
    if view.cap is not None:
        shown[CAP] = view.cap.current_cost
    return shown


@pytest.fixture
def check_replay() -> Callable[[Store, datetime], None]:
    """Assert the replay invariant for a store at ``now``: its history replays to every balance."""

    def check(store: Store, now: datetime) -> None:
        assert replayed_as_of(store, now) == balances(store, now)

    return check


@pytest.fixture
def history_of() -> Callable[[Store], Replayed]:
    return replay_history
