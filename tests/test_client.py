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
_CLOCK = re.compile(r"\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\)")  # "(the clock's time)"


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
        if _TIME.match(value):
            return "<time>"
        return _CLOCK.sub("(<now>)", _HOLD.sub("<hold>", value))
    return value


def _session(places: list[str], dumps: Path) -> list[tuple[str, int, Any, str]]:
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
    step("reset-due", "--now", "2020-01-01T00:00:00Z")  # an earlier time: written
    step("reset-due", "--now", "2099-01-01T00:00:00Z")  # a later one: 2
    step("reset-due", "--now", "2099-01-01T00:00:00Z", "--dry-run")
    litellm = str(CLI_FIXTURES / "litellm_user_cost.json")
    step("-p", "lite", "import-litellm", litellm, "--dry-run")
    step("-p", "lite", "import-litellm", litellm)
    step("-p", "lite", "import-litellm", litellm)  # skipped
    step("-p", "lite", "import-litellm", litellm, "--replace")
    response = str(CLI_FIXTURES.parent / "responses" / "openai.json")
    step("-p", "lite2", "import-litellm", response)  # not a user_cost.json: 2
    step("-p", "lite", "show")
    dumped = run("dump")
    assert dumped.exit_code == 0, dumped.stderr
    (dumps / "default.jsonl").write_text(dumped.stdout)
    dump_file = str(dumps / "default.jsonl")
    step("-p", "copy", "restore", dump_file, "--dry-run")
    step("-p", "copy", "restore", dump_file)
    step("-p", "copy", "restore", dump_file)  # exists: 1
    step("-p", "copy", "restore", dump_file, "--replace")
    (dumps / "cut.jsonl").write_text("".join(dumped.stdout.splitlines(True)[:-1]))
    step("-p", "cut", "restore", str(dumps / "cut.jsonl"))  # cut short: 2
    step("-p", "copy", "show")
    step("-p", "copy", "history", "--limit", "5")
    nowhere = run("-p", "nowhere", "dump")  # unknown project: 4
    said = nowhere.stderr
    for place in places:
        said = said.replace(place, "<store>")
    seen.append(("dump -p nowhere", nowhere.exit_code, nowhere.stdout, said))
    return seen


