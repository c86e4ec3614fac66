"""Processes as hosts on one PostgreSQL ledger (issue 11; DESIGN.md section 11).

Each worker (tests/_pg_worker.py) is a real process with its own ``Ledger(project,
database_url=URL)`` and so its own connection, as a host would be; each test has its own schema
(tests/helpers/postgres.py). Charges on one hot user and across 10,000 users lose nothing; a holds
race admits exactly what fits; four ``reset-due`` runners at once, with charges going on, close
each ended period exactly once and erase no new spend; and hosts whose clocks disagree agree on
periods and hold expiry, because the database's clock decides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from helpers.postgres import fresh_schema
from pg_hosts import Host, acknowledged, checked
from test_holds_race import COST, FIT, Child, walk

from budgetctl import Ledger
from budgetctl.core import events, rules
from budgetctl.core.periods import UTC, parse_duration
from budgetctl.errors import UnknownHoldError
from budgetctl.store.postgres.store import PostgresStore

pytestmark = pytest.mark.process

HOSTS = 8


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def hosts() -> Iterator[list[Child]]:
    """Workers a test started; any still running at the end are killed (by their own pid)."""
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def run_all(hosts: list[Child]) -> list[str]:
    """Start every worker at once (each printed ``ready``); every line they printed."""
    for host in hosts:
        host.wait_for("ready")
    for host in hosts:
        host.send()
    return [line for host in hosts for line in host.finish()]


def test_hosts_charging_one_hot_user_lose_nothing(pg_url: str, hosts: list[Child]) -> None:
    book = Ledger("p", database_url=pg_url)
    book.create("hot", "1000000")
    per_host = 60
    costs = [Decimal(f"0.{n + 1:02d}") for n in range(HOSTS)]  # each host its own cost
    started = time.monotonic()
    for n in range(HOSTS):
        hosts.append(Host("charge", pg_url, "p", "hot", str(per_host), str(costs[n]), f"h{n}", "0"))
    lines = run_all(hosts)
    took = time.monotonic() - started

    done = acknowledged(lines)
    assert len(done) == HOSTS * per_host
    _, balances, charged = checked(book)
    expected = sum((costs[int(key[1 : key.index("-")])] for key in done), Decimal(0))
    assert set(charged) == set(done)  # every acknowledged id once, nothing else
    assert balances["hot"] == expected == per_host * sum(costs, Decimal(0))
    print(f"{HOSTS} hosts, one user: {len(done)} charges, spend {expected}; {took:.1f} s")


def test_hosts_charging_ten_thousand_users_lose_nothing(pg_url: str, hosts: list[Child]) -> None:
    book = Ledger("p", database_url=pg_url)
    users = 10_000
    now = book.now()
    book.store.create_many(
        [rules.new_budget(f"u{n}", Decimal(1000), now) for n in range(users)]
    )  # one transaction
    book.set_cap(Decimal(1_000_000))
    per_host = 100
    started = time.monotonic()
    for n in range(HOSTS):
        hosts.append(
            Host("charge", pg_url, "p", f"{users}*u", str(per_host), "0.25", f"h{n}", str(n))
        )
    lines = run_all(hosts)
    took = time.monotonic() - started

    done = acknowledged(lines)
    assert len(done) == HOSTS * per_host
    _, balances, charged = checked(book)
    assert set(charged) == set(done)
    per_user: dict[str, Decimal] = {}
    for user in done.values():
        per_user[user] = per_user.get(user, Decimal(0)) + Decimal("0.25")
    assert {u: s for u, s in balances.items() if s and u != rules.CAP} == per_user
    assert balances[rules.CAP] == Decimal("0.25") * len(done)
    assert len(balances) == users + 1
    print(
        f"{HOSTS} hosts, {users} users at random (and a cap): {len(done)} charges to"
        f" {len(per_user)} users; {took:.1f} s"
    )


@pytest.mark.parametrize("binding", ["user", "cap"])
def test_hosts_racing_holds_admit_exactly_what_fits(
    pg_url: str, hosts: list[Child], monkeypatch: pytest.MonkeyPatch, binding: str
) -> None:
    """tests/test_holds_race.py's race, its workers on PostgreSQL (BUDGETCTL_DATABASE_URL)."""
    monkeypatch.setenv("BUDGETCTL_DATABASE_URL", pg_url)
    book = Ledger("p")
    workers = 12
    if binding == "user":
        users = ["shared"]
        book.create("shared", COST * FIT)
    else:
        users = [f"user-{n}" for n in range(4)]
        for user in users:
            book.create(user, COST * workers)
        book.set_cap(COST * FIT)
    started = time.monotonic()
    for n in range(workers):
        hosts.append(Child("race", "p", users[n % len(users)], str(COST), "20", str(n)))
    for child in hosts:
        child.wait_for("ready")
    for child in hosts:  # all at once: nobody settles before every worker has answered
        child.send()
    first = [child.next_line() for child in hosts]
    admitted = sum(line.startswith("held ") for line in first)
    assert admitted + first.count("refused") == workers, first
    for child in hosts:
        child.send()
    lines = [line for child in hosts for line in child.finish()]
    took = time.monotonic() - started

    history, balances, _ = checked(book)
    found = walk(history)
    committed = [line.split()[1] for line in lines if line.startswith("committed ")]
    spent = balances.get(rules.CAP, sum(balances.values(), Decimal(0)))
    figures = (
        f"{workers} hosts, {binding} binding: first round {admitted} of {workers} admitted"
        f" ({FIT} fit); {found.placed} holds placed, {lines.count('refused')} refused, most open"
        f" at once {found.most_open}, {len(committed)} committed; spent {spent}; {took:.1f} s"
    )
    print(figures)
    assert admitted == FIT and found.most_open == FIT, figures
    assert found.expired == 0 and book.holds() == [], figures
    assert set(found.committed) == set(committed) == set(found.committed.elements()), figures
    assert found.placed == len(committed) + found.released, figures
    assert spent <= COST * FIT and lines.count("refused") > 0, figures


