"""Money: exact decimals in, exact decimals out, never a float in between."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl.core import events, money, rules
from budgetctl.core.money import MAX_AMOUNT, format_usd, parse_amount, to_text
from budgetctl.errors import InvalidAmountError, UsageError

# Amounts as a person or a price table writes them: 0 to 1e15 with up to 12 decimal places.
amounts = st.decimals(
    min_value=Decimal(0), max_value=MAX_AMOUNT, places=12, allow_nan=False, allow_infinity=False
)
tiny_or_huge = st.one_of(
    amounts,
    st.decimals(min_value=Decimal("1e-24"), max_value=Decimal("0.01"), places=24),
)


@pytest.mark.parametrize(
    "bad",
    [
        "-1",
        "-0.000001",
        Decimal("-3"),
        -5,
        -0.5,
        "nan",
        "NaN",
        "-nan",
        "sNaN",
        "inf",
        "-Infinity",
        float("nan"),
        float("inf"),
        Decimal("Infinity"),
        "abc",
        "",
        "   ",
        "1,5",
        "0x10",
        "1e15.5",
        "10 USD",
        True,
        False,
        None,
        [1],
        {"amount": 1},
        b"1",
        "1e16",
        "1000000000000000.01",
        10**16,
        1e300,
        "1e-41",  # finer than any price: sums could no longer stay exact
        "0.00000000000000000000000000000000000000015",
    ],
)
def test_parse_amount_rejects(bad: object) -> None:
    with pytest.raises(InvalidAmountError) as caught:
        parse_amount(bad, "budget")
    # a usage error (exit 2) whose message names what was being parsed
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert "budget" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10", Decimal(10)),
        (" 0.25 ", Decimal("0.25")),
        ("$1.50", Decimal("1.5")),
        ("1_000", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("0", Decimal(0)),
        ("-0", Decimal(0)),
        ("0E-7", Decimal(0)),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),  # a float through its shortest repr, not 0.1000000000000000055...
        (1e-07, Decimal("1e-7")),
        (Decimal("0.000123"), Decimal("0.000123")),
        ("1e15", MAX_AMOUNT),
        ("1e-40", Decimal("1e-40")),
        ("0.5" + "0" * 60, Decimal("0.5")),  # trailing zeros are not places
    ],
)
def test_parse_amount_accepts(given: object, expected: Decimal) -> None:
    parsed = parse_amount(given)
    assert parsed == expected
    assert isinstance(parsed, Decimal)
    assert not parsed.is_signed()  # -0 normalised


def test_zero_normalised_to_plain_zero() -> None:
    assert to_text(parse_amount("-0.000")) == "0"
    assert to_text(parse_amount("0E-7")) == "0"


def test_point_one_ten_times_is_exactly_one() -> None:
    budget = rules.new_budget("u", Decimal(1), _now())
    for _ in range(10):
        budget = rules.charge(budget, parse_amount("0.1"), "m")
    assert budget.current_cost == Decimal(1)
    assert to_text(budget.current_cost) == "1"
    assert not budget.over_budget and not rules.would_exceed(budget, Decimal(0))
    assert rules.would_exceed(budget, Decimal("1e-12"))


def test_large_balance_keeps_a_tiny_charge() -> None:
    # the default decimal context (28 digits) rounds this to 10000: money must not use it
    budget = rules.new_budget("u", Decimal(20000), _now(), current_cost=Decimal(10000))
    budget = rules.charge(budget, parse_amount("5.0000000000000004e-24"), "m")
    assert to_text(budget.current_cost) == "10000.0000000000000000000000050000000000000004"
    assert rules.would_exceed(
        rules.new_budget("u", Decimal(10000), _now(), current_cost=Decimal(10000)), Decimal("1e-30")
    )


def test_float_point_one_three_times_is_exactly_point_three() -> None:
    budget = rules.new_budget("u", Decimal(1), _now())
    for _ in range(3):
        budget = rules.charge(budget, parse_amount(0.1), None)
    assert to_text(budget.current_cost) == "0.3"


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


@settings(max_examples=150, deadline=None)
@given(st.lists(tiny_or_huge, min_size=1, max_size=60))
def test_charges_sum_exactly(values: list[Decimal]) -> None:
    """The ledger's running total is the exact rational sum, whatever the sizes mixed."""
    budget = rules.new_budget("u", Decimal(10), _now())
    texts = [to_text(v) for v in values]
    for text in texts:
        budget = rules.charge(budget, parse_amount(text), "m")
    exact = sum((Fraction(text) for text in texts), Fraction(0))
    assert Fraction(budget.current_cost) == exact
    assert Fraction(budget.model_cost["m"]) == exact
    assert budget.current_cost >= 0
    # the remaining budget is exact too, and never negative
    assert Fraction(budget.remaining) == max(Fraction(10) - exact, Fraction(0))
    # replay of the same charges agrees to the last digit
    history = [events.Create(None, "u", Decimal(10), None, Decimal(0))] + [
        events.Charge(None, "u", Decimal(text)) for text in texts
    ]
    assert Fraction(rules.replay(history)["u"]) == exact


