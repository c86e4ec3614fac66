"""BudgetManager keeps LiteLLM's shapes (floats, records, return values) without its defects."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import T0, Clock

from budgetctl import BudgetManager
from budgetctl.core.periods import UTC
from budgetctl.errors import StorageIOError, UnknownModelError, UnknownUserError, UsageError


def response(rid: str, prompt: int = 14, completion: int = 9, model: str = "gpt-3.5-turbo") -> Any:
    return {
        "id": rid,
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bm(clock: Clock) -> BudgetManager:
    return BudgetManager("compat", clock=clock)


def test_create_budget_returns_the_record(bm: BudgetManager) -> None:
    made = bm.create_budget(total_budget=10, user="u", duration="daily")
    assert set(made) >= {"total_budget", "duration", "created_at", "last_updated_at"}
    assert made["total_budget"] == 10.0 and isinstance(made["total_budget"], float)
    assert made["duration"] == 1  # days, as LiteLLM stores it
    assert made["created_at"] == T0.timestamp() and isinstance(made["created_at"], float)
    assert isinstance(made["last_updated_at"], float)
    assert made["current_cost"] == 0.0 and made["model_cost"] == {}
    assert bm.create_budget(5, "w", "weekly")["duration"] == 7
    assert bm.create_budget(5, "m", "monthly")["duration"] == 31  # January
    assert bm.create_budget(5, "y", "yearly")["duration"] == 365
    assert "duration" not in bm.create_budget(5, "forever")  # as LiteLLM's lifetime record


def test_created_at_is_taken_at_call_time(clock: Clock) -> None:
    bm = BudgetManager("compat", clock=clock)
    first = bm.create_budget(1, "a")["created_at"]
    clock.now += timedelta(seconds=1)
    second = bm.create_budget(1, "b")["created_at"]
    assert second - first == 1.0  # not one default evaluated at import


def test_created_at_given_anchors_the_periods(bm: BudgetManager) -> None:
    anchor = datetime(2025, 12, 10, 8, 30, tzinfo=UTC).timestamp()
    made = bm.create_budget(10, "u", "monthly", created_at=anchor)
    assert made["created_at"] == anchor  # what was given comes back, as in LiteLLM
    record = bm.user_dict["u"]
    assert record["created_at"] == anchor
    # the current period runs from the 10th 08:30 to the next 10th 08:30
    assert record["last_updated_at"] == datetime(2026, 1, 10, 8, 30, tzinfo=UTC).timestamp()
    assert record["duration"] == 31


def test_update_cost_returns_user_record_with_float_costs(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    out = bm.update_cost(user="u", completion_obj=response("r1"))
    assert list(out) == ["user"]
    record = out["user"]
    assert isinstance(record["current_cost"], float) and record["current_cost"] > 0
    assert record["model_cost"] == {"gpt-3.5-turbo": record["current_cost"]}
    assert isinstance(bm.get_current_cost("u"), float)
    assert isinstance(bm.get_total_budget("u"), float)
    costs = bm.get_model_cost("u")
    assert isinstance(costs, dict) and all(isinstance(v, float) for v in costs.values())


def test_update_cost_takes_sdk_objects(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    as_dict = response("r-dict")
    as_object = SimpleNamespace(
        id="r-object",
        object="chat.completion",
        model="gpt-3.5-turbo",
        choices=[],
        usage=SimpleNamespace(prompt_tokens=14, completion_tokens=9, total_tokens=23),
    )
    one = bm.update_cost(user="u", completion_obj=as_dict)["user"]["current_cost"]
    two = bm.update_cost(user="u", completion_obj=as_object)["user"]["current_cost"]
    assert two == pytest.approx(2 * one)


def test_save_data_and_load_data(bm: BudgetManager) -> None:
    assert bm.save_data() == {"status": "success"}
    assert bm.load_data() is None


def test_float_point_one_three_times_is_point_three(bm: BudgetManager, data_dir: Path) -> None:
    # a private model that costs exactly $0.1 a call: LiteLLM would sum 0.30000000000000004
    bm.ledger.set_price("tenth", "0.1", "0")
    bm.create_budget(1, "u")
    for n in range(3):
        bm.update_cost(user="u", completion_obj=response(f"r{n}", 1, 0, model="tenth"))
    assert bm.get_current_cost("u") == 0.3
    state = json.loads((data_dir / "compat.json").read_text())
    assert state["users"]["u"]["current_cost"] == "0.3"
    assert state["users"]["u"]["model_cost"] == {"tenth": "0.3"}


def test_every_mutation_persists(clock: Clock) -> None:
    bm = BudgetManager("compat", clock=clock)
    bm.create_budget(10, "u", "daily")
    bm.update_cost(user="u", completion_obj=response("r1"))
    assert BudgetManager("compat", clock=clock).get_current_cost("u") > 0  # a fresh manager sees it
    out = bm.reset_cost("u")
    assert out["user"]["current_cost"] == 0.0
    fresh = BudgetManager("compat", clock=clock)
    assert fresh.get_current_cost("u") == 0.0 and fresh.get_model_cost("u") == {}
    assert fresh.is_valid_user("u") and fresh.get_users() == ["u"]


def test_unknown_user_is_a_key_error(bm: BudgetManager) -> None:
    assert not bm.is_valid_user("nobody") and bm.get_users() == [] and bm.user_dict == {}
    bm.create_budget(1, "u")
    for call in (
        lambda: bm.get_current_cost("nobody"),
        lambda: bm.get_total_budget("nobody"),
        lambda: bm.get_model_cost("nobody"),
        lambda: bm.reset_cost("nobody"),
        lambda: bm.update_cost(user="nobody", completion_obj=response("x")),
    ):
        with pytest.raises(KeyError) as caught:
            call()
        assert isinstance(caught.value, UnknownUserError)


def test_reset_on_duration_and_update_budget_all_users(bm: BudgetManager, clock: Clock) -> None:
    bm.create_budget(10, "day", "daily")
    bm.create_budget(10, "month", "monthly")
    bm.create_budget(10, "ever")
    for user in ("day", "month", "ever"):
        bm.update_cost(user=user, completion_obj=response(f"r-{user}"))
    bm.reset_on_duration("day")  # not over yet
    assert bm.get_current_cost("day") > 0
    clock.now += timedelta(days=1)
    bm.reset_on_duration("day")
    assert BudgetManager("compat", clock=clock).user_dict["day"]["current_cost"] == 0.0
    clock.now = datetime(2026, 2, 1, 0, 5, tzinfo=UTC)
    bm.update_budget_all_users()
    dump = BudgetManager("compat", clock=clock).user_dict  # read back from disk
    assert dump["month"]["current_cost"] == 0.0
    assert dump["ever"]["current_cost"] > 0  # a lifetime budget never resets
    last = dump["month"]["last_updated_at"]
    assert last == datetime(2026, 2, 1, tzinfo=UTC).timestamp()  # the boundary, not the run time


def test_projected_cost(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    bm.update_cost(user="u", completion_obj=response("r1"))
    spent = bm.get_current_cost("u")
    messages = [{"role": "user", "content": "Hey, how's it going?"}]
    projected = bm.projected_cost("gpt-3.5-turbo", messages, "u")
    price = bm.ledger.costing.price("gpt-3.5-turbo")
    assert projected == pytest.approx(spent + float(14 * price.input_per_token))
    assert isinstance(projected, float)


def test_update_cost_needs_something_to_charge(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    with pytest.raises(UsageError):
        bm.update_cost(user="u")
    with pytest.raises(UsageError):
        bm.update_cost(user="u", model="gpt-3.5-turbo", input_text="hi")


def test_client_types() -> None:
    hosted = BudgetManager("p", client_type="hosted", api_base="http://localhost:1")
    assert hosted.client_type == "hosted" and hosted.api_base == "http://localhost:1"
    with pytest.raises(UsageError):
        BudgetManager("p", client_type="cloud")
    with pytest.raises(ValueError):  # usage errors are ValueErrors too
        BudgetManager("not/a/name")


def test_create_budget_replaces_as_litellm_does(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    bm.update_cost(user="u", completion_obj=response("r1"))
    again = bm.create_budget(20, "u", "weekly")
    assert again["total_budget"] == 20.0 and again["current_cost"] == 0.0
    with pytest.raises(ValueError):
        bm.create_budget(-1, "u")
    with pytest.raises(ValueError):
        bm.create_budget(float("nan"), "u")


def test_a_completion_recorded_twice_is_charged_once(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    bm.create_budget(10, "v")
    first = bm.update_cost("u", completion_obj=response("chatcmpl-1"))["user"]["current_cost"]
    assert bm.update_cost("u", completion_obj=response("chatcmpl-1"))["user"]["current_cost"] == (
        first
    )
    # the same id with other usage, or for another user, is not that completion: a ValueError
    # (what LiteLLM raises for a bad value), and nothing is charged
    for user, again in (
        ("u", response("chatcmpl-1", completion=10)),
        ("v", response("chatcmpl-1")),
    ):
        with pytest.raises(ValueError, match="request id 'chatcmpl-1' was already charged to 'u'"):
            bm.update_cost(user, completion_obj=again)
    assert (bm.get_current_cost("u"), bm.get_current_cost("v")) == (first, 0.0)
    assert (
        bm.update_cost("u", completion_obj=response("chatcmpl-2"))["user"]["current_cost"] > first
    )


# --- LiteLLM's behaviour to the last detail (docs/library.md, Differences from LiteLLM) ----------


def test_created_at_keeps_the_microsecond(clock: Clock, data_dir: Path) -> None:
    clock.now = T0 + timedelta(microseconds=123456)
    bm = BudgetManager("compat", clock=clock)
    first = bm.create_budget(1, "a", "daily")["created_at"]
    clock.now += timedelta(seconds=0.1)
    second = bm.create_budget(1, "b", "daily")["created_at"]
    assert first == T0.timestamp() + 0.123456 and second > first
    state = json.loads((data_dir / "compat.json").read_text())
    assert state["users"]["a"]["created_at"] == "2026-01-15T12:00:00.123456Z"
    assert bm.user_dict["b"]["created_at"] == second


def test_created_at_given_comes_back_exactly(bm: BudgetManager) -> None:
    given = 1768478400.1234567  # time.time() has sub-microsecond digits
    assert bm.create_budget(1, "u", "daily", created_at=given)["created_at"] == given
    assert bm.user_dict["u"]["created_at"] == pytest.approx(given, abs=1e-6)


def test_periods_anchored_at_a_fraction_of_a_second(bm: BudgetManager, clock: Clock) -> None:
    anchor = T0 + timedelta(microseconds=500000)
    clock.now = anchor + timedelta(hours=1)
    bm.create_budget(10, "u", "daily", created_at=anchor.timestamp())
    bm.update_cost(user="u", completion_obj=response("r1"))
    clock.now = anchor + timedelta(days=1, microseconds=-1)
    bm.update_budget_all_users()
    assert bm.get_current_cost("u") > 0  # one microsecond before the boundary
    clock.now = anchor + timedelta(days=1)
    bm.update_budget_all_users()
    assert bm.get_current_cost("u") == 0
    assert bm.user_dict["u"]["last_updated_at"] == (anchor + timedelta(days=1)).timestamp()


def test_get_model_cost_is_zero_until_charged_or_reset(bm: BudgetManager) -> None:
    bm.create_budget(10, "u", "daily")
    assert bm.get_model_cost("u") == 0 and not isinstance(bm.get_model_cost("u"), dict)
    bm.update_cost(user="u", completion_obj=response("r1"))
    assert set(bm.get_model_cost("u")) == {"gpt-3.5-turbo"}  # type: ignore[arg-type]
    bm.reset_cost("u")
    assert bm.get_model_cost("u") == {}  # LiteLLM's reset_cost sets model_cost to {}
    bm.create_budget(10, "u", "daily")
    assert bm.get_model_cost("u") == 0  # a new budget was never charged
    bm.create_budget(10, "ever")
    bm.reset_cost("ever")  # in the same microsecond as its creation (found by the differential)
    assert bm.get_model_cost("ever") == {}


@pytest.mark.parametrize("duration", [5, 1.0, True, ["daily"], "", "none", "fortnightly"])
def test_a_bad_duration_is_a_value_error(bm: BudgetManager, duration: Any) -> None:
    with pytest.raises(ValueError):
        bm.create_budget(10, "u", duration)
    assert not bm.is_valid_user("u")


@pytest.mark.parametrize("user", ["", "nobody", 7, "x" * 300, "a\nb", None, 1.5])
def test_an_unknown_or_impossible_user_is_a_key_error(bm: BudgetManager, user: Any) -> None:
    bm.create_budget(1, "u")
    assert bm.is_valid_user(user) is False
    for call in (
        lambda: bm.get_current_cost(user),
        lambda: bm.get_total_budget(user),
        lambda: bm.get_model_cost(user),
        lambda: bm.reset_cost(user),
        lambda: bm.reset_on_duration(user),
        lambda: bm.update_cost(user=user, completion_obj=response("x")),
        lambda: bm.update_cost(user=user, model="gpt-4o", input_text="a", output_text="b"),
        lambda: bm.projected_cost("gpt-4o", [{"role": "user", "content": "hi"}], user),
    ):
        with pytest.raises(KeyError):
            call()


def test_an_int_user_is_its_string(bm: BudgetManager) -> None:
    made = bm.create_budget(10, 12345, "daily")  # type: ignore[arg-type]
    assert made["total_budget"] == 10.0
    assert bm.get_users() == ["12345"]  # what LiteLLM's user_cost.json gives back after a reload
    assert bm.is_valid_user(12345) and bm.is_valid_user("12345")  # type: ignore[arg-type]
    bm.update_cost(user=12345, completion_obj=response("r1"))  # type: ignore[arg-type]
    assert bm.get_current_cost("12345") == bm.get_current_cost(12345) > 0  # type: ignore[arg-type]


def test_the_text_form_is_chosen_as_litellm_chooses(bm: BudgetManager) -> None:
    bm.create_budget(10, "u")
    # an empty text is no text form: LiteLLM tests `model and input_text and output_text`
    with pytest.raises(ValueError):
        bm.update_cost(user="u", model="gpt-3.5-turbo", input_text="", output_text="hi")
    assert bm.get_current_cost("u") == 0
    # ...so a completion given beside it is what is charged
    bm.update_cost(
        user="u", completion_obj=response("r1"), model="gpt-4o", input_text="", output_text="x"
    )
    assert set(bm.get_model_cost("u")) == {"gpt-3.5-turbo"}  # type: ignore[arg-type]
    # with text and a completion, the text wins
    bm.update_cost(
        user="u", completion_obj=response("r2"), model="gpt-4o", input_text="a", output_text="b"
    )
    assert set(bm.get_model_cost("u")) == {"gpt-3.5-turbo", "gpt-4o"}  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # an empty completion is no completion
        bm.update_cost(user="u", completion_obj={})


def test_print_verbose_and_api_base(bm: BudgetManager, caplog: pytest.LogCaptureFixture) -> None:
    assert bm.api_base == "https://api.litellm.ai"  # LiteLLM's default, hosted or not
    assert BudgetManager("p", api_base="http://budgets.internal").api_base == (
        "http://budgets.internal"
    )
    with caplog.at_level("INFO", logger="budgetctl"):
        assert bm.print_verbose("hello") is None
    assert "hello" in caplog.text


@pytest.mark.parametrize("api_base", ["not a url", "ftp://example.com", "http://", "http://[::1"])
def test_a_malformed_api_base_is_a_storage_error(api_base: str) -> None:
    with pytest.raises(StorageIOError):
        BudgetManager("p", client_type="hosted", api_base=api_base).get_users()


def test_reset_cost_keeps_the_litellm_period_fields(bm: BudgetManager, clock: Clock) -> None:
    bm.create_budget(10, "u", "monthly")
    before = bm.user_dict["u"]
    bm.update_cost(user="u", completion_obj=response("r1"))
    clock.now += timedelta(days=3, seconds=0.25)
    after = bm.reset_cost("u")["user"]
    # LiteLLM's reset_cost touches neither: its reset job still resets at the month's end
    assert after["duration"] == before["duration"] == 31
    assert after["last_updated_at"] == before["last_updated_at"]
    assert after["last_updated_at"] == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert after["current_cost"] == 0 and after["model_cost"] == {}


def test_a_lifetime_record_has_no_duration_key(bm: BudgetManager) -> None:
    # LiteLLM's update_budget_all_users resets every record with a "duration" key, and computes
    # duration * 86400: a None there would crash a LiteLLM reader of a hosted user_dict
    made = bm.create_budget(5, "forever")
    assert "duration" not in made and made["total_budget"] == 5.0
    bm.reset_cost("forever")
    assert "duration" not in bm.user_dict["forever"]


def test_a_model_is_priced_before_the_user_is_looked_up(bm: BudgetManager) -> None:
    # LiteLLM prices the call first; an unknown model with an unknown user is the model's error
    bm.create_budget(1, "u")
    messages = [{"role": "user", "content": "hi"}]
    for call in (
        lambda: bm.projected_cost("no-such-model", messages, "nobody"),
        lambda: bm.update_cost(user="", model="no-such-model", input_text="a", output_text="b"),
        lambda: bm.update_cost(user="nobody", completion_obj=response("r", model="no-such-model")),
    ):
        with pytest.raises(UnknownModelError):
            call()


def test_budget_manager_stores_in_postgresql_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    import psycopg
    from helpers.postgres import fresh_schema

    from budgetctl.store.hosted import HostedStore
    from budgetctl.store.postgres.store import PostgresStore

    with fresh_schema() as url:
        monkeypatch.setenv("BUDGETCTL_DATABASE_URL", url)
        bm = BudgetManager("compat")  # LiteLLM's constructor: no new argument needed
        assert isinstance(bm.ledger.store, PostgresStore)
        bm.create_budget(total_budget=10, user="u", duration="monthly")
        bm.update_cost(user="u", completion_obj=response("r1"))
        assert BudgetManager("compat").get_current_cost("u") == bm.get_current_cost("u") > 0
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT project, name, current_cost FROM budgetctl_budgets"
            ).fetchall()
        assert [row[:2] for row in rows] == [("compat", "u")]
        assert float(rows[0][2]) == bm.get_current_cost("u")
        assert not data_dir.exists()  # nothing in the data dir
        # The hosted client keeps its server: the variable does not apply to it. (A server
        # known not to be budgetctl's: offline, /healthz cannot be asked.)
        from budgetctl.client import detect

        monkeypatch.setattr(detect, "_known", {"http://localhost:1": False})
        hosted = BudgetManager("compat", client_type="hosted", api_base="http://localhost:1")
        assert isinstance(hosted.ledger.store, HostedStore)