@pytest.mark.parametrize("binding", ["user", "cap"])
def test_one_statement_charges_racing_holds_never_take_what_a_hold_reserved(
    pg_url: str, hosts: list[Child], binding: str
) -> None:
    """Six hosts charge with ``enforce`` (no request id: the one-statement path) while six
    reserve and commit, all on one budget until it is full. A charge that did not see a hold
    placed meanwhile would take the room the hold reserved, and the hold's commit (never
    refused) would then take the spend past the budget."""
    book = Ledger("p", database_url=pg_url)
    cost, total = Decimal("0.25"), Decimal("30")
    if binding == "user":
        book.create("shared", total)
    else:
        book.create("shared", total * 10)
        book.set_cap(total)
    for n in range(HOSTS + 4):
        role = "charge" if n % 2 else "hold"
        hosts.append(Host("squeeze", pg_url, "p", "shared", str(cost), role))
    lines = run_all(hosts)

    history, balances, _ = checked(book)
    charged, committed = lines.count("charged"), lines.count("committed")
    spent = balances[rules.CAP if binding == "cap" else "shared"]
    figures = (
        f"{HOSTS + 4} hosts, {binding} binding: {charged} charges (enforced, no request id), "
        f"{committed} holds committed, {lines.count('refused')} refused; spent {spent} of {total}"
    )
    print(figures)
    assert spent == (charged + committed) * cost, figures
    assert spent == total, figures  # full, and not one cost more
    assert charged > 10 and committed > 10, figures
    assert book.holds() == []
    assert sum(1 for e in history if isinstance(e, events.Charge)) == charged