def test_every_command_answers_the_same_through_the_server(
    server: Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    local = _session([str(data_dir)], dumps)
    monkeypatch.setenv("BUDGETCTL_SERVER", server.url)
    monkeypatch.setenv("BUDGETCTL_SERVER_TOKEN", TOKEN)
    remote = _session([str(server.data_dir), server.url], dumps)
    assert [s[:2] for s in remote] == [s[:2] for s in local]
    for here, there in zip(local, remote, strict=True):
        assert there == here
    assert all(TOKEN not in str(step) for step in remote)
    assert len(server.paths) > len(remote)  # the server did the work (and took the token)
    done = set(server.paths)
    assert {"/v1/projects/default/dump", "/v1/projects/copy/restore"} <= done
    assert "/v1/projects/lite/import-litellm" in done


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
    with pytest.raises(NotSupportedError) as refused:
        Ledger("default").store.create_many([])  # type: ignore[attr-defined]
    assert "not offered by the budget server's API" in str(refused.value)
    assert client.url in str(refused.value)
    assert "both set" in fails(2, "show", "--database-url", "postgresql://h/db")
    assert "later than the clock" in fails(2, "reset-due", "--now", "2099-01-01T00:00:00Z")
    assert not data_dir.exists()


def test_dump_restore_and_import_go_through_the_server(client: Server, data_dir: Path) -> None:
    ok("create", "alice", "-b", "10", "-d", "monthly", "--alert-at", "80")
    ok("update-cost", "alice", "--cost", "0.000123", "-m", "gpt-4o", "--request-id", "r1")
    ok("check", "alice", "--cost", "1", "--reserve")
    ok("cap", "--budget", "50", "--duration", "weekly")
    ok("price", "set", "acme/llama", "--input", "1", "--output", "2")
    remote = ok("dump").stdout
    local = Ledger("default", client.data_dir, server="")
    out = io.BytesIO()
    from budgetctl import dump as dumping

    dumping.dump(local, out)
    header, *rest = remote.splitlines()
    there_header, *there = out.getvalue().decode().splitlines()
    assert rest == there  # every line as the store holds it, exactly
    assert json.loads(header)["project"] == json.loads(there_header)["project"] == "default"
    ok("-p", "copy", "restore", "-", input=remote)
    assert Ledger(
        "copy", client.data_dir, server=""
    ).store.export() == local.store.export()._replace(project="copy")
    assert "exists" in fails(1, "-p", "copy", "restore", "-", input=remote)
    ok(
        "-p",
        "lite",
        "import-litellm",
        "-",
        input=(CLI_FIXTURES / "litellm_user_cost.json").read_bytes(),
    )
    assert len(Ledger("lite", client.data_dir, server="").users()) == 2
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
        ledger.store.create_many([])  # type: ignore[attr-defined]
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


def test_one_request_a_charge_and_a_check_with_the_whole_budget(client: Server) -> None:
    remote = Ledger("p")
    remote.create("alice", "10", duration="monthly", alert_at="50")
    before = len(client.paths)
    charged = remote.charge_cost("alice", "6")
    assert client.paths[before:] == ["/v1/projects/p/charges"]  # no second read
    assert charged.crossed_alert and charged.budget.next_reset_at is not None
    held = remote.reserve("alice", "1", ttl=60)
    assert client.paths[before + 1 :] == ["/v1/projects/p/checks"]
    assert held.hold is not None and held.cap_reserved == 1
    assert held.hold == remote.holds("alice")[0]  # the hold itself, not rebuilt from its ttl
    assert remote.view().holds == (held.hold,)  # show's holds, not placeholders
    assert remote.reserve("alice", "1", dry_run=True).allowed
    assert len(remote.holds()) == 1  # a dry run held nothing


def test_several_thresholds_and_their_crossings_come_back_from_the_server(
    client: Server,
) -> None:
    """Alerts are decided on the server, with the charge; the client gets what was recorded, so
    update-cost warns in client mode as locally."""
    remote = Ledger("p")
    assert remote.create("alice", "10", duration="monthly", alert_at="50,80").alert_at == (
        Decimal(50),
        Decimal(80),
    )
    first = remote.charge_cost("alice", "6")
    assert [a.threshold for a in first.crossed] == [Decimal(50)]
    assert remote.charge_cost("alice", "1").crossed == ()  # once per period
    result = run("update-cost", "alice", "--cost", "2", "-q", "-p", "p")
    assert result.exit_code == 0 and "crossed 80%" in result.stderr, result.stderr


def test_a_response_object_with_cache_writes_is_priced_as_locally(
    client: Server, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    response = SimpleNamespace(  # as a LiteLLM ModelResponse of an Anthropic call
        id="chatcmpl-1",
        model="claude-x",
        usage=SimpleNamespace(
            prompt_tokens=3000,
            completion_tokens=100,
            total_tokens=3100,
            cache_read_input_tokens=1000,
            cache_creation_input_tokens=1500,
        ),
    )
    costs = []
    for ledger in (Ledger("p", tmp_path / "local", server=""), Ledger("p")):
        ledger.create("alice", "10", duration="monthly")
        ledger.set_price_per_million("claude-x", "3", "15", cache_read="0.3", cache_creation="3.75")
        costs.append(ledger.charge_response("alice", response).cost)
    # 1,000 cache reads at $0.30/M, 1,500 cache writes at $3.75/M, 500 plain at $3/M, 100 out
    assert costs[0] == costs[1] == Decimal("0.0003") + Decimal("0.005625") + Decimal("0.003")


def test_roll_over_resets_only_the_given_users(client: Server) -> None:
    from datetime import datetime, timezone

    past = datetime(2026, 1, 1, tzinfo=timezone.utc)
    there = Ledger("p", client.data_dir, server="", clock=lambda: past)  # the server's store
    for user in ("alice", "bob"):
        there.create(user, "10", duration="daily")
        there.charge_cost(user, "1")
    before = len(client.paths)
    done = Ledger("p").roll_over(["alice"])
    assert client.paths[before:] == ["/v1/projects/p/reset-due"]  # one request
    assert [user for user, _ in done.reset] == ["alice"] and done.checked == 1
    history = Ledger("p", client.data_dir, server="").history()
    assert {e.user for e in history if type(e).__name__ == "PeriodClosed"} == {"alice"}
    with pytest.raises(UnknownUserError):
        Ledger("p").roll_over(["carol"])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    manager = BudgetManager("p", client_type="hosted", api_base=client.url, headers=headers)
    manager.reset_on_duration("bob")  # the seed's call: roll_over(["bob"]) on the server
    history = Ledger("p", client.data_dir, server="").history()
    assert {e.user for e in history if type(e).__name__ == "PeriodClosed"} == {"alice", "bob"}


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
