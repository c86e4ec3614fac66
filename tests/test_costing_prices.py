"""Prices: the bundled table against LiteLLM's map, lookups, overrides, exact costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl.costing import Price, Usage, cost_of, list_prices, load_costing, read_price_file
from budgetctl.costing.bundled import (
    BUNDLED_PRICES,
    DATA_DIR,
    BundledTable,
    bundled_table,
    load_bundled_table,
    price_from_row,
)
from budgetctl.costing.litellm_map import MAX_PRICE_FILE
from budgetctl.errors import StateError, UnknownModelError, UsageError

REPO = Path(__file__).resolve().parents[1]
# The shared reference data: /work/shared here, a copy beside the clone in CI.
SHARED = Path(__file__).resolve().parents[2] / "shared"
PRICE_MAPS = SHARED / "data" / "prices"
NEWER = PRICE_MAPS / "model_prices_and_context_window.litellm-1.110.2.json"
OLDER = PRICE_MAPS / "model_prices_and_context_window.litellm-1.75.0.json"
needs_shared = pytest.mark.skipif(not NEWER.exists(), reason="shared/ reference data not present")

# (input, output, cache read, cache creation) per token, as LiteLLM's map gives them.
EXPECTED = {
    "gpt-4o": ("0.0000025", "0.00001", "0.00000125", None),
    "gpt-4o-mini": ("1.5E-7", "6E-7", "7.5E-8", None),
    "gpt-4": ("0.00003", "0.00006", None, None),
    "gpt-3.5-turbo": ("5E-7", "0.0000015", None, None),
    "o1": ("0.000015", "0.00006", "0.0000075", None),
    "gpt-5": ("0.00000125", "0.00001", "1.25E-7", None),
    "claude-3-5-sonnet-20240620": ("0.000003", "0.000015", "3E-7", "0.00000375"),
    "text-embedding-3-small": ("2E-8", "0.0", None, None),
}
RATE_FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)


def rates(price: Price) -> tuple[Decimal | None, ...]:
    return (
        price.input_per_token,
        price.output_per_token,
        price.cache_read_per_token,
        price.cache_creation_per_token,
    )


def write_map(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


# --- the bundled table ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_bundled_price_equals_the_literal(model: str) -> None:
    expected = tuple(None if text is None else Decimal(text) for text in EXPECTED[model])
    price = load_costing().price(model)
    assert rates(price) == expected
    assert price.model == model and price.source == "bundled"


@needs_shared
@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_bundled_price_equals_litellms_map_to_the_digit(model: str) -> None:
    newer = json.loads(NEWER.read_bytes(), parse_float=Decimal)
    older = json.loads(OLDER.read_bytes(), parse_float=Decimal)
    entry = newer.get(model) or older[model]  # the older map fills what the newer dropped
    price = load_costing().price(model)
    for field, ours in zip(RATE_FIELDS, rates(price), strict=True):
        theirs = entry.get(field)
        assert ours == theirs, field
        assert (None if ours is None else str(ours)) == (None if theirs is None else str(theirs))
    assert price.provider == entry["litellm_provider"] and price.mode == entry["mode"]
    assert price.max_input_tokens == entry.get("max_input_tokens")


@needs_shared
def test_bundled_data_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "build_prices.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_indexed_lookup_agrees_with_the_full_parse_for_every_model() -> None:
    """A lookup finds its line by name without parsing the table; it must give what parsing the
    whole table gives, for every model (names that prefix others, like gpt-4 / gpt-4o, included)."""
    rows = json.loads(BUNDLED_PRICES.read_bytes())["models"]
    lazy = load_bundled_table()
    assert "gpt-4" in rows and "gpt-4o" in rows
    for name, row in rows.items():
        assert lazy.get(name) == price_from_row(name, row), name
    assert lazy.get("gpt-4o-not-a-model") is None
    assert "gpt-4o-not-a-model" not in lazy
    with pytest.raises(KeyError):
        lazy["gpt-4"[:-1]]
    assert len(lazy) == len(rows) and set(lazy) == set(rows)


def test_bundled_table_looked_up_before_and_after_a_full_parse() -> None:
    table = load_bundled_table()
    before = table.get("gpt-4o")
    assert len(table) > 4000  # parses everything
    assert table.get("gpt-4o") == before and before is not None


def test_a_damaged_bundled_table_is_reported(tmp_path: Path) -> None:
    good = BUNDLED_PRICES.read_bytes()
    header_gone = tmp_path / "no-header.json"
    header_gone.write_bytes(good.partition(b"\n")[2])
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(good[: len(good) // 2])
    for path in (header_gone, truncated):
        with pytest.raises(StateError, match="reinstall budgetctl"):
            load_bundled_table(path)
    bad_row = tmp_path / "bad-row.json"
    bad_row.write_bytes(good.replace(b'\n"gpt-4o":[', b'\n"gpt-4o":[{', 1))
    table = load_bundled_table(bad_row)
    assert isinstance(table, BundledTable)
    with pytest.raises(StateError, match="gpt-4o"):
        table.get("gpt-4o")


def test_bundled_table_keeps_rates_as_decimal_text() -> None:
    document = json.loads(BUNDLED_PRICES.read_bytes())
    assert document["format"] == 2  # 2: an alias's row ends with the name of its model
    for name, row in document["models"].items():
        assert len(row) in (8, 9), name
        assert all(rate is None or isinstance(rate, str) for rate in row[:4]), name
        assert row[0] is not None and row[1] is not None, name


def test_bundled_table_skips_what_has_no_per_token_price() -> None:
    table = bundled_table()
    assert "sample_spec" not in table
    assert "gpt-image-1" not in table  # image model with an input rate only
    assert "azure/standard/1024-x-1024/dall-e-3" not in table  # priced per image
    mistral = table["mistral/mistral-embed"]  # embedding with an input rate only: output 0
    assert (mistral.input_per_token, mistral.output_per_token) == (Decimal("1E-7"), Decimal(0))
    assert "claude-3-5-sonnet-20240620" in table  # only the older map lists it


def test_package_data_is_flat_and_licensed() -> None:
    """pyproject ships ``costing/data/*``: files only, with their licences and provenance."""
    names = {path.name for path in DATA_DIR.iterdir()}
    assert all((DATA_DIR / name).is_file() for name in names)
    assert {"prices.json", "PROVENANCE.md", "LICENSE-litellm.txt", "LICENSE-tiktoken.txt"} <= names
    provenance = (DATA_DIR / "PROVENANCE.md").read_text()
    assert "8943af58bf9f979c6a4bef815687117ffa341e462a41faed9be17b5c33d3dcc2" in provenance


# --- lookups -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "found", "provider"),
    [
        ("gpt-4o", "gpt-4o", "openai"),
        ("openai/gpt-4o", "gpt-4o", "openai"),
        ("my-proxy/openai/gpt-4o", "gpt-4o", "openai"),
        ("azure/gpt-4o", "azure/gpt-4o", "azure"),  # the exact name wins over the stripped one
        ("anthropic/claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620", "anthropic"),
    ],
)
def test_lookup_exact_then_without_provider_prefix(asked: str, found: str, provider: str) -> None:
    price = load_costing().price(asked)
    assert (price.model, price.provider) == (found, provider)


def test_unknown_model_names_the_closest() -> None:
    with pytest.raises(UnknownModelError) as caught:
        load_costing().price("gpt-4o-mnii")
    error = caught.value
    assert error.exit_code == 4
    assert error.model == "gpt-4o-mnii"
    assert error.suggestions[0] == "gpt-4o-mini"
    assert "closest known: gpt-4o-mini" in str(error)


def test_unknown_model_suggestions_ignore_the_prefix() -> None:
    with pytest.raises(UnknownModelError) as caught:
        load_costing().price("openai/gpt4o")
    assert "gpt-4o" in caught.value.suggestions


def test_unknown_model_with_nothing_close() -> None:
    with pytest.raises(UnknownModelError) as caught:
        load_costing().price("zzzz")
    assert caught.value.suggestions == []
    assert "--prices FILE" in str(caught.value)


# --- overrides -----------------------------------------------------------------------------------

OVERRIDE = """{
  "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
  "gpt-4o": {"input_cost_per_token": 0.1000000000000000055511151231257827,
             "output_cost_per_token": 3e-6, "litellm_provider": "openai", "mode": "chat"},
  "acme/private-llm": {"input_cost_per_token": 1, "output_cost_per_token": "2.5E-7",
                       "cache_read_input_token_cost": 0},
  "dall-e-4": {"output_cost_per_image": 0.04}
}"""


def test_price_file_wins_over_the_bundle_and_is_exact(tmp_path: Path) -> None:
    path = write_map(tmp_path / "prices.json", OVERRIDE)
    costing = load_costing(prices_file=path)
    gpt4o = costing.price("openai/gpt-4o")
    assert gpt4o.input_per_token == Decimal("0.1000000000000000055511151231257827")
    assert gpt4o.output_per_token == Decimal("3e-6")
    assert gpt4o.source == "prices-file"
    private = costing.price("acme/private-llm")
    assert rates(private) == (Decimal(1), Decimal("2.5E-7"), Decimal(0), None)
    assert costing.price("gpt-4").source == "bundled"  # the rest still comes from the bundle


def test_read_price_file_skips_entries_without_token_prices(tmp_path: Path) -> None:
    prices = read_price_file(write_map(tmp_path / "p.json", OVERRIDE))
    assert set(prices) == {"gpt-4o", "acme/private-llm"}


def test_prices_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETCTL_PRICES", str(write_map(tmp_path / "p.json", OVERRIDE)))
    assert load_costing().price("acme/private-llm").source == "prices-file"
    monkeypatch.setenv("BUDGETCTL_PRICES", "")
    with pytest.raises(UnknownModelError):
        load_costing().price("acme/private-llm")


def test_project_prices_win_over_everything(tmp_path: Path) -> None:
    path = write_map(tmp_path / "p.json", OVERRIDE)
    project = {
        "gpt-4o": Price("gpt-4o", Decimal("0.5"), Decimal("0.25")),
        "in-house": Price("whatever", Decimal("0.000001"), Decimal("0.000002")),
    }
    costing = load_costing(prices_file=path, project_prices=project)
    gpt4o = costing.price("openai/gpt-4o")
    assert (gpt4o.input_per_token, gpt4o.source) == (Decimal("0.5"), "project")
    in_house = costing.price("in-house")
    assert (in_house.model, in_house.source) == ("in-house", "project")
    assert costing.price("acme/private-llm").source == "prices-file"


def test_a_changed_price_file_is_read_again(tmp_path: Path) -> None:
    path = write_map(
        tmp_path / "p.json", {"m": {"input_cost_per_token": 1, "output_cost_per_token": 2}}
    )
    assert load_costing(prices_file=path).price("m").input_per_token == 1
    write_map(path, {"m": {"input_cost_per_token": 30, "output_cost_per_token": 2}})
    assert load_costing(prices_file=path).price("m").input_per_token == 30


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"gpt-4o": {"input_cost_per_token": 2.5e-06', "is not valid JSON"),
        ("[1, 2]", "holds a JSON list; expected an object"),
        ("{}", "has no model with both input_cost_per_token and output_cost_per_token"),
        ('{"m": 3}', "model 'm': expected an object of prices, got int"),
        ('{"m": {"input_cost_per_token": -1, "output_cost_per_token": 1}}', "must not be negative"),
        (
            '{"m": {"input_cost_per_token": "cheap", "output_cost_per_token": 1}}',
            "must be a number",
        ),
        ('{"m": {"input_cost_per_token": true, "output_cost_per_token": 1}}', "exact decimal"),
        ('{"m": {"input_cost_per_token": NaN, "output_cost_per_token": 1}}', "NaN is not a price"),
        (
            '{"m": {"input_cost_per_token": 1, "output_cost_per_token": 1, '
            '"cache_read_input_token_cost": [1]}}',
            "cache_read_input_token_cost must be a number",
        ),
    ],
)
def test_bad_price_file_is_a_usage_error_naming_the_file(
    tmp_path: Path, content: str | None, match: str
) -> None:
    path = tmp_path / "my-prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=match) as caught:
        read_price_file(path)
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 2


HOSTILE_RATES = [
    ("1e+999999999", "too large"),
    ("1E+16", "too large"),
    ("1e-999999999", "more than 40 decimal places"),
    ("0." + "0" * 40 + "1", "more than 40 decimal places"),
    ('"' + "9" * 100_000 + '"', "too large"),
    ('"1e+999999999"', "too large"),
]


@pytest.mark.parametrize(("rate", "match"), HOSTILE_RATES, ids=lambda v: v[:20])
def test_a_hostile_rate_is_a_quick_short_error(tmp_path: Path, rate: str, match: str) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(f'{{"m": {{"input_cost_per_token": {rate}, "output_cost_per_token": 1}}}}')
    started = time.monotonic()
    with pytest.raises(UsageError, match=match) as caught:
        read_price_file(path)
    assert time.monotonic() - started < 1
    assert str(path) in str(caught.value) and len(str(caught.value)) < 300


def test_the_largest_rates_still_cost_exactly(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    write_map(path, {"m": {"input_cost_per_token": "1e15", "output_cost_per_token": "1e-40"}})
    price = load_costing(prices_file=path).price("m")
    usage = Usage(model="m", prompt_tokens=10**9, completion_tokens=10**9)
    assert cost_of(price, usage) == Decimal("1" + "0" * 24 + "." + "0" * 30 + "1")


def test_a_huge_or_deep_price_file_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"m": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UsageError, match="nested too deeply"):
        read_price_file(deep)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(MAX_PRICE_FILE + 1)  # sparse: no disk used
    with pytest.raises(UsageError, match="larger than 32 MiB"):
        read_price_file(huge)
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"x" * 10**6: {"input_cost_per_token": -1}}))
    with pytest.raises(UsageError, match="must not be negative") as caught:
        read_price_file(named)
    assert len(str(caught.value)) < 300


def test_price_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        read_price_file(tmp_path)


def test_bad_price_file_surfaces_on_first_price_not_at_construction(tmp_path: Path) -> None:
    costing = load_costing(prices_file=tmp_path / "missing.json")
    with pytest.raises(UsageError, match=r"missing\.json does not exist"):
        costing.price("gpt-4o")


# --- listing -------------------------------------------------------------------------------------


def test_list_prices_filters_by_substring_and_sorts() -> None:
    listed = list_prices("GPT-4O-MINI")
    names = [price.model for price in listed]
    assert "gpt-4o-mini" in names and names == sorted(names)
    assert all("gpt-4o-mini" in name.lower() for name in names)


def test_list_prices_includes_overrides(tmp_path: Path) -> None:
    path = write_map(tmp_path / "p.json", OVERRIDE)
    project = {"in-house": Price("in-house", Decimal(1), Decimal(2), source="project")}
    listed = {p.model: p for p in list_prices(None, prices_file=path, project_prices=project)}
    assert len(listed) == len(bundled_table()) + 2  # acme/private-llm, in-house; gpt-4o replaced
    assert listed["gpt-4o"].source == "prices-file"
    assert listed["in-house"].source == "project"
    assert load_costing(prices_file=path).list_prices("private")[0].model == "acme/private-llm"


# --- cost ----------------------------------------------------------------------------------------


def test_cost_with_cached_tokens_uses_the_cache_read_rate() -> None:
    price = load_costing().price("gpt-4o")
    usage = Usage("gpt-4o", prompt_tokens=1117, completion_tokens=46, cached_tokens=1024)
    expected = 93 * Decimal("0.0000025") + 1024 * Decimal("0.00000125") + 46 * Decimal("0.00001")
    assert cost_of(price, usage) == expected == Decimal("0.0019725")


def test_cost_with_cache_creation_uses_the_creation_rate() -> None:
    costing = load_costing()
    usage = Usage(
        "claude-3-5-sonnet-20240620",
        prompt_tokens=21 + 1024 + 188086,
        completion_tokens=393,
        cached_tokens=1024,
        cache_creation_tokens=188086,
    )
    expected = (
        21 * Decimal("0.000003")
        + 1024 * Decimal("3E-7")
        + 188086 * Decimal("0.00000375")
        + 393 * Decimal("0.000015")
    )
    assert costing.cost(usage) == expected == Decimal("0.7115877")


def test_without_cache_rates_cached_tokens_cost_the_input_rate() -> None:
    price = load_costing().price("gpt-4")
    cached = Usage("gpt-4", prompt_tokens=100, completion_tokens=10, cached_tokens=60)
    plain = Usage("gpt-4", prompt_tokens=100, completion_tokens=10)
    assert cost_of(price, cached) == cost_of(price, plain) == Decimal("0.0036")


def test_point_one_prices_sum_exactly() -> None:
    price = Price("tenth", Decimal("0.1"), Decimal("0.2"))
    assert cost_of(price, Usage("tenth", prompt_tokens=3, completion_tokens=0)) == Decimal("0.3")
    total = sum(
        (cost_of(price, Usage("tenth", prompt_tokens=1, completion_tokens=1)) for _ in range(10)),
        Decimal(0),
    )
    assert total == Decimal("3") and str(total) == "3.0"


def test_cost_is_exact_beyond_the_default_decimal_precision() -> None:
    price = Price("fine", Decimal("0.1000000000000000055511151231257827"), Decimal(0))
    usage = Usage("fine", prompt_tokens=999_999_999, completion_tokens=0)
    cost = cost_of(price, usage)
    assert Fraction(cost) == 999_999_999 * Fraction("0.1000000000000000055511151231257827")
    assert cost == Decimal("99999999.9000000055511151175746675768742173")  # 42 digits, not 28


@pytest.mark.parametrize(
    ("usage", "match"),
    [
        (
            Usage("m", prompt_tokens=10, completion_tokens=1, cached_tokens=11),
            "exceed prompt_tokens",
        ),
        (
            Usage(
                "m", prompt_tokens=10, completion_tokens=1, cached_tokens=6, cache_creation_tokens=5
            ),
            "exceed prompt_tokens",
        ),
        (Usage("m", prompt_tokens=-1, completion_tokens=1), "prompt_tokens must be a whole number"),
        (Usage("m", prompt_tokens=1, completion_tokens=True), "completion_tokens must be a whole"),
    ],
)
def test_cost_of_refuses_inconsistent_usage(usage: Usage, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        cost_of(Price("m", Decimal(1), Decimal(1)), usage)


decimal_rates = st.decimals(min_value=0, max_value=1, places=30, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    rates=st.tuples(
        decimal_rates, decimal_rates, st.none() | decimal_rates, st.none() | decimal_rates
    ),
    counts=st.tuples(*[st.integers(0, 10**9)] * 4),
)
def test_cost_of_is_exact_arithmetic(
    rates: tuple[Decimal, Decimal, Decimal | None, Decimal | None], counts: tuple[int, ...]
) -> None:
    uncached, cached, creation, completion = counts
    price = Price("m", rates[0], rates[1], rates[2], rates[3])
    usage = Usage("m", uncached + cached + creation, completion, cached, creation)
    read = rates[0] if rates[2] is None else rates[2]
    write = rates[0] if rates[3] is None else rates[3]
    exact = (
        uncached * Fraction(rates[0])
        + cached * Fraction(read)
        + creation * Fraction(write)
        + completion * Fraction(rates[1])
    )
    assert Fraction(cost_of(price, usage)) == exact


def test_costing_cost_prices_the_usage_model(tmp_path: Path) -> None:
    costing = load_costing(project_prices={"x": Price("x", Decimal("0.01"), Decimal("0.02"))})
    assert costing.cost(Usage("x", prompt_tokens=2, completion_tokens=3)) == Decimal("0.08")


def test_no_float_in_any_bundled_price() -> None:
    for price in list_prices():
        for rate in rates(price):
            assert rate is None or isinstance(rate, Decimal)


def test_prices_file_path_may_be_a_str(tmp_path: Path) -> None:
    path = write_map(tmp_path / "p.json", OVERRIDE)
    assert read_price_file(os.fspath(path)) == read_price_file(path)
