"""Client mode (docs/server.md, "Client mode"): with ``BUDGETCTL_SERVER`` the command line and
``Ledger`` use a budget server's ``/v1`` API and give the same answers as on a local store; the
token is sent and never shown; a server that cannot be reached fails closed (exit 1, nothing says
"fits"); ``BudgetManager(client_type="hosted")`` on a budgetctl server uses ``/v1``.

The server is the real one (``budgetctl serve``'s app, uvicorn in a thread: helpers.server)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import CLI_FIXTURES, fails, ok, run
from helpers.server import allow_loopback, running

from budgetctl.client import detect
from budgetctl.client.api import error_code
from budgetctl.client.remote import RemoteLedger
from budgetctl.compat import BudgetManager
from budgetctl.errors import (
    BudgetExceededError,
    NotSupportedError,
    StorageIOError,
    UnknownUserError,
    UserExistsError,
)
from budgetctl.ledger import Ledger

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env")

TOKEN = "t0ps3cret-token"


class Server:
    """The running server: its URL, its data dir, and the paths of the requests it logged."""

    def __init__(self, url: str, data_dir: Path, log: io.StringIO) -> None:
        self.url, self.data_dir, self._log = url, data_dir, log

    @property
    def paths(self) -> list[str]:
        return [json.loads(line)["path"] for line in self._log.getvalue().splitlines() if line]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Server]:
    monkeypatch.setattr(detect, "_known", {})
    allow_loopback(monkeypatch)
    with running(tmp_path / "server-data", token=TOKEN) as up:
        yield Server(up.url, tmp_path / "server-data", up.log)


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """Every command of the test is a client of ``server``."""
    monkeypatch.setenv("BUDGETCTL_SERVER", server.url)
    monkeypatch.setenv("BUDGETCTL_SERVER_TOKEN", TOKEN)
    return server


# --- the same answers as on a local store ---------------------------------------------------------

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_HOLD = re.compile(r"h_[0-9a-f]{8,}")


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: bool(item) if key == "created_project" else _normal(item)
            for key, item in value.items()
            if key not in ("data_dir", "server")
        }
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, str):
        return "<time>" if _TIME.match(value) else _HOLD.sub("<hold>", value)
    return value


def _session(places: list[str]) -> list[tuple[str, int, Any, str]]:
    """test_cli_database's sequence of commands; each one's exit code, ``--json`` document (or
    what it said on stdout when it failed) and stderr, with where the state is made equal."""
    seen: list[tuple[str, int, Any, str]] = []

    def step(*args: str) -> Any:
        result = run(*args, "--json")
        if result.exit_code in (0, 3):
            found = json.loads(result.stdout, parse_float=Decimal)
        else:
            assert result.stderr.startswith("error: "), result.stderr
            assert "Traceback" not in result.stderr
            found = result.stdout
        said = result.stderr
        for place in places:
            said = said.replace(place, "<store>")
        seen.append((_normal(" ".join(args)), result.exit_code, _normal(found), _normal(said)))
        return found

    step("create", "alice", "-b", "10", "-d", "monthly", "--alert-at", "80")
    step("create", "bob", "-b", "5", "-d", "none")
    step("create", "alice", "-b", "1", "-d", "none")  # exists: 1
    step("-p", "team", "create", "carol", "-b", "3", "-d", "weekly", "--tz", "Europe/Paris")
    step("update-cost", "alice", "--cost", "2.5", "-m", "gpt-4o")
    charge = ("-m", "gpt-4o", "--prompt-tokens", "1000", "--completion-tokens", "200")
    step("update-cost", "alice", *charge, "--request-id", "r1")
    step("update-cost", "alice", *charge, "--request-id", "r1")  # a duplicate
    step("update-cost", "bob", "--cost", "1", "--request-id", "r1")  # a conflict: 1
    step("-p", "team", "update-cost", "carol", "--cost", "4")  # over budget: a warning
    step(
        "update-cost", "alice", "--input-text", "hello there", "--output-text", "hi", "-m", "gpt-4o"
    )
    step(
        "update-cost", "alice", "--response", str(CLI_FIXTURES.parent / "responses" / "openai.json")
    )
    step("update-cost", "alice", "--cost", "1", "--dry-run")
    step("check", "alice", "--cost", "1")
    step("check", "alice", "-m", "gpt-4o", "--prompt", "Summarise this", "--max-tokens", "50")
    step("check", "bob", "--cost", "50")  # 3
    held = step("check", "alice", "--cost", "2", "--reserve")["hold_id"]
    step("holds")
    step("show", "alice")
    step("update-cost", "alice", "--cost", "1.5", "--hold", held)
    other = step("check", "bob", "--cost", "1", "--reserve", "--ttl", "10m")["hold_id"]
    step("holds", "bob")
    step("show")
    step("release", other)
    step("release", other)  # released already
    step("release", "h_0123456789abcdef01234567")  # unknown: 4
    step("cap", "--budget", "100", "--duration", "monthly")
    step("cap")
    step("price", "set", "acme/llama", "--input", "1", "--output", "2")
    step("update-cost", "bob", "-m", "acme/llama", "--prompt-tokens", "1000")
    step("update-cost", "bob", "-m", "no-such-model", "--prompt-tokens", "1")  # 4
    step("models", "acme/llama")
    step("reset", "bob")
    step("reset-due")
    step("reset-due", "--all-projects")
    step("set", "alice", "--budget", "20", "--alert-at", "none")
    step("show")
    step("history")
    step("history", "alice", "--limit", "3")
    step("projects")
    step("delete", "bob", "--yes")
    step("show", "bob")  # 4
    step("-p", "nowhere", "show")  # 4
    step("-p", "team", "show")
    step("price", "remove", "acme/llama")
    step("cap", "--clear")
    step("create", "dave", "-b", "1e400", "-d", "none")  # 2
    return seen


def test_every_command_answers_the_same_through_the_server(
    server: Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _session([str(data_dir)])
    monkeypatch.setenv("BUDGETCTL_SERVER", server.url)
    monkeypatch.setenv("BUDGETCTL_SERVER_TOKEN", TOKEN)
    remote = _session([str(server.data_dir), server.url])
    assert [s[:2] for s in remote] == [s[:2] for s in local]
    for here, there in zip(local, remote, strict=True):
        assert there == here
    assert all(TOKEN not in str(step) for step in remote)
    assert len(server.paths) > len(remote)  # the server did the work (and took the token)


def test_client_mode_keeps_nothing_locally(client: Server, data_dir: Path) -> None:
    ok("create", "alice", "-b", "10", "-d", "monthly")
    ok("update-cost", "alice", "--cost", "2.5")
    assert not data_dir.exists()  # nothing in the local data dir
    assert (client.data_dir / "default.json").exists()
    made = json.loads(ok("-p", "new", "create", "u", "-b", "1", "-d", "none", "--json").stdout)
    assert made["created_project"] == {"project": "new", "server": client.url}
    assert json.loads(ok("projects", "--json").stdout) == {
        "server": client.url,
        "projects": ["default", "new"],
    }


def test_what_the_api_does_not_offer_is_refused_not_done_locally(
    client: Server, data_dir: Path
) -> None:
    ok("create", "alice", "-b", "10", "-d", "monthly")
    message = fails(1, "-p", "x", "import-litellm", str(CLI_FIXTURES / "litellm_user_cost.json"))
    assert "not offered by the budget server's API" in message and client.url in message
    assert "both set" in fails(2, "show", "--database-url", "postgresql://h/db")
    assert not data_dir.exists()


# --- errors ---------------------------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_exit_1_and_never_shown(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETCTL_SERVER", server.url)
    monkeypatch.setenv("BUDGETCTL_SERVER_TOKEN", "wrong-" + TOKEN)
    result = run("check", "alice", "--cost", "1")
    assert result.exit_code == 1 and result.stdout == ""
    assert (
        "refused the request (HTTP 401" in result.stderr
        and "BUDGETCTL_SERVER_TOKEN" in result.stderr
    )
    assert TOKEN not in result.stderr
    monkeypatch.delenv("BUDGETCTL_SERVER_TOKEN")
    assert "HTTP 401" in fails(1, "show")


@pytest.mark.parametrize(
    "args",
    [
        ("show",),
        ("show", "alice", "--json"),
        ("update-cost", "alice", "--cost", "1"),
        ("update-cost", "alice", "--cost", "1", "--json"),
        ("check", "alice", "--cost", "1"),
        ("check", "alice", "--cost", "0", "--json"),
        ("check", "alice", "--cost", "1", "--reserve"),
        ("create", "alice", "-b", "5", "-d", "none"),
        ("reset-due", "-q"),
        ("reset-due", "--all-projects"),
        ("projects",),
    ],
)
def test_a_server_that_cannot_be_reached_is_exit_1_naming_it_and_nothing_on_stdout(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    allow_loopback(monkeypatch)
    monkeypatch.setenv("BUDGETCTL_SERVER", "http://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("BUDGETCTL_SERVER_TOKEN", TOKEN)
    result = run(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""  # check never says "ok" without the server
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert (
        "http://127.0.0.1:1" in result.stderr and "cannot reach the budget server" in result.stderr
    )
    assert TOKEN not in result.stderr


def _silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server that takes requests and never answers."""
    allow_loopback(monkeypatch)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def take() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        listener.close()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _silent_server(monkeypatch)


