"""CLI: import-litellm reads LiteLLM's floats at a double's precision and refuses, before writing
anything, a file whose records budgetctl could not read back; stdin, other files, --replace."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import CLI_FIXTURES, NOW, RESPONSES, data, digest, fails, ok, run

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

LITELLM = CLI_FIXTURES / "litellm_user_cost.json"
NOW_EPOCH = NOW.timestamp()
DAY = 86400.0


def record(**fields: Any) -> dict[str, Any]:
    """A LiteLLM user record as its BudgetManager writes one, with ``fields`` changed."""
    base: dict[str, Any] = {
        "total_budget": 10.0,
        "current_cost": 0.5,
        "model_cost": {"gpt-4o": 0.5},
        "duration": 28,
        "created_at": NOW_EPOCH - 3 * DAY,
        "last_updated_at": NOW_EPOCH - 3 * DAY,
    }
    base.update(fields)
    return base


def litellm_file(tmp_path: Path, users: dict[str, Any], name: str = "user_cost.json") -> Path:
    """``users`` written the way LiteLLM writes them: ``json.dump`` of Python floats."""
    path = tmp_path / name
    path.write_text(json.dumps(users, indent=4))
    return path


# --- floats at a double's precision ------------------------------------------------------------


def test_float_noise_is_read_at_a_doubles_precision(data_dir: Path, tmp_path: Path) -> None:
    """LiteLLM adds costs as floats; json.dump writes the float's shortest repr, noise and all."""
    per_call = 93 * 2.5e-06 + 1024 * 1.25e-06 + 46 * 1e-05  # a gpt-4o call, priced as LiteLLM does
    assert repr(per_call) == "0.0019725000000000003"
    users = {
        "two": record(current_cost=0.1 + 0.2, model_cost={"gpt-4o": 0.1, "gpt-4o-mini": 0.2}),
        "three": record(current_cost=3 * 0.1, model_cost={"gpt-4o": 3 * 0.1}),
        "ten": record(current_cost=sum([0.1] * 10), model_cost={"gpt-4o": sum([0.1] * 10)}),
        "call": record(current_cost=per_call, model_cost={"gpt-4o": per_call}),
        # 15 significant digits are a double's real precision: they come back exactly.
        "fine": record(total_budget=123456789.012345, current_cost=0.000123456789012345),
    }
    text = litellm_file(tmp_path, users).read_text()
    assert "0.30000000000000004" in text and "0.9999999999999999" in text
    ok("import-litellm", str(tmp_path / "user_cost.json"), "-q")
    shown = {user["user"]: user for user in data("show")["users"]}
    assert shown["two"]["current_cost"] == Decimal("0.3")
    assert shown["two"]["model_cost"] == {"gpt-4o": Decimal("0.1"), "gpt-4o-mini": Decimal("0.2")}
    assert shown["three"]["current_cost"] == Decimal("0.3")
    assert shown["ten"]["current_cost"] == Decimal(1)
    assert shown["ten"]["model_cost"] == {"gpt-4o": Decimal(1)}
    assert shown["call"]["current_cost"] == Decimal("0.0019725")
    assert shown["fine"]["total_budget"] == Decimal("123456789.012345")
    assert shown["fine"]["current_cost"] == Decimal("0.000123456789012345")
    assert '"current_cost": 0.3,' in ok("show", "two", "--json").stdout


def test_the_fixture_file_imports_without_noise(data_dir: Path) -> None:
    ok("import-litellm", str(LITELLM), "-q")
    assert data("show", "alice@example.com")["current_cost"] == Decimal("0.3")


# --- records budgetctl could not read back are refused, before anything is written ---------


