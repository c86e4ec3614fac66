"""LiteLLM's price-map aliases (``alias_of``, ``aliases``) resolve everywhere a model is named."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.cli import data, ok

from budgetctl import BudgetManager
from budgetctl.costing import load_costing, read_price_file
from budgetctl.costing.bundled import bundled_table
from budgetctl.costing.litellm_map import alias_targets

pytest_plugins = ["helpers.cli"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
NEWER = SHARED / "data" / "prices" / "model_prices_and_context_window.litellm-1.110.2.json"
needs_shared = pytest.mark.skipif(not NEWER.exists(), reason="shared/ reference data not present")


def rates(price: object) -> tuple[object, ...]:
    return tuple(getattr(price, f) for f in ("input_per_token", "output_per_token"))


@needs_shared
def test_every_alias_of_in_litellms_map_is_priced_as_its_target() -> None:
    document = json.loads(NEWER.read_text(), parse_float=Decimal)
    pointers = {n: e["alias_of"] for n, e in document.items() if "alias_of" in e}
    assert len(pointers) == 98  # in the map bundled with LiteLLM 1.110.2
    costing = load_costing()
    for alias, target in pointers.items():
        price = costing.price(alias)
        assert price.model == alias and price.alias_of == target
        assert rates(price) == rates(costing.price(target))
        assert price.cache_read_per_token == costing.price(target).cache_read_per_token


def test_the_bundled_table_knows_claude_opus_latest() -> None:
    price = bundled_table()["claude-opus-latest"]
    target = bundled_table()[price.alias_of]  # type: ignore[index]
    assert rates(price) == rates(target) and price.provider == target.provider


def test_alias_rules_follow_litellms() -> None:
    document = {
        "real": {"input_cost_per_token": 1, "output_cost_per_token": 2, "aliases": ["nick", "x"]},
        "x": {"input_cost_per_token": 3, "output_cost_per_token": 4},  # canonical: not an alias
        "latest": {"alias_of": "real"},
        "chained": {"alias_of": "latest"},  # an alias of an alias is dropped, as in LiteLLM
        "dangling": {"alias_of": "nothing"},
        "nick": {"alias_of": "x"},  # already claimed by real's aliases list
    }
    assert alias_targets(document) == {"nick": "real", "latest": "real"}


def test_a_price_file_with_aliases(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "house-model-v2": {"input_cost_per_token": "1e-6", "output_cost_per_token": 2e-6},
                "house-model-latest": {"alias_of": "house-model-v2"},
            }
        )
    )
    prices = read_price_file(path)
    assert prices["house-model-latest"].alias_of == "house-model-v2"
    assert rates(prices["house-model-latest"]) == (Decimal("0.000001"), Decimal("0.000002"))
    assert load_costing(path).price("openrouter/house-model-latest").model == "house-model-latest"


def test_the_library_charges_an_alias(data_dir: Path) -> None:
    bm = BudgetManager("aliases")
    bm.create_budget(10, "u")
    bm.update_cost(user="u", model="claude-opus-latest", input_text="hello", output_text="world")
    target = bundled_table()["claude-opus-latest"].alias_of
    assert target is not None
    bm.update_cost(user="u", model=target, input_text="hello", output_text="world")
    costs = bm.get_model_cost("u")
    assert isinstance(costs, dict)
    assert costs["claude-opus-latest"] == costs[target] > 0  # kept under the name charged
    messages = [{"role": "user", "content": "hi"}]
    assert bm.projected_cost("bedrock/claude-opus-latest", messages, "u") > bm.get_current_cost("u")


@pytest.mark.usefixtures("cli_env", "frozen")
def test_the_cli_resolves_aliases(alice: Path) -> None:
    charge = data(
        "update-cost", "alice", "--model", "claude-opus-latest",
        "--prompt-tokens", "1000", "--completion-tokens", "100",
    )  # fmt: skip
    target = bundled_table()["claude-opus-latest"]
    assert charge["cost"] == 1000 * target.input_per_token + 100 * target.output_per_token
    check = data(
        "check",
        "alice",
        "--model",
        "azure_ai/claude-opus-latest",
        "--prompt",
        "hi",
        "--max-tokens",
        "9",
    )
    assert check["projected_cost"] > 0
    listed = {m["model"] for m in data("models", "opus-latest")["models"]}
    assert {"claude-opus-latest", "bedrock/claude-opus-latest"} <= listed
    assert "claude-opus-latest" in ok("models", "claude-opus-latest").stdout


def test_an_alias_row_is_priced_as_its_target_never_by_rates_of_its_own(tmp_path: Path) -> None:
    """As tools/build_prices.py reads LiteLLM's map: one reader (litellm_map.parse_price_map)."""
    path = tmp_path / "prices.json"
    own = {"input_cost_per_token": "9", "output_cost_per_token": "9"}
    path.write_text(
        json.dumps(
            {
                "real": {"input_cost_per_token": "1e-6", "output_cost_per_token": "2e-6"},
                "latest": {"alias_of": "real", **own},
                "dangling": {"alias_of": "nothing", **own},
            }
        )
    )
    prices = read_price_file(path)
    assert rates(prices["latest"]) == (Decimal("0.000001"), Decimal("0.000002"))
    assert "dangling" not in prices
