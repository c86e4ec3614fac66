"""A hostile hosted server: charges through it are never lost, doubled or wiped, and no request
or token goes anywhere but ``api_base``.

Rounds of charges, each with its own request id, through ``HostedStore`` while the loopback server
of tests/helpers/hostile_server.py misbehaves in one of its ways (redirects, a byte at a time,
huge answers, an outage's error answers, writes stored but answered with nothing, writes not
stored, answers after the deadline, an outage right after a write). A charge that fails is retried
with the same request id once the server behaves, as a careful caller does. At the end every user
holds exactly the sum of its charges, all users are still there, and the other origin that the
redirects pointed at saw no request at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from _support import Counts

from budgetctl import Ledger
from budgetctl.errors import StorageIOError
from budgetctl.store.hosted import HostedStore
from tests.helpers import Clock
from tests.helpers.hostile_server import HostileServer, hostile_servers

pytestmark = pytest.mark.reliability

USERS = ("alice", "bob", "carol")
DEADLINE = 0.5  # the client's timeout for a whole request, in seconds


def _redirect(server: HostileServer, elsewhere: HostileServer) -> None:
    server.redirect_to = elsewhere.url
    server.redirect_status = random.choice([301, 302, 303, 307, 308])


FAULTS: dict[str, Callable[[HostileServer, HostileServer], None]] = {
    "redirect": _redirect,
    "a byte at a time": lambda server, _: setattr(server, "drip", 0.02),
    "huge answer": lambda server, _: setattr(server, "huge", 80 * 2**20),
    "huge answer, no length": lambda server, _: (
        setattr(server, "huge", 80 * 2**20),
        setattr(server, "huge_length_header", False),
    ),
    "error answer (outage)": lambda server, _: setattr(server, "outage", True),
    "stored, empty answer": lambda server, _: setattr(server, "set_reply", b""),
    "stored, unreadable answer": lambda server, _: setattr(server, "set_reply", b"<html>"),
    "not stored, empty answer": lambda server, _: (
        setattr(server, "set_reply", b""),
        setattr(server, "set_stores", False),
    ),
    "stored, answered late": lambda server, _: setattr(server, "hang_after_store", 2 * DEADLINE),
    "stored, then an outage": lambda server, _: (
        setattr(server, "hang_after_store", 2 * DEADLINE),
        setattr(server, "outage_after_store", True),
    ),
}


def _behave(server: HostileServer) -> None:
    fresh = HostileServer()
    for name in ("redirect_to", "drip", "huge", "huge_length_header", "outage", "set_reply"):
        setattr(server, name, getattr(fresh, name))
    server.set_stores, server.hang_after_store, server.outage_after_store = True, None, False


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HostileServer, HostileServer]]:
    with hostile_servers(monkeypatch) as both:
        yield both


def test_charges_through_a_hostile_server(
    servers: tuple[HostileServer, HostileServer], counts: Counts
) -> None:
    server, elsewhere = servers
    random.seed(8014)
    ledger = Ledger(store=HostedStore("team", server.url, timeout=DEADLINE), clock=Clock())
    for user in USERS:
        ledger.create(user, "1000", duration="monthly")
    rounds = [kind for kind in FAULTS for _ in range(4)]
    random.shuffle(rounds)
    charged = dict.fromkeys(USERS, Decimal(0))
    errors = retried_duplicates = 0
    slowest = 0.0
    for number, kind in enumerate(rounds):
        user, cost = random.choice(USERS), Decimal(random.randint(1, 10**6)).scaleb(-7)
        request_id = f"call-{number}"
        FAULTS[kind](server, elsewhere)
        started = time.monotonic()
        try:
            ledger.charge_cost(user, cost, request_id=request_id)
        except StorageIOError as error:
            errors += 1
            assert "\n" not in str(error) and len(str(error)) < 600, str(error)[:600]
            _behave(server)
            retried_duplicates += ledger.charge_cost(user, cost, request_id=request_id).duplicate
        # A fault costs at most a deadline for the request and one for reading back.
        slowest = max(slowest, time.monotonic() - started)
        _behave(server)
        charged[user] += cost
    held = {user: ledger.get(user).current_cost for user in USERS}
    lost = sum(1 for user in USERS if held[user] < charged[user])
    doubled = sum(1 for user in USERS if held[user] > charged[user])
    line = counts(
        operations=len(rounds),
        faults=len(rounds),
        errors_reported=errors,
        retries_found_stored=retried_duplicates,
        charges_lost=lost,
        charges_doubled=doubled,
        users_wiped=len(USERS) - len(ledger.users()),
        requests_elsewhere=len(elsewhere.requests),
        slowest_ms=round(slowest * 1000),
    )
    assert held == charged, line
    assert sorted(ledger.users()) == sorted(USERS), line
    assert elsewhere.requests == [], line
    assert errors > 0 and slowest < 4 * DEADLINE + 1, line