BAD_RECORDS = [
    ({"duration": 36601}, "duration 36601 days is longer than budgetctl's longest period"),
    ({"duration": 1e6}, "duration 1000000 days is longer"),
    ({"duration": 1e400}, "duration must be a whole number of days"),  # json: inf
    ({"duration": 0}, "duration must be at least 1 day"),
    ({"duration": 2.5}, "duration must be a whole number of days"),
    ({"duration": "monthly"}, "duration must be a whole number of days"),
    ({"duration": True}, "duration must be a whole number of days"),
    ({"total_budget": -1}, "total_budget must not be negative"),
    ({"total_budget": 1e400}, "total_budget must be a finite number"),
    ({"total_budget": 1e16}, "total_budget 1E+16 is too large"),
    ({"current_cost": float("nan")}, "current_cost must be a finite number"),
    ({"current_cost": "lots"}, "current_cost 'lots' is not a number"),
    ({"model_cost": {"gpt-4o": -0.1}}, r"model_cost[gpt-4o] must not be negative"),
    ({"model_cost": [1]}, "model_cost is not an object"),
    ({"model_cost": {"": 0.1}}, "model_cost has a model with no name"),
    ({"model_cost": {"gpt\n4o": 0.1}}, "model name 'gpt\\n4o' contains control characters"),
    ({"created_at": NOW_EPOCH + 60}, "created_at 2026-03-10T12:01:00Z is after the current time"),
    ({"created_at": 4102444800.0}, "created_at 2100-01-01T00:00:00Z is after the current time"),
    ({"last_updated_at": NOW_EPOCH + DAY}, "last_updated_at 2026-03-11T12:00:00Z is after"),
    ({"created_at": -5.0}, "created_at -5.0 is before 1970"),
    ({"created_at": 1e20}, "created_at 1E+20 is out of range"),
    ({"created_at": "yesterday"}, "created_at must be epoch seconds"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_RECORDS)
def test_a_bad_record_is_refused_and_changes_nothing(
    data_dir: Path, tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    ok("create", "carol", "--budget", "5", "--duration", "monthly")
    before = digest(data_dir)
    path = litellm_file(tmp_path, {"alice": record(), "bob": record(**fields)})
    error = fails(2, "import-litellm", str(path))
    assert error.startswith(f"error: {path}: user 'bob': "), error
    assert message in error
    assert digest(data_dir) == before  # alice, before bob, was not written either
    assert data("show")["users"][0]["user"] == "carol"


def test_a_bad_record_of_a_user_that_would_be_skipped_is_refused_too(
    data_dir: Path, tmp_path: Path
) -> None:
    ok("create", "bob", "--budget", "5", "--duration", "monthly")
    before = digest(data_dir)
    path = litellm_file(tmp_path, {"alice": record(), "bob": record(duration=36601)})
    assert "user 'bob': duration 36601 days" in fails(2, "import-litellm", str(path))
    assert digest(data_dir) == before


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ({"": record()}, "a user must be a non-empty string"),
        ({"a\tb": record()}, "contains control characters"),
        ({"\ud800": record()}, "is not valid UTF-8 text"),
        ({"alice": record(model_cost={"\udc00": 0.1})}, "is not valid UTF-8 text"),
        ({"alice": "not a record", "bob": record()}, "user 'alice': record is not an object"),
        ({"alice": {"current_cost": 0}, "bob": record()}, "user 'alice': no total_budget"),
    ],
)
def test_bad_names_and_shapes_name_the_record(
    data_dir: Path, tmp_path: Path, users: dict[str, Any], message: str
) -> None:
    path = litellm_file(tmp_path, users)
    assert message in fails(2, "import-litellm", str(path))
    assert digest(data_dir) == {}


def test_the_longest_period_and_the_epoch_are_read_back(data_dir: Path, tmp_path: Path) -> None:
    path = litellm_file(
        tmp_path,
        {
            "long": record(duration=36600, created_at=0.0, last_updated_at=0.0),
            "now": record(duration=1, created_at=NOW_EPOCH, last_updated_at=NOW_EPOCH),
        },
    )
    ok("import-litellm", str(path), "-q")
    shown = {user["user"]: user for user in data("show")["users"]}
    assert (shown["long"]["duration"], shown["long"]["next_reset_at"]) == (
        "36600d",
        "2070-03-17T00:00:00Z",
    )
    assert shown["now"]["next_reset_at"] == "2026-03-11T12:00:00Z"
    ok("show", "long")
    ok("reset-due")


