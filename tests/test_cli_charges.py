"""CLI: update-cost (every form), check, history."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import RESPONSES, data, digest, fails, ok, run

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

CHARGE_KEYS = {
    "user", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "cost",
    "current_cost", "remaining", "over_budget", "duplicate",
}  # fmt: skip
CHECK_KEYS = {
    "user", "model", "prompt_tokens", "projected_cost", "current_cost", "total_budget",
    "remaining", "allowed",
}  # fmt: skip
CHAT = RESPONSES / "openai_chat_cached.json"
CHAT_COST = Decimal("0.0019725")  # 93 * 2.5e-6 + 1024 * 1.25e-6 + 46 * 1e-5 (gpt-4o)
ONE = ("--completion-tokens", "1")


# --- update-cost -------------------------------------------------------------------------------


def test_tokens_form_prices_from_the_table(alice: Path) -> None:
    charge = data(
        "update-cost", "alice", "-m", "gpt-4o", "--prompt-tokens", "1000",
        "--completion-tokens", "500",
    )  # fmt: skip
    assert charge.keys() >= CHARGE_KEYS
    assert charge["cost"] == Decimal("0.0075")
    assert charge["current_cost"] == Decimal("2.5075")
    assert charge["remaining"] == Decimal("7.4925")
    assert (charge["duplicate"], charge["over_budget"]) == (False, False)


def test_cached_tokens_are_priced_at_the_cache_rate(alice: Path) -> None:
    charge = data(
        "update-cost", "alice", "-m", "gpt-4o", "--prompt-tokens", "1117",
        "--completion-tokens", "46", "--cached-tokens", "1024",
    )  # fmt: skip
    assert (charge["cost"], charge["cached_tokens"]) == (CHAT_COST, 1024)


def test_plain_output_of_a_charge(alice: Path) -> None:
    text = ok(
        "update-cost", "alice", "-m", "gpt-4o", "--prompt-tokens", "1000",
        "--completion-tokens", "500",
    ).stdout  # fmt: skip
    assert text == (
        "charged alice $0.0075 for gpt-4o (1,000 prompt + 500 completion tokens)\n"
        "alice has spent $2.5075 of $10.00 (25%), $7.4925 left\n"
    )


def test_text_form_counts_tokens(alice: Path) -> None:
    charge = data(
        "update-cost", "alice", "-m", "gpt-4o", "--input-text", "hello world",
        "--output-text", "hi",
    )  # fmt: skip
    assert (charge["prompt_tokens"], charge["completion_tokens"]) == (2, 1)
    assert charge["cost"] == Decimal("0.000015")  # 2 * 2.5e-6 + 1 * 1e-5


def test_response_file_uses_its_model_usage_and_id(alice: Path) -> None:
    charge = data("update-cost", "alice", "--response", str(CHAT))
    assert charge["model"] == "gpt-4o-2024-08-06"
    assert (charge["prompt_tokens"], charge["completion_tokens"], charge["cached_tokens"]) == (
        1117,
        46,
        1024,
    )
    assert charge["cost"] == CHAT_COST
    assert charge["request_id"] == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"


def test_response_on_stdin_twice_is_charged_once(alice: Path) -> None:
    first = data("update-cost", "alice", "--response", "-", input=CHAT.read_bytes())
    before = digest(alice.parent)
    second = run("update-cost", "alice", "--response", "-", input=CHAT.read_bytes())
    assert second.exit_code == 0
    assert "was already charged: nothing changed" in second.stdout
    assert digest(alice.parent) == before
    again = data("update-cost", "alice", "-r", "-", input=CHAT.read_bytes())
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["current_cost"] == first["current_cost"] == Decimal("2.5") + CHAT_COST


@pytest.mark.parametrize(
    "fixture",
    [
        "openai_responses.json",
        "anthropic_messages_cache.json",
        "litellm_model_response_anthropic.json",
        "gemini_generate_content.json",
        "gemini_stream_chunk_grounded.json",
    ],
)
def test_every_response_shape_is_read(alice: Path, fixture: str) -> None:
    charge = data("update-cost", "alice", "--response", str(RESPONSES / fixture))
    assert charge["cost"] > 0 and charge["prompt_tokens"] > 0 and charge["request_id"]


def test_a_bedrock_response_is_priced_with_model(alice: Path) -> None:
    bedrock = RESPONSES / "bedrock_converse_boto3.json"
    before = digest(alice.parent)
    error = fails(2, "update-cost", "alice", "--response", str(bedrock))
    assert "Bedrock Converse response names no model: give it with --model MODEL" in error
    assert digest(alice.parent) == before
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    charge = data("update-cost", "alice", "-r", "-", "-m", model, input=bedrock.read_bytes())
    assert (charge["model"], charge["request_id"]) == (
        model,
        "7d2e5c1a-3b4f-4e8a-9c6d-0f1e2a3b4c5d",
    )
    assert (charge["prompt_tokens"], charge["completion_tokens"]) == (25 + 2048, 118)
    # 25 input + 2048 cache writes at 1.25x + 118 output (claude-3-5-sonnet on Bedrock)
    assert charge["cost"] == Decimal("0.000075") + Decimal("0.00768") + Decimal("0.00177")


def test_model_names_the_model_only_when_the_response_does_not(alice: Path) -> None:
    charge = data("update-cost", "alice", "--response", str(CHAT), "-m", "gpt-4o-mini")
    assert (charge["model"], charge["cost"]) == ("gpt-4o-2024-08-06", CHAT_COST)


@pytest.mark.parametrize(
    ("fixture", "label"),
    [
        ("openai_error_insufficient_quota.json", "insufficient_quota"),
        ("anthropic_error_overloaded.json", "overloaded_error"),
        ("gemini_error_resource_exhausted.json", "RESOURCE_EXHAUSTED, 429"),
    ],
)
def test_an_api_error_body_is_not_charged(alice: Path, fixture: str, label: str) -> None:
    before = digest(alice.parent)
    body = (RESPONSES / fixture).read_bytes()
    error = fails(2, "update-cost", "alice", "--response", "-", "-q", input=body)
    assert error.startswith(f"error: this is an API error ({label}): nothing to charge; ")
    assert "response.model" not in error
    assert digest(alice.parent) == before


def test_an_unknown_shape_lists_the_shapes_read(alice: Path) -> None:
    error = fails(2, "update-cost", "alice", "-r", "-", input='{"choices": []}')
    assert "not a response budgetctl can read (its fields: choices); it reads OpenAI" in error
    assert "Google Gemini generateContent; Amazon Bedrock Converse" in error


def test_request_id_is_charged_once(alice: Path) -> None:
    args = ("update-cost", "alice", "--cost", "0.5", "--request-id", "req-1")
    assert data(*args)["duplicate"] is False
    assert data(*args)["duplicate"] is True
    assert data("show", "alice")["current_cost"] == Decimal(3)


def test_request_id_reused_for_another_charge_fails(alice: Path) -> None:
    ok("create", "bob", "--budget", "10", "--duration", "monthly")
    first = ("update-cost", "alice", "-m", "gpt-4o", "--prompt-tokens", "1000", "--request-id", "r")
    ok(*first, *ONE)
    files = digest(alice.parent)
    said = "error: request id 'r' was already charged to 'alice' for $0.00251: nothing changed"
    for other in (
        (
            "update-cost",
            "bob",
            "-m",
            "gpt-4o",
            "--prompt-tokens",
            "1000",
            "--request-id",
            "r",
            *ONE,
        ),
        (*first, "--completion-tokens", "2"),
        (*first, *ONE, "--cached-tokens", "10"),
        ("update-cost", "alice", "--cost", "0.00251", "--request-id", "r"),
        ("update-cost", "alice", "--cost", "9", "--request-id", "r", "-q"),
        ("update-cost", "alice", "--cost", "9", "--request-id", "r", "--json"),
        ("update-cost", "alice", "--cost", "9", "--request-id", "r", "--dry-run"),
    ):
        assert fails(1, *other).startswith(said)
    assert digest(alice.parent) == files  # nothing changed
    again = run(*first, *ONE, "-q")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")
    assert data(*first, *ONE)["duplicate"] is True
    assert data("show", "alice")["current_cost"] == Decimal("2.50251")


def test_cost_form_sums_exactly(alice: Path) -> None:
    for _ in range(3):
        ok("update-cost", "alice", "--cost", "0.1", "-q")
    result = ok("show", "alice", "--json")
    assert '"current_cost": 2.8,' in result.stdout  # 2.5 + 3 x 0.1, never 2.8000000000000003
    charge = data("update-cost", "alice", "--cost", "0.000123")
    assert charge["cost"] == Decimal("0.000123") and charge["model"] is None


def test_going_over_budget_still_charges_and_warns(alice: Path) -> None:
    result = run("update-cost", "alice", "--cost", "8")
    assert result.exit_code == 0
    assert "alice has spent $10.50 of $10.00 (105%), $0.00 left" in result.stdout
    assert (
        result.stderr
        == "warning: alice is over budget; 'check' will refuse its calls until it resets or the "
        "budget is raised\n"
    )
    # -q hides the chatter, never the warning (issue 8, item 7: it hid both)
    quiet = run("update-cost", "alice", "--cost", "1", "-q")
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    assert quiet.stderr.startswith("warning: alice is over budget;")


def test_crossing_the_alert_threshold_warns_once(alice: Path) -> None:
    # alice: $10 monthly, alert at 80%, $2.50 spent. Crossing it only changed a colour.
    below = run("update-cost", "alice", "--cost", "5.49", "-q")
    assert (below.exit_code, below.stdout, below.stderr) == (0, "", "")
    crossing = run("update-cost", "alice", "--cost", "0.01", "-q")
    assert (crossing.exit_code, crossing.stdout) == (0, "")
    assert crossing.stderr == (
        "warning: alice crossed 80% of $10.00: $8.00 spent, $2.00 left; it resets in 3 weeks "
        "(Wed 1 Apr 2026 00:00 UTC)\n"
    )
    assert run("update-cost", "alice", "--cost", "0.5").stderr == ""  # once, not every charge
    # a charge straight past the budget says it is over budget (the stronger warning)
    ok("create", "carol", "-b", "1", "-d", "daily", "--alert-at", "50")
    over = run("update-cost", "carol", "--cost", "2")
    assert over.stderr.startswith("warning: carol is over budget;") and "crossed" not in over.stderr


def test_dry_run_charges_nothing(alice: Path) -> None:
    before = digest(alice.parent)
    result = ok("update-cost", "alice", "--cost", "1", "--dry-run")
    assert result.stdout.startswith("would charge alice $1.00\nthen alice has spent $3.50")
    assert data("update-cost", "alice", "--cost", "1", "--dry-run")["dry_run"] is True
    assert digest(alice.parent) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of"),
        (("--cost", "1", "--prompt-tokens", "3"), "(got --prompt-tokens/--completion-tokens"),
        (("--prompt-tokens", "3", "--completion-tokens", "1"), "needs --model"),
        (("--input-text", "hi"), "needs --model"),
        (("-m", "gpt-4o", "--prompt-tokens", "3", *ONE, "--cached-tokens", "9"),
         "cannot exceed"),
    ],
)  # fmt: skip
def test_update_cost_forms_are_checked(alice: Path, args: tuple[str, ...], message: str) -> None:
    before = digest(alice.parent)
    assert message in fails(2, "update-cost", "alice", *args)
    assert digest(alice.parent) == before


def test_unknown_model_names_the_closest(alice: Path) -> None:
    error = fails(4, "update-cost", "alice", "-m", "gpt-4oo", "--prompt-tokens", "1",
                  "--completion-tokens", "1")  # fmt: skip
    assert "no price for model 'gpt-4oo'" in error and "gpt-4o" in error.split("closest")[1]


# --- check -------------------------------------------------------------------------------------


def test_check_fits(alice: Path) -> None:
    result = data(
        "check", "alice", "-m", "gpt-4o", "--prompt", "hello world", "--max-tokens", "100"
    )
    assert result.keys() >= CHECK_KEYS
    assert result["prompt_tokens"] == 9  # one user message: 3 + 2 + 3 to prime the reply
    assert result["projected_cost"] == Decimal("0.0010225")  # 9 * 2.5e-6 + 100 * 1e-5
    assert (result["allowed"], result["remaining"]) == (True, Decimal("7.5"))
    text = ok("check", "alice", "-m", "gpt-4o", "--prompt", "hello world").stdout
    assert text.startswith("ok: this gpt-4o call may cost $0.000023")  # 0.0000225, rounded


def test_check_over_budget_is_exit_3_and_says_why(alice: Path) -> None:
    args = ("check", "alice", "-m", "gpt-4o", "--prompt", "hi", "--max-tokens", "800000")
    result = run(*args, "--json")
    assert result.exit_code == 3
    document = json.loads(result.stdout, parse_float=Decimal)
    assert document["allowed"] is False and document["blocked_by"] == "user"
    assert result.stderr == (
        "error: alice's budget does not cover this call: it may cost $8.00002 and $7.50 of "
        "$10.00 remains; it resets in 3 weeks (Wed 1 Apr 2026 00:00 UTC)\n"
    )
    assert run(*args, "-q").stdout == ""


def test_check_blocked_by_the_project_cap(alice: Path) -> None:
    ok("cap", "--budget", "0.5", "--duration", "daily")
    error = fails(3, "check", "alice", "-m", "gpt-4o", "--prompt", "hi", "--max-tokens", "60000")
    assert error.startswith("error: the project cap of 'default' does not cover this call")
    assert "in 12 hours (Wed 11 Mar 2026 00:00 UTC)" in error


def test_check_messages_from_a_request_body(alice: Path, tmp_path: Path) -> None:
    body = {
        "model": "gpt-4o",
        "max_tokens": 200,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body))
    from_file = data("check", "alice", "--messages", str(request))
    plain = run(
        "check", "alice", "-m", "gpt-4o", "--messages", "-", "--json",
        input=json.dumps(body["messages"]),
    )  # fmt: skip
    assert plain.exit_code == 0, plain.stderr
    from_stdin = json.loads(plain.stdout, parse_float=Decimal)
    assert from_file["model"] == "gpt-4o" and from_file["max_tokens"] == 200
    assert from_file["prompt_tokens"] == from_stdin["prompt_tokens"]
    assert from_stdin["max_tokens"] == 0
    assert "the completion is not counted" in plain.stderr  # no max_tokens anywhere


def test_check_says_when_the_completion_is_not_counted(alice: Path) -> None:
    # Pricing 0 completion tokens silently made every check look cheap (issue 8, item 3).
    quiet = run("check", "alice", "-m", "gpt-4o", "--prompt", "hi", "-q")
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    assert quiet.stderr == (
        "warning: the completion is not counted (only the prompt is priced): give "
        "--max-tokens N, or max_tokens in the request body\n"
    )
    counted = run("check", "alice", "-m", "gpt-4o", "--prompt", "hi", "--max-tokens", "0")
    assert (counted.exit_code, counted.stderr) == (0, "")


def test_check_with_nothing_to_price_is_a_usage_error(alice: Path) -> None:
    # It answered "ok" for an empty prompt (issue 8, item 3).
    for args in (("-m", "gpt-4o"), (), ("-m", "gpt-4o", "--max-tokens", "100")):
        error = fails(2, "check", "alice", *args)
        assert "nothing to price" in error and "--cost USD" in error


def test_check_a_cost_known_in_advance(alice: Path) -> None:
    fits = data("check", "alice", "--cost", "7.5")  # alice has $7.50 left
    assert (fits["allowed"], fits["projected_cost"], fits["model"]) == (True, Decimal("7.5"), None)
    assert (fits["prompt_tokens"], fits["max_tokens"], fits["remaining"]) == (0, 0, Decimal("7.5"))
    assert ok("check", "alice", "--cost", "0.25", "-m", "ft-job").stdout == (
        "ok: this ft-job call may cost $0.25; alice has $7.50 of $10.00 left\n"
    )
    assert ok("check", "alice", "--cost", "0.25").stdout.startswith("ok: this call may cost $0.25;")
    error = fails(3, "check", "alice", "--cost", "7.51")
    assert error.startswith("error: alice's budget does not cover this call: it may cost $7.51")
    assert "cannot be combined" in fails(2, "check", "alice", "--cost", "1", "--prompt", "hi")
    assert "cannot be combined" in fails(2, "check", "alice", "--cost", "1", "--max-tokens", "9")
    assert "not a number" in fails(2, "check", "alice", "--cost", "ten")
    assert "no budget for user 'zed'" in fails(4, "check", "zed", "--cost", "1")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--prompt", "hi"), 2, "give --model"),
        (("-m", "gpt-4o", "--prompt", "a", "--messages", "-"), 2, "not both"),
        (("-m", "gpt-4o", "--messages", "-"), 2, "empty"),
        (("-m", "nope-model-x", "--prompt", "a"), 4, "no price for model"),
        (("-m", "gpt-4o", "--prompt", "a", "--max-tokens", "-5"), 2, "max tokens"),
    ],
)
def test_check_errors(alice: Path, args: tuple[str, ...], code: int, message: str) -> None:
    assert message in fails(code, "check", "alice", *args)


def test_check_bad_messages(alice: Path) -> None:
    assert "not valid JSON" in fails(
        2, "check", "alice", "-m", "gpt-4o", "--messages", "-", input="[{"
    )
    assert "expects a JSON list" in fails(
        2, "check", "alice", "-m", "gpt-4o", "--messages", "-", input='{"messages": "hi"}'
    )


# --- history -----------------------------------------------------------------------------------


def test_history_newest_first_with_exact_numbers(alice: Path) -> None:
    ok("update-cost", "alice", "--cost", "0.000123", "--request-id", "r-9")
    ok("reset", "alice")
    events = data("history", "alice")["events"]
    assert [e["type"] for e in events] == ["period", "charge", "charge", "create"]
    assert events[0]["spent"] == Decimal("2.500123")
    assert events[1]["cost"] == Decimal("0.000123") and events[1]["request_id"] == "r-9"
    assert [e["type"] for e in data("history", "alice", "--limit", "1")["events"]] == ["period"]


def test_history_plain(alice: Path) -> None:
    lines = ok("history", "alice").stdout.splitlines()
    assert lines[0].split() == ["TIME", "EVENT", "AMOUNT", "DETAILS"]
    assert "charge" in lines[1] and "$2.50" in lines[1] and "gpt-4o" in lines[1]
    assert "create" in lines[2] and "budget $10.00 monthly" in lines[2]
    assert "USER" in ok("history").stdout.splitlines()[0]  # the whole project


def test_history_says_whose_alert_it_was(alice: Path) -> None:
    """Alerts and going over, the user's and the cap's: what crossed what, and no "None" in the
    user column for the cap's."""
    ok("set", "alice", "--alert-at", "50")
    ok("cap", "--budget", "20", "--alert-at", "40")
    # (the clock is frozen: the cap, set at the time of alice's $2.50, counts it)
    ok("update-cost", "alice", "--cost", "6")  # alice: 2.50 -> 8.50 of 10; the cap too: 42.5%
    ok("update-cost", "alice", "--cost", "2")  # alice over
    rows = [line.split(None, 3) for line in ok("history").stdout.splitlines()[1:]]
    alerts = [r for r in rows if r[1] in ("alert", "over")]
    assert all("None" not in " ".join(r) for r in rows)
    details = sorted(" ".join(r[2:]) for r in alerts)
    assert details == [
        "alice budget crossed 50%: $8.50 spent of $10.00",
        "alice budget went over: $10.50 spent of $10.00",
        "project cap crossed 40%: $8.50 spent of $20.00",
    ], details


def test_history_errors(alice: Path) -> None:
    fails(4, "history", "zed")
    assert "--limit must be at least 1" in fails(2, "history", "alice", "--limit", "0")


def test_on_a_terminal_a_charge_is_a_plain_line_unless_over_budget(
    alice: Path, terminal: None
) -> None:
    calm = ok("update-cost", "alice", "--cost", "1").stdout
    assert calm.endswith("alice has spent $3.50 of $10.00 (35%), $6.50 left\n")
    assert "\x1b[" not in calm
    over = ok("update-cost", "alice", "--cost", "7").stdout
    assert "\x1b[1;31m" in over and "$10.50 of $10.00" in over
