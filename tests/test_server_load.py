"""Client mode under load (issue 12, "What must be shown"): 8 processes, each its own
``RemoteLedger`` of a real ``budgetctl serve``, charge and hold at once (tests/_serve_worker.py).
Nothing is lost (the sum of the acknowledged charges is the spend, which is the history's replay,
and every request id is in the history once), nothing is overspent (spend plus open holds never
exceed the budget that holds guard, sampled while the load runs and checked after), and a server
killed with kill -9 mid-load and restarted on the same store loses no acknowledged charge (every
call the kill left unanswered is retried with its request id and charged at most once).
On the data dir and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers.postgres import fresh_schema
from helpers.server import Client, allow_loopback

from budgetctl.core import events, rules
from budgetctl.ledger import Ledger

pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.process, pytest.mark.reliability]

BUDGETCTL = str(Path(sys.executable).parent / "budgetctl")
WORKER = str(Path(__file__).parent / "_serve_worker.py")
TOKEN = "load-token-0123456789"
PROJECT = "load"
WORKERS = 8
HELD_BUDGET = Decimal("1.00")  # small: holds are refused once spend + holds reach it
P = f"/v1/projects/{PROJECT}"


class Store(NamedTuple):
    args: tuple[str, ...]  # `budgetctl serve` options naming it
    ledger: Any  # () -> a direct Ledger on it (no server)


@pytest.fixture(params=["json", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "json":
        where = tmp_path / "served"
        yield Store(("--data-dir", str(where)), lambda: Ledger(PROJECT, where, server=""))
    else:
        with fresh_schema() as url:
            yield Store(
                ("--database-url", url), lambda: Ledger(PROJECT, database_url=url, server="")
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, store: Store, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_SERVER")}
    env["BUDGETCTL_SERVER_TOKEN"] = TOKEN
    env.pop("BUDGETCTL_DATABASE_URL", None)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [BUDGETCTL, "serve", "--port", str(port), *store.args], stderr=sink, env=env
        )
    client = Client(f"http://127.0.0.1:{port}", TOKEN)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.call("GET", "/healthz", timeout=2).status == 200:
                return process
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


class Worker:
    """One worker process and the lines it printed (read as they come)."""

    def __init__(self, url: str, name: int, ops: int) -> None:
        env = {**os.environ, "BUDGETCTL_SERVER": url, "BUDGETCTL_SERVER_TOKEN": TOKEN}
        env["BUDGETCTL_SERVER_TIMEOUT"] = "10"
        env.pop("BUDGETCTL_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, WORKER, PROJECT, str(name), str(ops), str(1000 + name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def finish(self, deadline: float) -> None:
        try:
            code = self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"a worker did not finish in time: {self.lines[-5:]}") from None
        self.reader.join(5)
        errors = self.process.stderr.read() if self.process.stderr else ""
        assert code == 0 and self.lines[-1:] == ["done"], (code, self.lines[-5:], errors[-2000:])


def acknowledged(workers: list[Worker]) -> dict[str, Decimal]:
    acks: dict[str, Decimal] = {}
    for worker in workers:
        for line in worker.lines:
            if line.startswith("ack "):
                _, rid, cost, *_ = line.split()
                assert rid not in acks, rid
                acks[rid] = Decimal(cost)
    return acks


def setup_budgets(client: Client) -> None:
    for user, total in (("spend", "1000"), ("held", str(HELD_BUDGET))):
        body = {"total_budget": total, "duration": "monthly"}
        answer = client.call("PUT", f"{P}/budgets/{user}", body)
        assert answer.status == 201, answer


class Sampler:
    """Reads the held budget through the server while the load runs: spend plus what open holds
    reserve never exceeds it."""

    def __init__(self, client: Client) -> None:
        self.client, self.samples = client, 0
        self.bad: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                answer = self.client.call("GET", P, timeout=5)
            except OSError:  # the server is being restarted
                continue
            if answer.status != 200:
                continue
            (held,) = [u for u in answer.body["users"] if u["user"] == "held"]
            reserved = held.get("reserved", Decimal(0))
            self.samples += 1
            if held["current_cost"] + reserved > held["total_budget"]:
                self.bad.append(held)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def check_store(ledger: Ledger, acks: dict[str, Decimal]) -> None:
    """What the store holds against what the workers were told."""
    history = ledger.history()
    charged = [e for e in history if isinstance(e, (events.Charge, events.Commit))]
    ids = [e.request_id for e in charged]
    assert len(ids) == len(set(ids)), "a request id charged twice"
    assert set(ids) == set(acks), set(ids) ^ set(acks)  # nothing lost, nothing unasked
    for event in charged:
        assert event.cost == acks[str(event.request_id)]
    spend = ledger.get("spend").current_cost
    held = ledger.get("held").current_cost
    assert sum(acks.values(), Decimal(0)) == spend + held
    replayed = rules.replay(reversed(history))
    assert replayed["spend"] == spend and replayed["held"] == held
    open_holds = sum((h.amount for h in ledger.holds("held")), Decimal(0))
    assert held + open_holds <= HELD_BUDGET, (held, open_holds)


def test_eight_clients_lose_nothing_and_never_overspend(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_loopback(monkeypatch)
    started = time.monotonic()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(port, store, tmp_path / "serve.log")
    try:
        client = Client(url, TOKEN)
        setup_budgets(client)
        sampler = Sampler(client)
        workers = [Worker(url, n, 30) for n in range(WORKERS)]
        for worker in workers:
            worker.finish(started + 55)
        sampler.close()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    acks = acknowledged(workers)
    assert len(acks) > WORKERS * 15  # every charge, and the commits
    lines = [line for worker in workers for line in worker.lines]
    assert "refused" in lines  # the held budget was reached: holds were refused, not overspent
    assert not [line for line in lines if line.startswith("retry")]
    assert sampler.samples > 0 and not sampler.bad, sampler.bad[:3]
    check_store(store.ledger(), acks)
    assert time.monotonic() - started < 60


def test_kill_9_mid_load_loses_no_acknowledged_charge(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_loopback(monkeypatch)
    started = time.monotonic()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    server = serve(port, store, log)
    try:
        client = Client(url, TOKEN)
        setup_budgets(client)
        workers = [Worker(url, n, 40) for n in range(WORKERS)]
        while len(acknowledged(workers)) < 40:  # mid-load
            assert time.monotonic() - started < 40, "the load did not start"
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        before = acknowledged(workers)
        time.sleep(0.5)  # the workers find no server, and retry
        server = serve(port, store, log)
        for worker in workers:
            worker.finish(started + 55)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    acks = acknowledged(workers)
    assert set(before) <= set(acks) and len(acks) > len(before)
    lines = [line for worker in workers for line in worker.lines]
    assert [line for line in lines if line.startswith("retry")], "the kill interrupted no call"
    check_store(store.ledger(), acks)
    assert time.monotonic() - started < 60
