"""``budgetctl serve``: what the atomic API gives beyond the CLI's ``--json`` keys (so a client
rebuilds the same typed values from one answer), charges with Anthropic cache writes, reset-due
for some users or at an earlier time, and the routes that take or give a whole document (dump,
restore, import-litellm), on the JSON store and on PostgreSQL."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import postgres
from helpers.cli import CLI_FIXTURES
from helpers.server import Client, Running, allow_loopback, running

from budgetctl.ledger import Ledger

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

P = "/v1/projects/team"


@pytest.fixture(params=["json", "postgres"])
def server(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    allow_loopback(monkeypatch)
    if request.param == "json":
        with running(data_dir) as found:
            yield found
    else:
        with postgres.fresh_schema() as url, running(data_dir, url) as found:
            yield found


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status == status, answer
    return answer.body


def fails(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.body["error"]["code"] == code, answer.body
    return answer.body["error"]


def create(client: Client, user: str = "alice", budget: Any = "10", **more: Any) -> Any:
    body = {"total_budget": budget, "duration": "monthly", **more}
    return ok(client.call("PUT", f"{P}/budgets/{user}", body), 201)


def raw(client: Client, method: str, path: str, data: bytes, kind: str) -> Any:
    return client.call(method, path, raw=data, headers={"Content-Type": kind})


def download(client: Client, path: str) -> tuple[int, str, bytes]:
    """A GET whose answer is not JSON (a dump): its status, media type and bytes."""
    conn = http.client.HTTPConnection(client.host, client.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


# --- the keys beyond the CLI's -------------------------------------------------------------------


def test_answers_carry_the_whole_budget_the_hold_and_the_holds(server: Running) -> None:
    client = server.client
    create(client, alert_at=50)
    charged = ok(client.call("POST", f"{P}/charges", {"user": "alice", "cost": "6"}))
    budget = charged["budget"]  # as the charge left it: the alert crossed, the next reset
    assert budget["user"] == "alice" and budget["current_cost"] == 6 and budget["alerting"]
    assert budget["alert_at"] == 50 and budget["next_reset_at"] and budget["timezone"] == "UTC"
    assert charged["current_cost"] == budget["current_cost"]  # the CLI's keys are all there
    held = ok(
        client.call(
            "POST", f"{P}/checks", {"user": "alice", "cost": "1", "reserve": True, "ttl": "5m"}
        )
    )
    assert held["hold"]["hold_id"] == held["hold_id"] and held["hold"]["amount"] == 1
    assert held["hold"]["expires_at"] == held["expires_at"] and held["hold"]["created_at"]
    assert held["cap_reserved"] == 1 and held["budget"]["current_cost"] == 6
    plain = ok(client.call("POST", f"{P}/checks", {"user": "alice", "cost": "1"}))
    assert plain["hold"] is None and plain["cap_reserved"] == 1 and "hold_id" not in plain
    dry = {"user": "alice", "cost": "1", "reserve": True, "dry_run": True}
    assert ok(client.call("POST", f"{P}/checks", dry))["allowed"] is True
    shown = ok(client.call("GET", P))
    assert [h["hold_id"] for h in shown["holds"]] == [held["hold_id"]]  # the dry run held nothing
    assert shown["users"][0]["reserved"] == 1


def test_a_charge_with_cache_writes_is_priced_as_locally(server: Running, tmp_path: Path) -> None:
    client = server.client
    create(client)
    price = {
        "input_per_million": "3",
        "output_per_million": "15",
        "cache_read": "0.3",
        "cache_creation": "3.75",
    }
    ok(client.call("PUT", f"{P}/prices/claude-x", price))
    body = {
        "user": "alice",
        "model": "claude-x",
        "prompt_tokens": 3000,
        "completion_tokens": 100,
        "cached_tokens": 1000,
        "cache_creation_tokens": 1500,
    }
    charged = ok(client.call("POST", f"{P}/charges", body))
    local = Ledger("team", tmp_path / "local", server="")
    local.create("alice", "10", duration="monthly")
    local.set_price_per_million("claude-x", "3", "15", cache_read="0.3", cache_creation="3.75")
    expected = local.charge_tokens(
        "alice", "claude-x", 3000, 100, cached_tokens=1000, cache_creation_tokens=1500
    ).cost
    assert charged["cost"] == expected
    without = {k: v for k, v in body.items() if k != "cache_creation_tokens"}
    assert ok(client.call("POST", f"{P}/charges", without))["cost"] != expected
    too_many = {**body, "cache_creation_tokens": 2500}  # with the cached ones, over the prompt
    fails(client.call("POST", f"{P}/charges", too_many), 400, "usage")
    fails(client.call("POST", f"{P}/charges", {**body, "cost": 1}), 400, "usage")  # two forms


# --- reset-due -------------------------------------------------------------------------------


def test_reset_due_for_some_users_and_at_an_earlier_time(server: Running) -> None:
    client = server.client
    create(client, "alice")
    create(client, "bob")
    for user in ("alice", "bob"):
        ok(client.call("POST", f"{P}/charges", {"user": user, "cost": 1}))
    some = ok(client.call("POST", f"{P}/reset-due", {"users": ["alice"]}))
    assert some["checked"] == 1 and some["reset"] == [] and some["expired"] == []
    fails(client.call("POST", f"{P}/reset-due", {"users": ["carol"]}), 404, "unknown_user")
    both = {"users": ["alice"], "now": "2020-01-01T00:00:00Z"}
    fails(client.call("POST", f"{P}/reset-due", both), 400, "usage")
    # an earlier time (a backfill) is written as the CLI writes it; a later one only previewed
    earlier = ok(client.call("POST", f"{P}/reset-due", {"now": "2020-01-01T00:00:00Z"}))
    assert earlier["dry_run"] is False and earlier["checked"] == 2
    later = fails(
        client.call("POST", f"{P}/reset-due", {"now": "2099-01-01T00:00:00Z"}), 400, "usage"
    )
    assert "later than the clock" in later["message"] and "dry_run" in later["message"]
    assert ok(client.call("GET", f"{P}/budgets/alice"))["current_cost"] == 1  # nothing written


# --- dump, restore, import-litellm -------------------------------------------------------------


def test_dump_then_restore_into_another_project(server: Running) -> None:
    client = server.client
    create(client, alert_at=80)
    ok(client.call("POST", f"{P}/charges", {"user": "alice", "cost": "0.000123", "model": "m"}))
    ok(client.call("PUT", f"{P}/cap", {"total_budget": "100", "duration": "monthly"}))
    ok(client.call("POST", f"{P}/checks", {"user": "alice", "cost": 1, "reserve": True}))
    status, kind, body = download(client, f"{P}/dump")
    assert status == 200 and kind.startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines[0]["format"] == "budgetctl-dump" and lines[0]["project"] == "team"
    assert lines[-1] == {
        "kind": "end",
        "budgets": 1,
        "caps": 1,
        "prices": 0,
        "holds": 1,
        "events": lines[-1]["events"],
    }
    fails(client.call("GET", "/v1/projects/nowhere/dump"), 404, "unknown_project")

    copy = "/v1/projects/copy"
    preview = ok(raw(client, "POST", f"{copy}/restore?dry_run=true", body, "x"))
    assert preview["dry_run"] is True and preview["from_project"] == "team"
    fails(client.call("GET", copy), 404, "unknown_project")  # a dry run wrote nothing
    done = ok(raw(client, "POST", f"{copy}/restore", body, "application/x-ndjson"))
    assert done["budgets"] == 1 and done["holds"] == 1 and done["replaced"] is False
    assert done["created_project"]["project"] == "copy"
    assert ok(client.call("GET", copy))["users"] == ok(client.call("GET", P))["users"]
    fails(raw(client, "POST", f"{copy}/restore", body, "x"), 409, "project_exists")
    again = ok(raw(client, "POST", f"{copy}/restore?replace=true", body, "x"))
    assert again["replaced"] is True and again["created_project"] is None

    cut = b"\n".join(body.splitlines()[:-1]) + b"\n"
    message = fails(raw(client, "POST", "/v1/projects/c2/restore", cut, "x"), 400, "usage")
    assert "the request body" in message["message"]
    fails(raw(client, "POST", "/v1/projects/c2/restore", b"", "x"), 400, "usage")
    fails(raw(client, "POST", "/v1/projects/c2/restore", b"\xff\x00", "x"), 400, "usage")
    fails(raw(client, "POST", f"{copy}/restore?colour=red", body, "x"), 400, "usage")
    fails(client.call("GET", "/v1/projects/c2"), 404, "unknown_project")


def test_import_litellm_takes_the_document(server: Running) -> None:
    client = server.client
    document = (CLI_FIXTURES / "litellm_user_cost.json").read_bytes()
    path = "/v1/projects/lite/import-litellm"
    preview = ok(raw(client, "POST", path + "?dry_run=true", document, "application/json"))
    assert preview["dry_run"] is True and len(preview["imported"]) == 2
    fails(client.call("GET", "/v1/projects/lite"), 404, "unknown_project")
    done = ok(raw(client, "POST", path, document, "application/json"))
    assert done["imported"] == preview["imported"] and done["created_project"]["project"] == "lite"
    again = ok(raw(client, "POST", path, document, "application/json"))
    assert again["imported"] == [] and again["skipped"] == done["imported"]
    replaced = ok(raw(client, "POST", path + "?replace=true", document, "application/json"))
    assert replaced["replaced"] == done["imported"]
    exact = json.loads(document, parse_float=Decimal)
    user = done["imported"][0]
    shown = ok(client.call("GET", f"/v1/projects/lite/budgets/{user}"))
    assert shown["total_budget"] == Decimal(str(exact[user]["total_budget"]))
    bad = fails(raw(client, "POST", path, b"[1, 2]", "application/json"), 400, "usage")
    assert "the request body" in bad["message"]
    fails(raw(client, "POST", path, b"{", "application/json"), 400, "usage")


def test_documents_may_be_larger_than_other_bodies(server: Running) -> None:
    from budgetctl.server.security import MAX_BODY, MAX_DOCUMENT

    client = server.client
    big = b"x" * (MAX_BODY + 10)
    # over 1 MiB: still read (and refused as no dump), where a JSON route answers 413
    fails(raw(client, "POST", "/v1/projects/c3/restore", big, "x"), 400, "usage")
    fails(raw(client, "POST", f"{P}/checks", big, "application/json"), 413, "too_large")
    said = {"Content-Length": str(MAX_DOCUMENT + 1), "Content-Type": "x"}
    answer = client.call("POST", "/v1/projects/c3/restore", raw=b"", headers=said)
    fails(answer, 413, "too_large")
