"""The Ledger library API: charges, idempotency, enforcement, roll-over on read, cap, history."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Clock, digest, fingerprint

from budgetctl import BudgetExceededError, Ledger
from budgetctl.core import rules
from budgetctl.core.periods import UTC
from budgetctl.errors import (
    InvalidAmountError,
    InvalidDurationError,
    InvalidNameError,
    InvalidTimeError,
    RequestIdConflictError,
    ResponseParseError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
    UserExistsError,
)
from budgetctl.ledger import list_projects, resolve_data_dir


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(data_dir: Path, clock: Clock) -> Ledger:
    ledger = Ledger("team", clock=clock)  # data dir from BUDGETCTL_DATA_DIR
    ledger.create("alice", "1", duration="daily")
    return ledger


def charges(book: Ledger, user: str | None = None) -> list[dict[str, Any]]:
    return [e.to_json() for e in book.history(user) if e.type == "charge"]


def test_data_dir_from_the_environment(book: Ledger, data_dir: Path) -> None:
    assert book.data_dir == data_dir
    assert (data_dir / "team.json").exists()
    assert resolve_data_dir("~/x") == Path.home() / "x"
    assert resolve_data_dir() == data_dir
    assert list_projects() == ["team"]


def test_list_projects_skips_other_files(book: Ledger, data_dir: Path) -> None:
    Ledger("other", clock=Clock()).create("bob", "1")
    book.set_price("mine", "0.1", "0.2")
    (data_dir / ".hidden.json").write_text("{}")
    (data_dir / "notes.txt").write_text("x")
    assert list_projects() == ["other", "team"]
    assert list_projects(data_dir / "missing") == []


def test_charge_past_the_budget_records(book: Ledger) -> None:
    first = book.charge_cost("alice", "0.75", model="gpt-4o")
    assert (first.current_cost, first.remaining, first.over_budget) == (
        Decimal("0.75"),
        Decimal("0.25"),
        False,
    )
    second = book.charge_cost("alice", "0.5", model="gpt-4o")  # the money is already spent
    assert second.current_cost == Decimal("1.25") and second.over_budget
    assert second.remaining == 0
    assert book.get("alice").model_cost == {"gpt-4o": Decimal("1.25")}
    assert [e["cost"] for e in charges(book)] == ["0.5", "0.75"]


def test_request_id_charges_once(book: Ledger, data_dir: Path) -> None:
    first = book.charge_cost("alice", "0.1", request_id="chatcmpl-1")
    assert not first.duplicate
    state = digest(data_dir / "team.json")
    again = book.charge_cost("alice", "0.1", request_id="chatcmpl-1")
    assert again.duplicate and again.current_cost == Decimal("0.1")
    assert digest(data_dir / "team.json") == state  # nothing written
    assert book.charge_cost("alice", "0.100", request_id="chatcmpl-1").duplicate  # same number
    assert len(charges(book)) == 1 and charges(book)[0]["request_id"] == "chatcmpl-1"
    assert not book.charge_cost("alice", "0.1", request_id="chatcmpl-2").duplicate
    assert book.get("alice").current_cost == Decimal("0.2")


def test_request_id_reused_for_another_charge_is_a_conflict(book: Ledger, data_dir: Path) -> None:
    book.create("bob", "1")
    book.charge_tokens("alice", "gpt-4o", 100, 20, cached_tokens=10, request_id="r")
    first = charges(book)[0]
    files = {name: digest(data_dir / name) for name in ("team.json", "team+history.jsonl")}
    attempts: list[Any] = [
        lambda: book.charge_tokens("bob", "gpt-4o", 100, 20, cached_tokens=10, request_id="r"),
        lambda: book.charge_tokens("alice", "gpt-4o", 100, 21, cached_tokens=10, request_id="r"),
        lambda: book.charge_tokens("alice", "gpt-4o", 101, 20, cached_tokens=10, request_id="r"),
        lambda: book.charge_tokens("alice", "gpt-4o", 100, 20, request_id="r"),
        lambda: book.charge_tokens(
            "alice", "gpt-4o-mini", 100, 20, cached_tokens=10, request_id="r"
        ),
        lambda: book.charge_cost("alice", first["cost"], model="gpt-4o", request_id="r"),
        lambda: book.charge_cost("alice", "0.5", request_id="r", dry_run=True),
    ]
    for attempt in attempts:
        with pytest.raises(RequestIdConflictError) as caught:
            attempt()
        assert str(caught.value).startswith(
            f"request id 'r' was already charged to 'alice' for ${first['cost']}: nothing changed"
        )
        assert caught.value.exit_code == 1 and isinstance(caught.value, ValueError)
        assert (caught.value.user, caught.value.cost) == ("alice", Decimal(first["cost"]))
        assert pickle.loads(pickle.dumps(caught.value)).message == caught.value.message
    assert {name: digest(data_dir / name) for name in files} == files  # nothing changed
    assert book.get("bob").current_cost == 0
    again = book.charge_tokens("alice", "gpt-4o", 100, 20, cached_tokens=10, request_id="r")
    assert again.duplicate and len(charges(book)) == 1


def test_request_ids_are_forgotten_after_90_days(book: Ledger, clock: Clock) -> None:
    book.charge_cost("alice", "0.1", request_id="old")
    clock.now += timedelta(days=89)
    assert book.charge_cost("alice", "0.1", request_id="old").duplicate
    clock.now += timedelta(days=2)  # forgotten at 90 days, whether or not anything pruned it
    assert not book.charge_cost("alice", "0.1", request_id="old").duplicate


@pytest.mark.parametrize("bad", ["", "   ", "x" * 513])
def test_request_id_must_be_sensible(book: Ledger, bad: str) -> None:
    with pytest.raises(UsageError):
        book.charge_cost("alice", "0.1", request_id=bad)


def test_enforce_refuses_and_changes_nothing(book: Ledger, data_dir: Path) -> None:
    book.charge_cost("alice", "0.9")
    state, history = digest(data_dir / "team.json"), digest(data_dir / "team+history.jsonl")
    with pytest.raises(BudgetExceededError) as caught:
        book.charge_cost("alice", "0.2", enforce=True)
    error = caught.value
    assert (error.current_cost, error.max_budget, error.scope) == (0.9, 1.0, "user")
    assert error.current_cost_exact == Decimal("0.9") and error.exit_code == 3
    assert digest(data_dir / "team.json") == state
    assert digest(data_dir / "team+history.jsonl") == history
    assert book.charge_cost("alice", "0.1", enforce=True).current_cost == 1  # exactly fits


def test_enforce_the_project_cap(book: Ledger) -> None:
    book.create("bob", "100")
    book.set_cap("2")
    book.charge_cost("alice", "0.8")
    book.charge_cost("bob", "1")
    cap = book.cap()
    assert cap is not None and cap.current_cost == Decimal("1.8")
    with pytest.raises(BudgetExceededError) as caught:
        book.charge_cost("bob", "0.3", enforce=True)
    assert caught.value.scope == "project"
    assert (caught.value.current_cost, caught.value.max_budget) == (1.8, 2.0)
    assert book.get("bob").current_cost == 1
    book.clear_cap()
    assert book.cap() is None
    assert book.charge_cost("bob", "0.3", enforce=True).current_cost == Decimal("1.3")


def test_cap_counts_the_charges_of_its_period_made_before_it(book: Ledger, clock: Clock) -> None:
    book.charge_cost("alice", "0.5")
    cap = book.set_cap("10", duration="monthly")  # mid-period: alice's $0.50 this month counts
    assert cap.current_cost == Decimal("0.5")
    assert cap.next_reset_at == datetime(2026, 2, 1, tzinfo=UTC)
    book.charge_cost("alice", "0.25")
    clock.now = datetime(2026, 2, 3, tzinfo=UTC)
    result = book.charge_cost("alice", "0.1")
    assert result.cap is not None and result.cap.current_cost == Decimal("0.1")
    assert result.cap.recent_periods[0].spent == Decimal("0.75")
    changed = book.set_cap("20")
    assert changed.current_cost == Decimal("0.1") and changed.total_budget == 20
    with pytest.raises(UsageError):
        Ledger("fresh", clock=clock).set_cap(None)


def test_unknown_user(book: Ledger) -> None:
    for call in (
        lambda: book.get("nobody"),
        lambda: book.charge_cost("nobody", "1"),
        lambda: book.set("nobody", budget="2"),
        lambda: book.reset(["nobody"]),
        lambda: book.delete(["nobody"]),
        lambda: book.history("nobody"),
        lambda: book.roll_over(["nobody"]),
    ):
        with pytest.raises(UnknownUserError) as caught:
            call()
        error = caught.value
        assert isinstance(error, KeyError)  # LiteLLM's callers catch KeyError
        assert error.exit_code == 4
        assert str(error).startswith("no budget for user 'nobody' in project 'team'")
        assert "create" in str(error)
    with pytest.raises(KeyError):
        book.get("nobody")


def test_unknown_project(data_dir: Path, clock: Clock) -> None:
    ghost = Ledger("ghost", clock=clock)
    assert not ghost.exists() and ghost.users() == [] and ghost.cap() is None
    with pytest.raises(UnknownProjectError) as caught:
        ghost.reset_due()
    assert caught.value.exit_code == 4 and "ghost" in str(caught.value)
    with pytest.raises(UnknownProjectError):
        ghost.charge_cost("alice", "1")


def test_create_exists_and_replace(book: Ledger) -> None:
    book.charge_cost("alice", "0.5")
    with pytest.raises(UserExistsError) as caught:
        book.create("alice", "5")
    assert "set" in str(caught.value) and "--replace" in str(caught.value)
    assert caught.value.exit_code == 1
    fresh = book.create("alice", "5", duration="weekly", replace=True)
    assert fresh.current_cost == 0 and fresh.total_budget == 5
    assert book.get("alice").total_budget == 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"budget": "-1"}, InvalidAmountError),
        ({"budget": "nan"}, InvalidAmountError),
        ({"budget": "lots"}, InvalidAmountError),
        ({"budget": "1", "duration": "fortnightly"}, InvalidDurationError),
        ({"budget": "1", "timezone": "Mars/Base"}, InvalidTimeError),
        ({"budget": "1", "start": "someday"}, InvalidTimeError),
        ({"budget": "1", "alert_at": "0"}, InvalidAmountError),
        ({"budget": "1", "user": ""}, InvalidNameError),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(
    data_dir: Path, clock: Clock, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    args = {"user": "alice", **kwargs}
    with pytest.raises(error):
        Ledger("team", clock=clock).create(args.pop("user"), args.pop("budget"), **args)
    assert not data_dir.exists()


def test_create_with_start_and_zone(book: Ledger) -> None:
    made = book.create(
        "carol", "3", duration="monthly", start="2026-01-31", timezone="Europe/Paris"
    )
    assert made.period_start == datetime(2025, 12, 30, 23, tzinfo=UTC)  # Dec 31 local, clamped
    assert made.next_reset_at == datetime(2026, 1, 30, 23, tzinfo=UTC)  # Jan 31 local


def test_set_keeps_spend(book: Ledger) -> None:
    book.charge_cost("alice", "0.4", model="m")
    changed = book.set("alice", budget="3", duration="weekly", alert_at="50")
    assert changed.current_cost == Decimal("0.4") and changed.model_cost == {"m": Decimal("0.4")}
    assert changed.total_budget == 3 and changed.alert_at == (50,)
    assert changed.next_reset_at == datetime(2026, 1, 19, tzinfo=UTC)
    assert book.get("alice") == changed
    assert book.set("alice", timezone="Asia/Tokyo").next_reset_at == datetime(
        2026, 1, 18, 15, tzinfo=UTC
    )


def test_a_read_sees_the_period_that_contains_now_without_writing(
    book: Ledger, clock: Clock, data_dir: Path
) -> None:
    book.charge_cost("alice", "0.3")
    state = digest(data_dir / "team.json")
    clock.now += timedelta(days=2)
    seen = book.get("alice")
    assert seen.current_cost == 0 and seen.period_start == datetime(2026, 1, 17, tzinfo=UTC)
    assert book.view().users[0].current_cost == 0
    assert digest(data_dir / "team.json") == state
    # a write persists the roll-over, archiving the closed period first
    after = book.charge_cost("alice", "0.1")
    assert after.current_cost == Decimal("0.1")
    assert after.budget.recent_periods[0].spent == Decimal("0.3")
    kinds = [e.type for e in book.history("alice")]
    assert kinds[:3] == ["charge", "period", "charge"]


def test_reset_due_is_idempotent_and_archives(book: Ledger, clock: Clock) -> None:
    book.create("bob", "5", duration="monthly")
    book.create("lifetime", "5")
    book.charge_cost("alice", "0.2")
    book.charge_cost("bob", "0.7")
    clock.now = datetime(2026, 2, 1, 0, 0, 30, tzinfo=UTC)
    done = book.reset_due(dry_run=True)
    assert sorted(u for u, _ in done.reset) == ["alice", "bob"]
    assert book.reset_due(dry_run=True) == done  # a dry run persisted nothing
    done = book.reset_due()
    assert done.checked == 3
    closed = dict(done.reset)
    assert closed["alice"].spent == Decimal("0.2") and closed["bob"].spent == Decimal("0.7")
    assert closed["bob"].start == datetime(2026, 1, 1, tzinfo=UTC)
    assert closed["bob"].end == datetime(2026, 2, 1, tzinfo=UTC)
    assert book.reset_due().reset == ()
    # an explicit now (cron catching up) works too, and runs on the grid
    later = book.reset_due(now=datetime(2026, 3, 10, 5, tzinfo=UTC))
    assert {u: c.end for u, c in later.reset} == {
        "alice": datetime(2026, 2, 2, tzinfo=UTC),
        "bob": datetime(2026, 3, 1, tzinfo=UTC),
    }
    assert book.get("bob").next_reset_at == datetime(2026, 4, 1, tzinfo=UTC)


def test_reset_archives_and_keeps_the_grid(book: Ledger, clock: Clock) -> None:
    book.charge_cost("alice", "0.6")
    clock.now += timedelta(hours=3)
    [(user, closed)] = book.reset(["alice"])
    assert user == "alice" and closed.reason == "reset" and closed.spent == Decimal("0.6")
    after = book.get("alice")
    assert after.current_cost == 0 and after.next_reset_at == datetime(2026, 1, 16, tzinfo=UTC)
    assert rules.replay(reversed(book.history()))["alice"] == 0


def test_delete(book: Ledger) -> None:
    book.create("bob", "1")
    assert book.delete(["alice"]) == ["alice"]
    assert book.users() == ["bob"]
    with pytest.raises(UnknownUserError):
        book.delete(["bob", "alice"])  # all or nothing
    assert book.users() == ["bob"]


def test_history_newest_first_and_limit(book: Ledger, clock: Clock) -> None:
    for cost in ("0.1", "0.2", "0.3"):
        clock.now += timedelta(minutes=1)
        book.charge_cost("alice", cost, model="m")
    events = [e.to_json() for e in book.history("alice")]
    assert [e["cost"] for e in events if e["type"] == "charge"] == ["0.3", "0.2", "0.1"]
    assert events[-1]["type"] == "create"
    assert [e.to_json()["cost"] for e in book.history("alice", limit=2)] == ["0.3", "0.2"]
    assert events[0]["time"] == "2026-01-15T12:03:00Z"
    with pytest.raises(UsageError):
        book.history(limit=0)


def test_clock_must_be_aware(data_dir: Path) -> None:
    naive = Ledger("team", clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(UsageError):
        naive.create("alice", "1")


def test_project_name_checked_at_construction(data_dir: Path) -> None:
    for bad in ("../up", "a/b", ".x", ""):
        with pytest.raises(InvalidNameError):
            Ledger(bad)


def test_amounts_as_floats_ints_and_text(book: Ledger) -> None:
    book.charge_cost("alice", 0.1)
    book.charge_cost("alice", Decimal("0.1"))
    book.charge_cost("alice", "0.1")
    book.charge_cost("alice", 0)
    assert book.get("alice").current_cost == Decimal("0.3")
    state = json.loads((book.data_dir / "team.json").read_text())
    assert state["users"]["alice"]["current_cost"] == "0.3"


# --- priced charges (need budgetctl.costing) ------------------------------------------------------


def test_charge_tokens_prices_from_the_table(book: Ledger) -> None:
    result = book.charge_tokens("alice", "gpt-3.5-turbo", 1000, 500)
    price = book.costing.price("gpt-3.5-turbo")
    expected = 1000 * price.input_per_token + 500 * price.output_per_token
    assert result.cost == expected and result.current_cost == expected
    assert (result.prompt_tokens, result.completion_tokens) == (1000, 500)
    event = charges(book)[0]
    assert (event["prompt_tokens"], event["completion_tokens"], event["model"]) == (
        1000,
        500,
        "gpt-3.5-turbo",
    )
    with pytest.raises(UsageError):
        book.charge_tokens("alice", "gpt-3.5-turbo", -1, 0)
    with pytest.raises(UsageError):
        book.charge_tokens("alice", "gpt-3.5-turbo", 10, 0, cached_tokens=11)


def test_charge_text_counts_exactly_what_it_is_given(book: Ledger) -> None:
    result = book.charge_text("alice", "gpt-3.5-turbo", "hello world", "hello world")
    assert (result.prompt_tokens, result.completion_tokens) == (2, 2)  # cl100k, no chat framing
    assert not result.estimated


def test_charge_response_uses_its_id(book: Ledger) -> None:
    response = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": "gpt-3.5-turbo-0125",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Fine."}}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
    }
    first = book.charge_response("alice", response)
    assert first.request_id == "chatcmpl-abc" and first.cost > 0
    assert book.charge_response("alice", response).duplicate
    assert len(charges(book)) == 1


def test_charge_response_takes_a_model_for_a_bedrock_response(book: Ledger, data_dir: Path) -> None:
    response = {
        "ResponseMetadata": {"RequestId": "7d2e5c1a", "HTTPStatusCode": 200},
        "output": {"message": {"role": "assistant", "content": [{"text": "Fine."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 14, "outputTokens": 3, "totalTokens": 17},
    }
    before = fingerprint(data_dir)
    with pytest.raises(ResponseParseError, match="names no model: give it with --model"):
        book.charge_response("alice", response)
    assert fingerprint(data_dir) == before
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    result = book.charge_response("alice", response, model=model)
    price = book.costing.price(model)
    assert (result.model, result.request_id) == (model, "7d2e5c1a")
    assert result.cost == 14 * price.input_per_token + 3 * price.output_per_token
    assert book.charge_response("alice", response, model=model).duplicate


def test_check_before_a_call(book: Ledger) -> None:
    checked = book.check("alice", "gpt-3.5-turbo", prompt="Hey, how's it going?", max_tokens=100)
    price = book.costing.price("gpt-3.5-turbo")
    assert checked.prompt_tokens == 14
    assert checked.projected_cost == 14 * price.input_per_token + 100 * price.output_per_token
    assert checked.allowed and checked.blocked_by is None
    book.charge_cost("alice", "0.99995")
    blocked = book.check("alice", "gpt-3.5-turbo", prompt="Hey, how's it going?", max_tokens=100)
    assert not blocked.allowed and blocked.blocked_by == "user"
