"""CLI: models, price set/remove, --prices, projects, import-litellm."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import CLI_FIXTURES, data, digest, fails, ok, run

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

LITELLM = CLI_FIXTURES / "litellm_user_cost.json"


# --- models ------------------------------------------------------------------------------------


def test_models_lists_prices_per_million_tokens() -> None:
    [gpt4o] = [m for m in data("models", "gpt-4o")["models"] if m["model"] == "gpt-4o"]
    assert (gpt4o["input_per_1m"], gpt4o["output_per_1m"], gpt4o["cache_read_per_1m"]) == (
        Decimal("2.5"),
        Decimal(10),
        Decimal("1.25"),
    )
    assert gpt4o["source"] == "bundled"
    lines = ok("models", "gpt-4o").stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "PROVIDER", "INPUT"]
    [row] = [line for line in lines if line.split()[0] == "gpt-4o"]
    assert row.split()[1:] == ["openai", "$2.50", "$10.00", "$1.25", "bundled"]
    assert lines[-1].endswith("models, USD per 1M tokens")


def test_models_unknown_filter_is_exit_4() -> None:
    assert "no model name contains 'zzz-not-a-model'" in fails(4, "models", "zzz-not-a-model")


def test_prices_file_adds_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {"acme-1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
        )
    )
    [acme] = data("models", "acme", "--prices", str(prices))["models"]
    assert (acme["input_per_1m"], acme["source"]) == (Decimal(1), "prices-file")
    monkeypatch.setenv("BUDGETCTL_PRICES", str(prices))
    assert data("models", "acme-1")["models"][0]["output_per_1m"] == Decimal(2)


def test_bad_prices_file_is_a_usage_error(alice: Path, tmp_path: Path) -> None:
    before = digest(alice.parent)
    args = (
        "update-cost",
        "alice",
        "-m",
        "gpt-4o",
        "--prompt-tokens",
        "1",
        "--completion-tokens",
        "1",
    )
    assert "does not exist" in fails(2, *args, "--prices", str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert "not valid JSON" in fails(2, *args, "--prices", str(bad))
    assert digest(alice.parent) == before


# --- price -------------------------------------------------------------------------------------


def test_price_set_prices_a_private_model(alice: Path) -> None:
    result = ok("price", "set", "acme-private", "--input", "0.2", "--output", "0.4")
    assert result.stdout == (
        "set the price of acme-private in project default: input $0.20, output $0.40 "
        "per 1M tokens\n"
    )
    [listed] = data("models", "acme-private")["models"]
    assert (listed["input_per_1m"], listed["output_per_1m"], listed["source"]) == (
        Decimal("0.2"),
        Decimal("0.4"),
        "project",
    )
    charge = data(
        "update-cost", "alice", "-m", "acme-private", "--prompt-tokens", "1000000",
        "--completion-tokens", "3",
    )  # fmt: skip
    assert charge["cost"] == Decimal("0.2000012")
    assert "would remove" in ok("price", "remove", "acme-private", "--dry-run").stdout
    assert data("price", "remove", "acme-private")["removed"] is True
    fails(4, "models", "acme-private")
    assert "no price for model 'acme-private'" in fails(4, "price", "remove", "acme-private")


def test_price_set_cache_rates_and_other_projects(alice: Path) -> None:
    price = data(
        "price", "set", "acme", "--input", "1", "--output", "2", "--cache-read", "0.1",
        "--cache-creation", "1.25", "-p", "other",
    )  # fmt: skip
    assert (price["cache_read_per_1m"], price["cache_creation_per_1m"], price["project"]) == (
        Decimal("0.1"),
        Decimal("1.25"),
        "other",
    )
    fails(4, "models", "acme")  # project default does not see project other's prices


def test_price_set_rejects_bad_rates(alice: Path) -> None:
    before = digest(alice.parent)
    assert "must not be negative" in fails(2, "price", "set", "m", "--input", "-1", "--output", "1")
    assert "not a number" in fails(2, "price", "set", "m", "--input", "abc", "--output", "1")
    fails(2, "price", "set", "m", "--input", "1")  # --output is required
    assert ok("price", "set", "m", "--input", "1", "--output", "1", "--dry-run").stdout.startswith(
        "would set"
    )
    assert digest(alice.parent) == before


# --- projects ----------------------------------------------------------------------------------


def test_projects(alice: Path) -> None:
    ok("create", "x", "-b", "1", "--duration", "none", "-p", "team-b")
    assert ok("projects").stdout == "default\nteam-b\n"
    document = data("projects")
    assert document == {"data_dir": str(alice.parent), "projects": ["default", "team-b"]}


def test_projects_names_a_data_dir_that_does_not_exist(data_dir: Path) -> None:
    # A script pointed at the wrong place was told nothing (issue 8, item 17).
    result = ok("projects")
    assert (result.stdout, result.stderr) == (
        "",
        f"warning: no projects in {data_dir} (the directory does not exist)\n",
    )
    document = run("projects", "--json")
    assert json.loads(document.stdout) == {"data_dir": str(data_dir), "projects": []}
    assert document.stderr == result.stderr
    data_dir.mkdir()
    assert ok("projects").stderr == f"warning: no projects in {data_dir}\n"


def test_a_write_that_creates_a_project_says_so(data_dir: Path, tmp_path: Path) -> None:
    said = f"created project {{}} in {data_dir}"
    created = data("cap", "--budget", "50", "--duration", "monthly", "-p", "capped")
    assert created["created_project"] == {"project": "capped", "data_dir": str(data_dir)}
    assert data("cap", "--budget", "60", "-p", "capped")["created_project"] is None
    priced = ok("price", "set", "m", "--input", "1", "--output", "2", "-p", "priced").stdout
    assert priced.splitlines()[0] == said.format("priced")
    again = ok("create", "u", "-b", "1", "-d", "none", "-p", "priced").stdout  # its prices exist
    assert not again.startswith("created project")
    imported = ok("import-litellm", str(LITELLM), "-p", "moved").stdout
    assert imported.splitlines() == [
        said.format("moved"),
        f"imported 2 budgets from {LITELLM}",
    ]
    skipped = data("import-litellm", str(LITELLM), "-p", "moved")  # nothing new: no project made
    assert (skipped["imported"], skipped["created_project"]) == ([], None)
    assert ok("create", "u", "-b", "1", "-d", "none", "-p", "quiet", "-q").stdout == ""


# --- import-litellm ----------------------------------------------------------------------------


def test_import_litellm(data_dir: Path) -> None:
    document = data("import-litellm", str(LITELLM))
    assert document["imported"] == ["alice@example.com", "bob"]
    alice = data("show", "alice@example.com")
    assert alice["current_cost"] == Decimal("0.3")  # 0.30000000000000004 at a double's precision
    assert alice["model_cost"] == {"gpt-4o": Decimal("0.2"), "gpt-4o-mini": Decimal("0.1")}
    assert (alice["duration"], alice["next_reset_at"]) == ("30d", "2026-03-31T00:00:00Z")
    again = ok("import-litellm", str(LITELLM)).stdout
    assert again.startswith("imported 0 budgets from")
    assert "skipped 2 that already exist (use --replace to overwrite)" in again
    assert data("import-litellm", str(LITELLM), "--replace")["imported"] == [
        "alice@example.com",
        "bob",
    ]


def test_import_litellm_dry_run_and_errors(data_dir: Path, tmp_path: Path) -> None:
    preview = ok("import-litellm", str(LITELLM), "--dry-run").stdout.splitlines()
    assert preview[0] == f"would create project default in {data_dir}"
    assert preview[1].startswith("would import 2")
    assert digest(data_dir) == {}
    bad = tmp_path / "user_cost.json"
    bad.write_text('{"alice": {"total_budget": -1}}')
    assert "must not be negative" in fails(2, "import-litellm", str(bad))
    assert "cannot read" in fails(2, "import-litellm", str(tmp_path / "missing.json"))
    assert digest(data_dir) == {}
    assert run("import-litellm", str(LITELLM), "-q").stdout == ""
