"""The real ``budgetctl serve`` process: it starts, answers, and on SIGTERM finishes the request
in flight (its charge recorded once) and exits 0; one-shot commands never import its stack."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.server import Answer, Client, allow_loopback

pytest.importorskip("uvicorn")
BUDGETCTL = [str(Path(sys.executable).parent / "budgetctl")]
TOKEN = "process-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(data_dir: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Client]]:
    port = free_port()
    env = {**os.environ, "BUDGETCTL_SERVER_TOKEN": TOKEN}
    process = subprocess.Popen(
        [*BUDGETCTL, "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
        stderr=subprocess.PIPE,
        env=env,
    )
    client = Client(f"http://127.0.0.1:{port}", TOKEN)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.call("GET", "/healthz", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"serve did not start: {process.communicate()[1]!r}")
            time.sleep(0.05)
        yield process, client
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


pytestmark = pytest.mark.process


def test_sigterm_finishes_the_request_in_flight(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_loopback(monkeypatch)
    with serving(data_dir) as (process, client):
        body = {"total_budget": "10", "duration": "monthly"}
        assert client.call("PUT", "/v1/projects/p/budgets/alice", body).status == 201
        # Hold the data dir's lock, as another writer would: the charge waits for it.
        fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        answers: list[Answer] = []
        charge = {"user": "alice", "cost": "1.5", "request_id": "slow-1"}
        sender = threading.Thread(
            target=lambda: answers.append(client.call("POST", "/v1/projects/p/charges", charge))
        )
        sender.start()
        time.sleep(1.0)  # the request is in the server, waiting for the lock
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # it waits for the request in flight
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        sender.join(20)
        assert answers and answers[0].status == 200, answers
        assert answers[0].body["current_cost"] == Decimal("1.5")
        assert process.wait(20) == 0
        log = process.stderr.read().decode() if process.stderr else ""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(
        line.get("path") == "/v1/projects/p/charges" and line["status"] == 200 for line in lines
    )
    assert TOKEN not in log
    from budgetctl.ledger import Ledger

    ledger = Ledger("p", data_dir)
    assert ledger.get("alice").current_cost == Decimal("1.5")
    assert [e.to_json()["type"] for e in ledger.history("alice")].count("charge") == 1


def test_serve_refuses_a_public_address_without_a_token(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BUDGETCTL_SERVER_TOKEN"}
    done = subprocess.run(
        [*BUDGETCTL, "serve", "--host", "0.0.0.0", "--data-dir", str(data_dir)],
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"without a token" in done.stderr


def loaded_by(*args: str) -> Any:
    code = (
        "import sys, atexit, json\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0]"
        " in ('starlette', 'uvicorn', 'anyio', 'budgetctl'))), file=sys.stderr))\n"
        f"sys.argv = ['budgetctl', *{list(args)!r}]\n"
        "from budgetctl.cli.app import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    return json.loads(done.stderr.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("projects",), ("--help",), ("serve", "--help")])
def test_no_one_shot_command_imports_the_server_stack(args: tuple[str, ...]) -> None:
    loaded = loaded_by(*args)
    assert not [m for m in loaded if m.split(".")[0] in ("starlette", "uvicorn", "anyio")]
    assert not [m for m in loaded if m.startswith("budgetctl.server")]
