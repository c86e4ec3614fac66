"""client_type="hosted": budgets on a server speaking LiteLLM's get_budget/set_budget protocol."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from budgetctl import BudgetManager, Ledger
from budgetctl.core.periods import UTC
from budgetctl.errors import (
    CorruptStateError,
    NotSupportedError,
    RequestIdConflictError,
    StorageIOError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
)
from budgetctl.store.hosted import LITELLM_API_BASE, META_KEY, RECORD_KEY, HostedStore
from tests.helpers import Clock
from tests.helpers.budget_server import BudgetServer, budget_server
from tests.helpers.hostile_server import HostileServer, hostile_servers


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[BudgetServer]:
    with budget_server(monkeypatch) as running:
        yield running


def manager(server: BudgetServer, clock: Clock | None = None) -> BudgetManager:
    return BudgetManager(
        "<my-unique-project>", client_type="hosted", api_base=server.url, clock=clock or Clock()
    )


def test_budgets_live_on_the_server_in_litellms_shape(server: BudgetServer, data_dir) -> None:
    bm = manager(server)
    assert not bm.is_valid_user("1234")
    bm.create_budget(total_budget=10, user="1234", duration="monthly")
    for _ in range(3):
        bm.update_cost(user="1234", model="gpt-4o", input_text="hello", output_text="world")
    stored = server.projects["<my-unique-project>"]
    record = stored["1234"]
    # A LiteLLM client (or its server's reset job) reads the LiteLLM fields...
    assert record["total_budget"] == 10.0 and isinstance(record["current_cost"], float)
    assert record["duration"] == 31  # January's period, in days
    assert set(record["model_cost"]) == {"gpt-4o"}
    # ...and budgetctl keeps its exact record beside them.
    exact = Decimal(record[RECORD_KEY]["current_cost"])
    assert exact == 3 * (Decimal("0.0000025") + Decimal("0.00001"))
    assert stored[META_KEY]["format"] == "budgetctl-state" and "duration" not in stored[META_KEY]
    # Nothing was written locally.
    assert not data_dir.exists()


def test_a_second_client_sees_the_first_ones_changes(server: BudgetServer) -> None:
    first, second = manager(server), manager(server)
    first.create_budget(total_budget=5, user="u", duration="daily")
    first.update_cost(user="u", model="gpt-4o", input_text="a b c", output_text="d e f")
    assert second.is_valid_user("u")
    assert second.get_current_cost("u") == first.get_current_cost("u") > 0
    second.reset_cost("u")
    assert first.get_current_cost("u") == 0
    assert second.get_users() == ["u"]


def test_records_written_by_litellm_are_read(server: BudgetServer) -> None:
    clock = Clock()
    last_reset = (clock.now - timedelta(days=2)).timestamp()
    server.projects["p"] = {
        "alice": {
            "total_budget": 10,
            "duration": 28,
            "created_at": last_reset,
            "last_updated_at": last_reset,
            "current_cost": 0.30000000000000004,
            "model_cost": {"gpt-4": 0.30000000000000004},
        },
        "bob": {"total_budget": 2.5},
    }
    bm = BudgetManager("p", client_type="hosted", api_base=server.url, clock=clock)
    assert sorted(bm.get_users()) == ["alice", "bob"]
    assert bm.get_current_cost("alice") == 0.30000000000000004
    assert bm.get_total_budget("bob") == 2.5
    assert bm.get_model_cost("alice") == {"gpt-4": 0.30000000000000004}


def test_a_record_another_client_changed_is_taken_from_its_litellm_fields(
    server: BudgetServer,
) -> None:
    bm = manager(server)
    bm.create_budget(total_budget=10, user="u", duration="weekly")
    bm.update_cost(user="u", model="gpt-4o", input_text="x" * 50, output_text="y" * 50)
    record = server.projects["<my-unique-project>"]["u"]
    record["current_cost"] = 0  # e.g. a LiteLLM server's reset job, which knows nothing of ours
    assert bm.get_current_cost("u") == 0


def test_idempotency_and_the_cap_survive_the_round_trip(server: BudgetServer) -> None:
    clock = Clock()
    ledger = Ledger(store=HostedStore("proj", server.url), clock=clock)
    ledger.create("u", "1")
    ledger.set_cap("0.5")
    assert not ledger.charge_cost("u", "0.25", request_id="r1").duplicate
    assert ledger.charge_cost("u", "0.25", request_id="r1").duplicate
    with pytest.raises(RequestIdConflictError, match=r"already charged to 'u' for \$0\.25"):
        ledger.charge_cost("u", "0.3", request_id="r1")
    # ids written by budgetctl 0.1 (a time, no charge) are still duplicates
    server.projects["proj"]["__budgetctl__"]["request_ids"]["old"] = "2026-01-15T11:00:00Z"
    assert ledger.charge_cost("u", "0.3", request_id="old").duplicate
    clock.now += timedelta(days=91)  # then forgotten
    assert not ledger.charge_cost("u", "0", request_id="r1").duplicate
    clock.now -= timedelta(days=91)
    assert ledger.get("u").current_cost == Decimal("0.25")
    cap = ledger.cap()
    assert cap is not None and cap.current_cost == Decimal("0.25")


def test_a_cap_set_mid_period_counts_the_spend_it_can_know(server: BudgetServer) -> None:
    """No history on the server: a new cap counts the users whose whole current period lies in
    its own (a lower bound; the JSON store counts every charge of the period exactly)."""
    ledger = Ledger(store=HostedStore("proj", server.url), clock=Clock())  # Thu 2026-01-15
    ledger.create("day", "5", duration="daily")
    ledger.create("month", "5", duration="monthly")
    ledger.charge_cost("day", "1")
    ledger.charge_cost("month", "2")  # since Jan 1: how much of it since Monday is not known
    cap = ledger.set_cap("10", duration="weekly")
    assert cap.period_start.isoformat() == "2026-01-12T00:00:00+00:00"
    assert cap.current_cost == Decimal(1)


def test_unknown_users_and_projects(server: BudgetServer) -> None:
    bm = manager(server)
    assert bm.get_users() == [] and bm.user_dict == {}
    with pytest.raises(UnknownUserError):
        bm.get_current_cost("nobody")
    with pytest.raises(UnknownProjectError):
        Ledger(store=HostedStore("empty", server.url)).get("nobody")


def test_what_the_protocol_cannot_do_is_said(server: BudgetServer) -> None:
    ledger = Ledger(store=HostedStore("p", server.url), clock=Clock())
    ledger.create("u", "1")
    with pytest.raises(NotSupportedError, match="history"):
        ledger.history("u")
    with pytest.raises(NotSupportedError, match="custom prices"):
        ledger.set_price("m", "0.1", "0.2")


def test_server_errors_are_clear_and_change_nothing(server: BudgetServer) -> None:
    bm = manager(server)
    bm.create_budget(total_budget=10, user="u")
    before = server.projects["<my-unique-project>"]
    server.fail_with = 500
    with pytest.raises(StorageIOError, match="HTTP 500"):
        bm.reset_cost("u")
    server.fail_with = None
    assert server.projects["<my-unique-project>"] == before


def test_an_unreachable_server_is_a_clear_error(server: BudgetServer) -> None:
    bm = BudgetManager("p", client_type="hosted", api_base="http://127.0.0.1:9")
    with pytest.raises(StorageIOError, match="cannot reach the budget server"):
        bm.is_valid_user("u")


def test_a_server_answer_that_is_not_a_user_dict_is_corrupt(server: BudgetServer) -> None:
    server.projects["p"] = ["not", "users"]  # type: ignore[assignment]
    with pytest.raises(CorruptStateError):
        BudgetManager("p", client_type="hosted", api_base=server.url).get_users()


def test_the_default_server_is_litellms_and_is_not_contacted_at_construction() -> None:
    bm = BudgetManager("<my-unique-project>", client_type="hosted")
    assert bm.api_base == LITELLM_API_BASE
    store = bm.ledger.store
    assert isinstance(store, HostedStore) and store.api_base == LITELLM_API_BASE


# --- a hostile or failing server (issue 8, item 14) ----------------------------------------------

TOKEN = {"Authorization": "Bearer sk-secret", "Content-Type": "application/json"}


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HostileServer, HostileServer]]:
    with hostile_servers(monkeypatch) as servers:
        yield servers


def stored(server: HostileServer) -> str:
    """What the server holds for the project "team", as comparable text."""
    return json.dumps(server.projects["team"], sort_keys=True)


def three_users(server: HostileServer) -> BudgetManager:
    bm = BudgetManager("team", client_type="hosted", api_base=server.url, headers=TOKEN)
    for user in ("alice", "bob", "carol"):
        bm.create_budget(total_budget=10, user=user, duration="monthly")
    bm.update_cost(user="alice", model="gpt-4o", input_text="hi", output_text="there")
    return bm


def test_an_error_answer_for_a_project_seen_with_users_wipes_nothing(
    hostile: tuple[HostileServer, HostileServer],
) -> None:
    server, _ = hostile
    bm = three_users(server)
    before = stored(server)
    server.outage = True  # get_budget: {"status": "error"}
    for write in (
        lambda client: client.create_budget(total_budget=1, user="dave", duration="daily"),
        lambda client: client.update_budget_all_users(),
    ):
        for client in (bm, BudgetManager("team", client_type="hosted", api_base=server.url)):
            with pytest.raises(StorageIOError, match=r"answered an error .* has users"):
                write(client)
    with pytest.raises(StorageIOError, match="retry when the budget server is back"):
        bm.get_users()
    assert stored(server) == before
    server.outage = False
    assert sorted(bm.get_users()) == ["alice", "bob", "carol"]


def test_an_error_answer_for_a_project_never_seen_is_a_new_project(
    hostile: tuple[HostileServer, HostileServer],
) -> None:
    server, _ = hostile  # as in LiteLLM: "error" is how its server says it has nothing yet
    bm = BudgetManager("fresh", client_type="hosted", api_base=server.url)
    assert bm.get_users() == []
    bm.create_budget(total_budget=1, user="u", duration="daily")
    assert bm.get_users() == ["u"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_the_token_goes_nowhere_else(
    hostile: tuple[HostileServer, HostileServer], status: int
) -> None:
    server, elsewhere = hostile
    bm = three_users(server)
    before = stored(server)
    server.redirect_to, server.redirect_status = elsewhere.url, status
    with pytest.raises(StorageIOError, match=f"HTTP {status}, a redirect to {elsewhere.url}"):
        bm.reset_cost("alice")
    with pytest.raises(StorageIOError, match="never follows redirects"):
        bm.get_current_cost("alice")
    assert elsewhere.requests == []  # neither the request nor its bearer token
    assert stored(server) == before


def test_a_server_sending_a_byte_a_second_is_cut_at_the_deadline(
    hostile: tuple[HostileServer, HostileServer],
) -> None:
    server, _ = hostile
    three_users(server)
    server.drip = 0.05  # the answer (about 2 kB) would take a couple of minutes
    store = HostedStore("team", server.url, timeout=1)
    started = time.monotonic()
    with pytest.raises(StorageIOError, match="no complete answer within 1 s"):
        store.fetch()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("with_length", [True, False])
def test_a_huge_answer_is_refused_while_reading(
    hostile: tuple[HostileServer, HostileServer], with_length: bool
) -> None:
    server, _ = hostile
    server.huge, server.huge_length_header = 200 * 2**20, with_length
    started = time.monotonic()
    with pytest.raises(StorageIOError, match="larger than 64 MiB"):
        HostedStore("team", server.url).fetch()
    with pytest.raises(StorageIOError, match="larger than 1 MiB"):
        HostedStore("team", server.url, max_answer=2**20).fetch()
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("reply", [b"", b"<html>OK</html>", b'{"ok": true}', b"{"])
def test_a_write_stored_but_answered_unreadably_is_a_success(
    hostile: tuple[HostileServer, HostileServer], reply: bytes
) -> None:
    server, _ = hostile
    bm = three_users(server)
    cost = bm.get_current_cost("alice")
    server.set_reply = reply  # stored, then answered with this
    bm.update_cost(user="alice", model="gpt-4o", input_text="hi", output_text="there")
    assert bm.get_current_cost("alice") == pytest.approx(2 * cost)  # once, and no retry needed


@pytest.mark.parametrize("reply", [b"", b"not json"])
def test_a_write_not_stored_and_answered_unreadably_is_safe_to_retry(
    hostile: tuple[HostileServer, HostileServer], reply: bytes
) -> None:
    server, _ = hostile
    bm = three_users(server)
    before = stored(server)
    server.set_reply, server.set_stores = reply, False
    with pytest.raises(StorageIOError, match="does not hold the change; safe to retry"):
        bm.update_cost(user="alice", model="gpt-4o", input_text="hi", output_text="there")
    assert stored(server) == before


def test_a_write_stored_whose_answer_times_out_is_not_charged_twice(
    hostile: tuple[HostileServer, HostileServer],
) -> None:
    server, _ = hostile
    three_users(server)
    ledger = Ledger(store=HostedStore("team", server.url, timeout=1), clock=Clock())
    server.hang_after_store = 2.0  # stored, but the answer comes after the deadline
    result = ledger.charge_cost("bob", "0.5", request_id="call-1")
    assert not result.duplicate
    server.hang_after_store = None
    # A caller that retried anyway (with its request id) is told it is a duplicate.
    assert ledger.charge_cost("bob", "0.5", request_id="call-1").duplicate
    assert ledger.get("bob").current_cost == Decimal("0.5")


def test_a_write_whose_outcome_cannot_be_read_back_says_so(
    hostile: tuple[HostileServer, HostileServer],
) -> None:
    server, _ = hostile
    three_users(server)
    ledger = Ledger(store=HostedStore("team", server.url, timeout=1), clock=Clock())
    server.hang_after_store, server.outage_after_store = 2.0, True
    with pytest.raises(StorageIOError, match=r"may or may not be stored.*request id is safe"):
        ledger.charge_cost("bob", "0.5", request_id="call-2")


@pytest.mark.parametrize("api_base", ["ftp://example.com", "file:///etc/passwd", "localhost:8000"])
def test_api_base_must_be_an_http_url(api_base: str) -> None:
    with pytest.raises(StorageIOError, match="api_base must be an http"):
        HostedStore("p", api_base)


@pytest.mark.parametrize("options", [{"timeout": -1}, {"timeout": float("nan")}, {"max_answer": 0}])
def test_a_bad_timeout_or_size_limit_is_a_usage_error(options: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        HostedStore("p", "http://127.0.0.1:9", **options)  # type: ignore[arg-type]


def litellm_reset_job(user_dict: dict, now: float) -> None:
    """LiteLLM's update_budget_all_users + reset_on_duration over a user_dict, line for line."""
    for user in list(user_dict):
        if "duration" in user_dict[user]:
            last_updated_at = user_dict[user]["last_updated_at"]
            if now - last_updated_at >= user_dict[user]["duration"] * 24 * 60 * 60:
                user_dict[user]["current_cost"] = 0
                user_dict[user]["model_cost"] = {}
                user_dict[user]["last_updated_at"] = now