def test_a_charge_whose_answer_is_lost_says_the_outcome_is_unknown(
    silent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETCTL_SERVER", silent)
    monkeypatch.setenv("BUDGETCTL_SERVER_TIMEOUT", "0.3")
    message = fails(1, "update-cost", "alice", "--cost", "1", "--request-id", "r1")
    assert "no complete answer within 0.3 s" in message
    assert "outcome is unknown" in message and "same request id" in message
    result = run("check", "alice", "--cost", "1")  # fails closed
    assert result.exit_code == 1 and result.stdout == ""
    assert "outcome is unknown" not in result.stderr  # a plain check wrote nothing


def test_server_errors_come_back_as_the_same_classes(client: Server) -> None:
    ledger = Ledger("default")
    assert isinstance(ledger, RemoteLedger)
    ledger.create("alice", "1", duration="monthly")
    with pytest.raises(UserExistsError):
        ledger.create("alice", "1", duration="monthly")
    with pytest.raises(UnknownUserError) as unknown:
        ledger.get("bob")
    assert isinstance(unknown.value, KeyError) and "no budget for user 'bob'" in str(unknown.value)
    with pytest.raises(BudgetExceededError) as over:
        ledger.charge_cost("alice", "5", enforce=True)
    assert over.value.exit_code == 3
    with pytest.raises(NotSupportedError):
        ledger.store.export()  # type: ignore[attr-defined]
    assert error_code(StorageIOError) == "storage_io"
    assert Ledger("default", server="").__class__ is Ledger


# --- the library ---------------------------------------------------------------------------------


def test_the_ledger_returns_the_same_typed_values(client: Server, tmp_path: Path) -> None:
    remote = Ledger("p")
    local = Ledger("p", tmp_path / "local", server="")
    for ledger in (local, remote):
        ledger.create("alice", "10", duration="monthly", alert_at="80", start="2026-01-15")
        ledger.charge_tokens("alice", "gpt-4o", 1000, 200, request_id="r1")
        ledger.set_cap("100", duration="monthly")
    a, b = local.get("alice"), remote.get("alice")
    assert b._replace(created_at=a.created_at) == a
    assert remote.charge_cost("alice", "0.25").budget.current_cost == a.current_cost + Decimal(
        "0.25"
    )
    held = remote.reserve("alice", "1", ttl=60)
    assert held.allowed and held.hold is not None
    assert [h.hold_id for h in remote.holds("alice")] == [held.hold.hold_id]
    committed = remote.commit(held.hold.hold_id, "alice", "0.5")
    assert committed.held == Decimal(1) and not committed.duplicate
    kinds = [type(e).__name__ for e in remote.history("alice")]
    assert kinds[:2] == ["Commit", "Charge"] or "Charge" in kinds
    assert remote.cap() is not None and remote.clear_cap() is True
    assert remote.users() == ["alice"]


# --- BudgetManager --------------------------------------------------------------------------------


def test_budget_manager_on_a_budgetctl_server_uses_v1_and_is_atomic(server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    first = BudgetManager("proj", client_type="hosted", api_base=server.url, headers=headers)
    assert isinstance(first.ledger, RemoteLedger)
    first.create_budget(10.0, "alice", "monthly")
    threads = [
        threading.Thread(
            target=lambda: BudgetManager(
                "proj", client_type="hosted", api_base=server.url, headers=headers
            ).update_cost("alice", model="gpt-4o", input_text="hello", output_text="world")
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    one = Ledger("proj", server.data_dir, server="").history("alice")
    assert sum(1 for e in one if type(e).__name__ == "Charge") == 8  # no update lost
    cost = Ledger("proj", server.data_dir, server="").get("alice").current_cost
    assert Decimal(str(first.get_current_cost("alice"))) == cost
    assert server.paths.count("/healthz") == 1  # once per process
    assert not {"/get_budget", "/set_budget"} & set(server.paths)


def test_budget_manager_on_another_server_keeps_the_hosted_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers.budget_server import budget_server

    from budgetctl.store.hosted import HostedStore

    monkeypatch.setattr(detect, "_known", {})
    with budget_server(monkeypatch) as litellm_like:
        manager = BudgetManager("proj", client_type="hosted", api_base=litellm_like.url)
        assert isinstance(manager.ledger.store, HostedStore)
    assert os.environ.get("BUDGETCTL_SERVER") is None