def test_four_reset_due_runners_close_each_period_once(pg_url: str, hosts: list[Child]) -> None:
    """Periods end at 2024-01-02T00:00Z. Four runners at 01:00 while eight hosts charge at 02:00:
    whoever comes first closes a user's (and the cap's) period, once, with the spend of that
    period; the charges at 02:00 all count in the new period, none erased."""
    created = datetime(2024, 1, 1, tzinfo=UTC)
    ended = datetime(2024, 1, 2, tzinfo=UTC)
    runners_at = ended + timedelta(hours=1)
    charges_at = ended + timedelta(hours=2)
    users = 40
    before = Ledger("p", database_url=pg_url, clock=lambda: created)
    day = parse_duration("1d")
    before.store.create_many(
        [rules.new_budget(f"u{n}", Decimal(100), created, duration=day) for n in range(users)]
    )
    before.set_cap(Decimal(100_000), duration="1d")
    old = Ledger("p", database_url=pg_url, clock=lambda: created + timedelta(hours=12))
    for n in range(users):
        old.charge_cost(f"u{n}", Decimal(n) / 100 + 1, request_id=f"old-{n}")
    old_spend = {f"u{n}": Decimal(n) / 100 + 1 for n in range(users)}

    per_host = 40
    chargers = [
        Host("charge-at", pg_url, "p", f"{users}*u", str(per_host), "0.5", f"h{n}", str(n),
             charges_at.isoformat())
        for n in range(HOSTS)
    ]  # fmt: skip
    runners = [Host("reset-due", pg_url, "p", runners_at.isoformat()) for _ in range(4)]
    hosts.extend(chargers + runners)
    started = time.monotonic()
    for host in hosts:
        host.wait_for("ready")
    for host in chargers[:4]:  # some charges first, then the runners among the rest
        host.send()
    for host in runners + chargers[4:]:
        host.send()
    charger_lines = [line for host in chargers for line in host.finish()]
    runner_lines = [line for host in runners for line in host.finish()]
    took = time.monotonic() - started

    after = Ledger("p", database_url=pg_url, clock=lambda: charges_at)
    history, balances, charged = checked(after)
    done = acknowledged(charger_lines)
    assert len(done) == HOSTS * per_host and set(charged) == set(done) | {
        f"old-{n}" for n in range(users)
    }
    closed = [e for e in history if isinstance(e, events.PeriodClosed)]
    by_user = {e.user: e for e in closed}
    assert len(closed) == len(by_user) == users + 1, "a period closed twice, or never"
    for user, spent in old_spend.items():
        assert by_user[user].spent == spent and by_user[user].end == ended, by_user[user]
    assert by_user[None].spent == sum(old_spend.values(), Decimal(0))
    new_spend: dict[str, Decimal] = {}
    for user in done.values():
        new_spend[user] = new_spend.get(user, Decimal(0)) + Decimal("0.5")
    for n in range(users):  # every charge at 02:00 is in the new period: nothing erased
        assert balances[f"u{n}"] == new_spend.get(f"u{n}", Decimal(0)), f"u{n}"
    assert balances[rules.CAP] == Decimal("0.5") * len(done)
    by_runners = [line for line in runner_lines if line.startswith(("closed ", "cap "))]
    by_charges = users + 1 - len(by_runners)
    print(
        f"4 reset-due runners and {HOSTS} hosts charging ({len(done)} charges): {len(closed)}"
        f" periods closed once each, {len(by_runners)} by the runners, {by_charges} by charges"
        f" rolling over; {took:.1f} s"
    )


def test_hosts_with_skewed_clocks_agree_on_periods_and_hold_expiry(pg_url: str) -> None:
    """Two hosts, one's clock three days behind and one's three days ahead: on PostgreSQL the
    database's clock decides (the store's ``use_database_clock``), so they see the same period,
    the same open holds, and a hold expires for both when the database says so."""
    real = datetime.now(UTC)

    def host(skew: timedelta) -> Ledger:
        store = PostgresStore("p", pg_url, use_database_clock=True)
        return Ledger("p", store=store, clock=lambda: datetime.now(UTC) + skew)

    behind, ahead = host(timedelta(days=-3)), host(timedelta(days=3))
    behind.create("a", 100, duration="1d")
    created = ahead.get("a")
    assert abs(created.created_at - real) < timedelta(minutes=5), created
    assert created.next_reset_at is not None
    assert created.period_start <= datetime.now(UTC) < created.next_reset_at
    behind.charge_cost("a", 5)
    ahead.charge_cost("a", 7)
    for book in (behind, ahead):
        assert book.get("a").current_cost == 12  # no host closed a period the other one had
        assert book.reset_due().reset == ()
    assert not [e for e in ahead.history() if isinstance(e, events.PeriodClosed)]

    hold = ahead.reserve("a", 50, ttl=2)  # held 2 s by the database's clock
    assert hold.hold is not None
    expires = hold.hold.expires_at
    assert abs(expires - (datetime.now(UTC) + timedelta(seconds=2))) < timedelta(minutes=5)
    for book in (behind, ahead):
        assert [h.hold_id for h in book.holds()] == [hold.hold.hold_id]
        assert book.standing("a").reserved == 50
    time.sleep(2.5)
    for book in (behind, ahead):
        assert book.holds() == [] and book.standing("a").reserved == 0
    with pytest.raises(UnknownHoldError):
        behind.release([hold.hold.hold_id])
