"""``budgetctl serve``'s routes, run by a real uvicorn in a thread: every /v1 route's answer and
its errors, the token, the body limit, the log line, LiteLLM's protocol and the OpenAPI document,
on the JSON store and on PostgreSQL."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import postgres
from helpers.server import Client, Running, allow_loopback, running

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

TOKEN = "test-token-0123456789abcdef"
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


@pytest.fixture
def guarded(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    allow_loopback(monkeypatch)
    with running(data_dir, token=TOKEN) as found:
        yield found


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status == status, answer
    return answer.body


def fails(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.body["error"]["code"] == code, answer.body
    assert answer.body["error"]["message"]
    return answer.body["error"]


def create(client: Client, user: str = "alice", budget: Any = "10", **more: Any) -> Any:
    body = {"total_budget": budget, "duration": "monthly", **more}
    return ok(client.call("PUT", f"{P}/budgets/{user}", body), 201)


# --- health and the document -------------------------------------------------------------------


def test_healthz(server: Running) -> None:
    found = ok(server.client.call("GET", "/healthz"))
    assert found["status"] == "ok" and found["service"] == "budgetctl"
    assert found["store"] in ("json", "postgres")


def test_the_openapi_document_describes_every_route(server: Running) -> None:
    from budgetctl.server.api import ROUTES

    document = ok(server.client.call("GET", "/openapi.json"))
    assert document["openapi"].startswith("3.1")
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        names = {p["name"] for p in operation["parameters"]}
        assert {f.name for f in route.query} <= names
        if route.body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert set(schema["properties"]) == {f.name for f in route.body}
    assert "post" in document["paths"]["/get_budget"]
    assert "post" in document["paths"]["/set_budget"]


# --- budgets -----------------------------------------------------------------------------------


def test_budgets_create_show_change_delete(server: Running) -> None:
    client = server.client
    made = create(client, budget="10.10", alert_at=80)
    assert made["total_budget"] == Decimal("10.10") and made["duration"] == "monthly"
    assert made["created_project"]["project"] == "team"
    assert create(client, "bob", budget=5)["created_project"] is None
    one = ok(client.call("GET", f"{P}/budgets/alice"))
    assert one["user"] == "alice" and one["reserved"] == 0 and one["available"] == Decimal("10.1")
    changed = ok(
        client.call("PATCH", f"{P}/budgets/alice", {"total_budget": "20", "alert_at": None})
    )
    assert changed["total_budget"] == 20 and changed["alert_at"] is None
    assert changed["duration"] == "monthly"  # absent: kept
    shown = ok(client.call("GET", P))
    assert [u["user"] for u in shown["users"]] == ["alice", "bob"] and shown["cap"] is None
    assert ok(client.call("GET", "/v1/projects"))["projects"] == ["team"]
    assert ok(client.call("DELETE", f"{P}/budgets/bob?dry_run=true")) == {
        "deleted": ["bob"],
        "dry_run": True,
    }
    assert ok(client.call("DELETE", f"{P}/budgets/bob"))["deleted"] == ["bob"]
    fails(client.call("GET", f"{P}/budgets/bob"), 404, "unknown_user")


def test_a_user_name_may_hold_a_slash_and_spaces(server: Running) -> None:
    create(server.client, "team%2Fann%20b")
    assert ok(server.client.call("GET", f"{P}/budgets/team/ann%20b"))["user"] == "team/ann b"


def test_budget_errors(server: Running) -> None:
    client = server.client
    fails(client.call("GET", P), 404, "unknown_project")
    fails(client.call("GET", "/v1/projects/.hidden"), 400, "invalid_name")
    create(client)
    fails(
        client.call("PUT", f"{P}/budgets/alice", {"total_budget": 1, "duration": "daily"}),
        409,
        "user_exists",
    )
    fails(
        client.call("PUT", f"{P}/budgets/x", {"total_budget": -1, "duration": "daily"}),
        400,
        "invalid_amount",
    )
    fails(
        client.call("PUT", f"{P}/budgets/x", {"total_budget": 1, "duration": "fortnightly"}),
        400,
        "invalid_duration",
    )
    fails(
        client.call(
            "PUT",
            f"{P}/budgets/x",
            {"total_budget": 1, "duration": "daily", "timezone": "Mars/Base"},
        ),
        400,
        "invalid_time",
    )
    fails(client.call("PUT", f"{P}/budgets/x", {"total_budget": 1}), 400, "usage")  # no duration
    fails(
        client.call(
            "PUT", f"{P}/budgets/x", {"total_budget": 1, "duration": "daily", "dryrun": True}
        ),
        400,
        "usage",
    )
    fails(
        client.call("PUT", f"{P}/budgets/x", {"total_budget": True, "duration": "daily"}),
        400,
        "usage",
    )
    fails(client.call("PUT", f"{P}/budgets/x", raw=b"{not json"), 422, "usage")
    fails(client.call("PUT", f"{P}/budgets/x", raw=b"[1, 2]"), 422, "usage")
    fails(
        client.call("PUT", f"{P}/budgets/x", raw=b'{"total_budget": NaN, "duration": "daily"}'),
        422,
        "usage",
    )
    fails(client.call("PATCH", f"{P}/budgets/alice", {}), 400, "usage")
    fails(client.call("PATCH", f"{P}/budgets/nobody", {"total_budget": 3}), 404, "unknown_user")
    fails(client.call("DELETE", f"{P}/budgets/alice?dry_run=maybe"), 400, "usage")
    fails(client.call("GET", "/v1/nowhere"), 404, "not_found")
    answer = client.call("POST", f"{P}/budgets/alice")
    fails(answer, 405, "method_not_allowed")
    assert "PUT" in answer.headers["allow"]  # fmt: skip


# --- charges, checks, holds --------------------------------------------------------------------


def test_charges_are_exact_and_idempotent(server: Running) -> None:
    client = server.client
    create(client)
    charge = {"user": "alice", "cost": "0.000123", "request_id": "r-1"}
    first = ok(client.call("POST", f"{P}/charges", charge))
    assert first["cost"] == Decimal("0.000123") and first["duplicate"] is False
    assert first["remaining"] == Decimal("9.999877")
    again = ok(client.call("POST", f"{P}/charges", charge))
    assert again["duplicate"] is True and again["current_cost"] == Decimal("0.000123")
    error = fails(
        client.call("POST", f"{P}/charges", {**charge, "cost": "1"}), 409, "request_id_conflict"
    )
    assert error["request_id"] == "r-1" and Decimal(error["cost"]) == Decimal("0.000123")
    raw = b'{"user": "alice", "cost": 0.1000000000000000055511151231257827}'
    assert ok(client.call("POST", f"{P}/charges", raw=raw))["cost"] == Decimal(
        "0.1000000000000000055511151231257827"
    )


def test_charge_forms_and_their_errors(server: Running) -> None:
    client = server.client
    create(client)
    ok(
        client.call(
            "PUT", f"{P}/prices/my/model", {"input_per_million": 1, "output_per_million": 2}
        )
    )
    tokens = {
        "user": "alice",
        "model": "my/model",
        "prompt_tokens": 1000000,
        "completion_tokens": 500000,
    }
    assert ok(client.call("POST", f"{P}/charges", tokens))["cost"] == 2
    fails(client.call("POST", f"{P}/charges", {"user": "alice"}), 400, "usage")
    fails(
        client.call("POST", f"{P}/charges", {"user": "alice", "cost": 1, "prompt_tokens": 1}),
        400,
        "usage",
    )
    fails(client.call("POST", f"{P}/charges", {"user": "alice", "prompt_tokens": 1}), 400, "usage")
    fails(
        client.call("POST", f"{P}/charges", {**tokens, "model": "no-such-model-x"}),
        404,
        "unknown_model",
    )
    fails(client.call("POST", f"{P}/charges", {"user": "zed", "cost": 1}), 404, "unknown_user")
    fails(
        client.call("POST", f"{P}/charges", {"user": "alice", "response": {"x": 1}}),
        400,
        "response_parse",
    )
    over = fails(
        client.call("POST", f"{P}/charges", {"user": "alice", "cost": 100, "enforce": True}),
        402,
        "budget_exceeded",
    )
    assert over["scope"] == "user" and over["max_budget"] == 10


def test_check_reserve_commit_release(server: Running) -> None:
    client = server.client
    create(client)
    no = ok(client.call("POST", f"{P}/checks", {"user": "alice", "cost": "11"}))
    assert no["allowed"] is False and no["blocked_by"] == "user"  # 200: not an error
    held = ok(
        client.call(
            "POST", f"{P}/checks", {"user": "alice", "cost": "4", "reserve": True, "ttl": "5m"}
        )
    )
    assert held["allowed"] is True and held["hold_id"].startswith("h_") and held["expires_at"]
    listed = ok(client.call("GET", f"{P}/holds?user=alice"))
    assert [h["hold_id"] for h in listed["holds"]] == [held["hold_id"]]
    assert ok(client.call("GET", f"{P}/budgets/alice"))["available"] == 6
    committed = ok(
        client.call(
            "POST", f"{P}/charges", {"user": "alice", "cost": "3.5", "hold_id": held["hold_id"]}
        )
    )
    assert committed["held"] == 4 and committed["current_cost"] == Decimal("3.5")
    fails(
        client.call("POST", f"{P}/holds/release", {"hold_ids": [held["hold_id"]]}),
        409,
        "hold_committed",
    )
    fails(
        client.call("POST", f"{P}/holds/release", {"hold_ids": ["h_" + "0" * 24]}),
        404,
        "unknown_hold",
    )
    fails(client.call("POST", f"{P}/holds/release", {"hold_ids": ["nope"]}), 400, "usage")
    other = ok(client.call("POST", f"{P}/checks", {"user": "alice", "cost": "1", "reserve": True}))
    freed = ok(client.call("POST", f"{P}/holds/release", {"hold_ids": [other["hold_id"]]}))
    assert [h["hold_id"] for h in freed["released"]] == [other["hold_id"]]
    fails(
        client.call("POST", f"{P}/checks", {"user": "alice", "cost": "1", "ttl": "5m"}),
        400,
        "usage",
    )
    fails(client.call("POST", f"{P}/checks", {"user": "alice"}), 400, "usage")
    ok(client.call("PUT", f"{P}/prices/m1", {"input_per_million": 1, "output_per_million": 1}))
    priced = ok(
        client.call(
            "POST",
            f"{P}/checks",
            {
                "user": "alice",
                "messages": {
                    "model": "m1",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 10,
                },
            },
        )
    )
    assert priced["model"] == "m1" and priced["max_tokens"] == 10 and priced["prompt_tokens"] > 0
    fails(client.call("POST", f"{P}/checks", {"user": "alice", "messages": [1, 2]}), 400, "usage")


# --- resets, cap, prices, history --------------------------------------------------------------


def test_resets_cap_prices_history(server: Running) -> None:
    client = server.client
    create(client)
    ok(client.call("POST", f"{P}/charges", {"user": "alice", "cost": 2, "model": "m"}))
    fails(client.call("POST", f"{P}/reset", {}), 400, "usage")  # users must be said (null: all)
    done = ok(client.call("POST", f"{P}/reset", {"users": None, "dry_run": True}))
    assert done["dry_run"] is True and done["reset"][0]["spent"] == 2
    assert (
        ok(client.call("POST", f"{P}/reset", {"users": ["alice"]}))["reset"][0]["user"] == "alice"
    )
    due = ok(client.call("POST", f"{P}/reset-due", {}))
    assert due["checked"] == 1 and due["reset"] == []
    preview = {"dry_run": True, "now": "2099-01-01T00:00:00Z"}
    assert ok(client.call("POST", f"{P}/reset-due", preview))["reset"][0]["user"] == "alice"
    fails(client.call("POST", f"{P}/reset-due", {"now": "2099-01-01T00:00:00Z"}), 400, "usage")

    assert ok(client.call("GET", f"{P}/cap"))["cap"] is None
    cap = ok(client.call("PUT", f"{P}/cap", {"total_budget": "100", "duration": "monthly"}))
    assert cap["cap"]["total_budget"] == 100
    fails(client.call("PUT", f"{P}/cap", {}), 400, "usage")
    assert ok(client.call("GET", P))["cap"]["total_budget"] == 100
    assert ok(client.call("DELETE", f"{P}/cap"))["cleared"] is True
    assert ok(client.call("DELETE", f"{P}/cap"))["cleared"] is False

    price = ok(
        client.call(
            "PUT", f"{P}/prices/llama", {"input_per_million": "0.2", "output_per_million": "0.6"}
        )
    )
    assert price["input_per_1m"] == Decimal("0.2") and price["model"] == "llama"
    assert [m["model"] for m in ok(client.call("GET", f"{P}/prices"))["models"]] == ["llama"]
    assert ok(client.call("DELETE", f"{P}/prices/llama"))["removed"] is True
    fails(client.call("DELETE", f"{P}/prices/llama"), 404, "unknown_model")
    fails(
        client.call("PUT", f"{P}/prices/x", {"input_per_million": "-1", "output_per_million": 1}),
        400,
        "invalid_amount",
    )

    events = ok(client.call("GET", f"{P}/history?user=alice&limit=2"))["events"]
    assert len(events) == 2 and events[0]["type"] == "period"
    fails(client.call("GET", f"{P}/history?limit=x"), 400, "usage")
    fails(client.call("GET", f"{P}/history?colour=red"), 400, "usage")


# --- security ----------------------------------------------------------------------------------


def test_the_token_is_required_except_for_healthz(guarded: Running) -> None:
    client = guarded.client
    assert client.call("GET", "/healthz", token="").status == 200
    for path in ("/v1/projects", "/openapi.json", "/get_budget"):
        answer = client.call("GET", path, token="")
        fails(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    fails(client.call("GET", "/v1/projects", token="wrong-token"), 401, "unauthorized")
    no_scheme = {"Authorization": TOKEN}
    fails(client.call("GET", "/v1/projects", token="", headers=no_scheme), 401, "unauthorized")
    assert ok(client.call("GET", "/v1/projects"))["projects"] == []
    assert TOKEN not in guarded.log.getvalue()


def test_the_loopback_rule() -> None:
    from budgetctl.errors import UsageError
    from budgetctl.server.security import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("::")
    check_bind("127.0.0.1", "")
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(UsageError, match="without a token"):
        check_bind("0.0.0.0", "")


def test_serve_refuses_a_public_address_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.cli import run

    monkeypatch.delenv("BUDGETCTL_SERVER_TOKEN", raising=False)
    result = run("serve", "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "without a token" in result.output


def test_a_body_over_1_mib_is_refused(guarded: Running) -> None:
    client = guarded.client
    big = b'{"user": "' + b"a" * (2**20) + b'"}'
    fails(client.call("POST", f"{P}/charges", raw=big), 413, "too_large")
    # no Content-Length (chunked): counted while it is read
    conn = http.client.HTTPConnection(client.host, client.port, timeout=30)
    chunks = iter([b'{"user": "'] + [b"a" * 65536] * 20 + [b'"}'])
    conn.request(
        "POST",
        f"{P}/charges",
        body=chunks,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 413 and body["error"]["code"] == "too_large"


def test_one_json_log_line_per_request(guarded: Running) -> None:
    client = guarded.client
    client.call("PUT", f"{P}/budgets/alice", {"total_budget": 1, "duration": "daily"})
    client.call("GET", "/v1/projects", token="bad-token-but-long-enough")
    lines = [json.loads(line) for line in guarded.log.getvalue().splitlines()]
    assert [set(line) for line in lines] == [
        {"method", "path", "status", "duration_ms", "project"}
    ] * 2
    assert lines[0]["method"] == "PUT" and lines[0]["status"] == 201
    assert lines[0]["project"] == "team" and lines[0]["path"] == f"{P}/budgets/alice"
    assert lines[1]["status"] == 401 and lines[1]["project"] is None
    assert isinstance(lines[0]["duration_ms"], float)
    text = guarded.log.getvalue()
    assert TOKEN not in text and "bad-token" not in text


def test_the_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from budgetctl.errors import UsageError
    from budgetctl.server.security import load_token

    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token(str(path), {}) == TOKEN
    assert load_token(None, {"BUDGETCTL_SERVER_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, {}) == ""
    path.write_text("\n")
    with pytest.raises(UsageError, match="empty"):
        load_token(str(path), {})
    with pytest.raises(UsageError, match="cannot read"):
        load_token(str(tmp_path / "missing"), {})


# --- LiteLLM's hosted protocol -----------------------------------------------------------------


def test_litellm_protocol_round_trip(server: Running) -> None:
    client = server.client
    assert ok(client.call("POST", "/get_budget", {"project_name": "team"}))["status"] == "error"
    user_dict = {
        "ann": {
            "total_budget": 10.0,
            "current_cost": 1.25,
            "model_cost": {"gpt-4o": 1.25},
            "duration": 30,
            "created_at": round(time.time()) - 3600.0,
            "last_updated_at": round(time.time()) - 3600.0,
        }
    }
    stored = ok(
        client.call("POST", "/set_budget", {"project_name": "team", "user_dict": user_dict})
    )
    assert stored == {"status": "success"}
    answer = ok(client.call("POST", "/get_budget", {"project_name": "team"}))
    assert answer["status"] == "success"
    ann = answer["data"]["ann"]
    assert ann["current_cost"] == Decimal("1.25") and ann["total_budget"] == 10
    assert ann["budgetctl"]["current_cost"] == "1.25"
    assert "__budgetctl__" in answer["data"]
    # the same budget through /v1
    assert ok(client.call("GET", f"{P}/budgets/ann"))["current_cost"] == Decimal("1.25")
    # a LiteLLM client's change: its fields no longer mirror budgetctl's record
    data = json.loads(json.dumps(answer["data"], default=float))  # as LiteLLM reads it: floats
    data["ann"]["current_cost"] = 2.5
    ok(client.call("POST", "/set_budget", {"project_name": "team", "user_dict": data}))
    assert ok(client.call("GET", f"{P}/budgets/ann"))["current_cost"] == Decimal("2.5")
    # whole dicts: a user left out is deleted (last writer wins)
    create(client, "bob")
    ok(client.call("POST", "/set_budget", {"project_name": "team", "user_dict": {}}))
    assert ok(client.call("GET", P))["users"] == []
    bad = client.call("POST", "/set_budget", {"project_name": "team", "user_dict": []})
    assert bad.status == 400 and bad.body["status"] == "error"
    bad = client.call("POST", "/get_budget", {"project_name": "../etc"})
    assert bad.status == 400 and bad.body["error"]["code"] == "invalid_name"


def test_budgetctls_hosted_client_works_against_the_server(server: Running) -> None:
    from budgetctl.ledger import Ledger
    from budgetctl.store.hosted import HostedStore

    def ledger() -> Ledger:
        return Ledger(store=HostedStore("team", api_base=server.url))

    ledger().create("carol", "5", duration="daily")
    ledger().charge_cost("carol", "0.75", model="m")
    assert ok(server.client.call("GET", f"{P}/budgets/carol"))["current_cost"] == Decimal("0.75")
    ok(server.client.call("POST", f"{P}/charges", {"user": "carol", "cost": "0.25"}))
    assert ledger().get("carol").current_cost == Decimal("1.00")