def test_sub_second_times_and_resets_keep_the_exact_record(server: BudgetServer) -> None:
    clock = Clock(Clock().now + timedelta(microseconds=250001))
    bm = manager(server, clock)
    bm.create_budget(total_budget=10, user="m", duration="monthly")
    bm.create_budget(total_budget=10, user="ever")
    bm.update_cost(user="m", model="gpt-4o", input_text="hello", output_text="world")
    clock.now += timedelta(days=2, microseconds=123)
    bm.reset_cost("m")
    bm.reset_cost("ever")
    bm.update_cost(user="m", model="gpt-4o", input_text="hello", output_text="world")
    stored = server.projects["<my-unique-project>"]
    # budgetctl's own record is still the one read back: the budget is still calendar-monthly
    assert stored["m"][RECORD_KEY]["duration"] == "monthly"
    assert bm.ledger.get("m").duration.text == "monthly"  # type: ignore[union-attr]
    # and a LiteLLM reset job reading the same user_dict resets it at the month's end, not before
    # (it would fail on a lifetime budget's duration: None, so there is none)
    assert "duration" not in stored["ever"]
    end_of_january = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    before = json.loads(json.dumps(stored))
    litellm_reset_job(before, end_of_january - 1)
    assert before["m"]["current_cost"] > 0
    litellm_reset_job(before, end_of_january)
    assert before["m"]["current_cost"] == 0