def test_a_json_int_too_long_to_read_is_a_usage_error(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "user_cost.json"
    path.write_text('{"alice": {"total_budget": ' + "9" * 5000 + "}}")
    assert "is not valid JSON" in fails(2, "import-litellm", str(path))
    path.write_text('{"alice": ' * 100_000)
    assert "is not valid JSON" in fails(2, "import-litellm", str(path))
    assert digest(data_dir) == {}


# --- stdin, other files, --replace -----------------------------------------------------------


def test_import_reads_stdin(data_dir: Path) -> None:
    result = ok("import-litellm", "-", input=LITELLM.read_bytes())
    assert result.stdout.splitlines()[-1] == "imported 2 budgets from stdin"
    assert data("show", "bob")["total_budget"] == Decimal(5)
    document = data("import-litellm", "-", "--dry-run", input=LITELLM.read_bytes())
    assert (document["file"], document["skipped"]) == ("-", ["alice@example.com", "bob"])
    error = fails(2, "import-litellm", "-", input="")
    assert "stdin is empty" in error


def state_file(data_dir: Path) -> Path:
    ok("create", "zed", "--budget", "1", "--duration", "daily", "-p", "other")
    return data_dir / "other.json"


@pytest.mark.parametrize(
    ("make", "looks_like"),
    [
        (lambda d: state_file(d), "a budgetctl state file (project 'other')"),
        (
            lambda d: RESPONSES / "openai_chat_cached.json",
            "a completion response (gpt-4o-2024-08-06): charge it with "
            "'budgetctl update-cost USER --response FILE'",
        ),
        (
            lambda d: RESPONSES / "openai_error_insufficient_quota.json",
            "an API error body (insufficient_quota)",
        ),
        (lambda d: write(d, [{"alice": 1}]), "a JSON list"),
        (lambda d: write(d, "alice"), "a JSON string"),
        (lambda d: write(d, 3.5), "a JSON number"),
        (
            lambda d: write(d, {"gpt-4o": {"input_cost_per_token": 2.5e-06,
                                           "litellm_provider": "openai"}}),
            "a LiteLLM price map: give it to --prices FILE",
        ),
        (
            lambda d: write(d, {"project": "default", "cap": None, "users": []}),
            "the output of 'budgetctl show --json'",
        ),
        (
            lambda d: write(d, {"status": "success", "data": {"alice": record()}}),
            "a LiteLLM budget server reply: its 'data' holds the users",
        ),
        (lambda d: write(d, {"name": "x", "version": 2}), "an object whose fields hold no "
         "LiteLLM user record (name, version)"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_litellms_says_what_it_looks_like(
    data_dir: Path, make: Any, looks_like: str
) -> None:
    path = make(data_dir)
    before = digest(data_dir)
    error = fails(2, "import-litellm", str(path))
    assert f"is not LiteLLM's user_cost.json: it looks like {looks_like}" in error, error
    assert digest(data_dir) == before


def write(folder: Path, document: Any) -> Path:
    path = folder.parent / "other.json"
    path.write_text(json.dumps(document))
    return path


def test_replace_dry_run_names_the_live_budgets_it_would_overwrite(data_dir: Path) -> None:
    ok("create", "bob", "--budget", "50", "--duration", "monthly")
    ok("update-cost", "bob", "--cost", "12.5")
    before = digest(data_dir)
    result = ok("import-litellm", str(LITELLM), "--replace", "--dry-run")
    assert result.stdout.splitlines() == [
        f"would import 2 budgets from {LITELLM}",
        "would overwrite 1 live budget and its spend: bob",
    ]
    document = data("import-litellm", str(LITELLM), "--replace", "--dry-run")
    assert (document["imported"], document["replaced"]) == (["alice@example.com", "bob"], ["bob"])
    assert digest(data_dir) == before
    assert data("show", "bob")["current_cost"] == Decimal("12.5")
    done = ok("import-litellm", str(LITELLM), "--replace").stdout.splitlines()
    assert done[1] == "overwrote 1 live budget and its spend: bob"
    assert data("show", "bob")["total_budget"] == Decimal(5)
    assert data("import-litellm", str(LITELLM), "--dry-run")["replaced"] == []
    assert run("import-litellm", str(LITELLM), "--replace", "-q").stdout == ""