@settings(max_examples=100, deadline=None)
@given(st.lists(tiny_or_huge, min_size=1, max_size=40), tiny_or_huge)
def test_would_exceed_is_exact(values: list[Decimal], total: Decimal) -> None:
    budget = rules.new_budget("u", total, _now())
    for value in values[:-1]:
        budget = rules.charge(budget, value, None)
    spent = sum((Fraction(v) for v in values[:-1]), Fraction(0))
    assert rules.would_exceed(budget, values[-1]) == (spent + Fraction(values[-1]) > total)


@settings(max_examples=300, deadline=None)
@given(tiny_or_huge)
def test_to_text_round_trips_without_exponent(value: Decimal) -> None:
    text = to_text(value)
    assert "e" not in text.lower()
    assert Decimal(text) == value
    assert parse_amount(text) == value
    assert money.from_text(text) == value
    # canonical: no trailing zeros after the point, no lone point
    if "." in text:
        assert not text.endswith(("0", "."))


@settings(max_examples=300, deadline=None)
@given(tiny_or_huge)
def test_format_usd_never_hides_a_cost(value: Decimal) -> None:
    shown = format_usd(value)
    assert shown.startswith("$")
    assert "e" not in shown.lower()
    if value != 0:
        assert shown != "$0.00"
        assert Decimal(shown[1:].replace(",", "")) > 0
    else:
        assert shown == "$0.00"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("12.5", "$12.50"),
        ("1234567.5", "$1,234,567.50"),
        ("0.0012", "$0.0012"),
        ("0.000123", "$0.00012"),
        ("0.0000005", "$0.0000005"),
        ("1.005", "$1.005"),
        ("0.01", "$0.01"),
    ],
)
def test_format_usd_examples(amount: str, shown: str) -> None:
    assert format_usd(Decimal(amount)) == shown


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0.6054475", "$0.605448"),  # was $0.605447: the seventh place was cut, not rounded
        ("24.3945525", "$24.394553"),
        ("1.9999999", "$2.00"),
        ("0.0000225", "$0.000023"),
        ("0.0099999", "$0.01"),
        ("0.000000000000123", "$0.0000000000001"),  # never rounded to zero
    ],
)
def test_format_usd_rounds_and_never_truncates(amount: str, shown: str) -> None:
    assert format_usd(Decimal(amount)) == shown


def _value(shown: str) -> Decimal:
    return Decimal(shown.lstrip("$").replace(",", ""))


@settings(max_examples=300, deadline=None)
@given(tiny_or_huge, tiny_or_huge)
def test_figures_side_by_side_add_up(a: Decimal, b: Decimal) -> None:
    total, spent = max(a, b), min(a, b)
    total_shown, spent_shown, left_shown = money.shown_figures(total, spent)
    assert _value(spent_shown) + _value(left_shown) == _value(total_shown)
    off = Decimal(0)
    for value, shown in ((total, total_shown), (spent, spent_shown)):
        places = -_value(shown).as_tuple().exponent  # type: ignore[operator]
        half_ulp = Decimal(5).scaleb(-places - 1)
        assert abs(_value(shown) - value) <= half_ulp  # rounded, not cut
        off += half_ulp
    assert abs(_value(left_shown) - (total - spent)) <= off


def test_figures_of_an_overspent_budget_leave_nothing() -> None:
    assert money.shown_figures(Decimal(10), Decimal("10.5")) == ("$10.00", "$10.50", "$0.00")


def test_percent() -> None:
    assert money.percent(Decimal(1), Decimal(4)) == 25
    assert money.percent(Decimal(1), Decimal(0)) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,000", "1000"),
        ("$1,234,567.50", "1234567.50"),
        ("1,000.", "1000"),
        ("12,345.678", "12345.678"),
    ],
)
def test_amounts_accept_thousands_as_the_tool_prints_them(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize(
    "text", ["1,5", "1,00", "10,00,000", ",100", "1,000,00", "1.000,50", "1,,000"]
)
def test_a_comma_that_groups_no_thousands_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmountError, match="commas may only group thousands"):
        parse_amount(text)


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_what_the_tool_prints_reads_back(value: Decimal) -> None:
    shown = format_usd(value)
    assert parse_amount(shown) == Decimal(shown.lstrip("$").replace(",", ""))
