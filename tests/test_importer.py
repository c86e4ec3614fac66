"""The LiteLLM importer as a library: floats at a double's precision, validation before writing."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import Clock, fingerprint
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl import Ledger
from budgetctl.errors import UsageError
from budgetctl.importer import budget_from_litellm, import_litellm, litellm_amount


@settings(max_examples=500, deadline=None)
@given(
    digits=st.integers(min_value=1, max_value=10**15 - 1),
    exponent=st.integers(min_value=-24, max_value=0),
)
def test_a_decimal_of_15_digits_survives_litellms_float(digits: int, exponent: int) -> None:
    """What LiteLLM meant with up to 15 significant digits comes back exactly from its float."""
    meant = Decimal(digits).scaleb(exponent)
    written = json.loads(json.dumps({"c": float(meant)}), parse_float=Decimal)["c"]
    assert litellm_amount(written, "c") == meant
    assert litellm_amount(float(meant), "c") == meant


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1 + 0.2, "0.3"),
        (3 * 0.1, "0.3"),
        (sum([0.1] * 10), "1"),
        (0.7 + 0.1, "0.8"),
        (93 * 2.5e-06 + 1024 * 1.25e-06 + 46 * 1e-05, "0.0019725"),
        (1e-7, "1E-7"),
        (-0.0, "0"),
        (10, "10"),  # ints are exact
        (10**15 - 1, "999999999999999"),
        ("0.30000000000000004", "0.30000000000000004"),  # text is what the writer meant
    ],
)
def test_litellm_amounts(value: object, expected: str) -> None:
    assert litellm_amount(value, "amount") == Decimal(expected)


def test_hosted_records_are_read_as_litellm_wrote_them(clock: Clock) -> None:
    """The hosted store must return what LiteLLM would: amounts as their exact JSON text, and
    times from another machine's clock, which may run ahead of ours."""
    later = (clock.now + timedelta(seconds=5)).timestamp()
    raw = json.loads(
        json.dumps({"total_budget": 1.0, "current_cost": 0.1 + 0.2, "duration": 1,
                    "created_at": later, "last_updated_at": later}),
        parse_float=Decimal,
    )  # fmt: skip
    budget = budget_from_litellm("alice", raw, clock.now)
    assert budget.created_at > clock.now
    assert budget.current_cost == Decimal("0.30000000000000004")
    imported = budget_from_litellm("alice", raw, clock.now, amount=litellm_amount)
    assert imported.current_cost == Decimal("0.3")
    with pytest.raises(UsageError, match="is after the current time"):
        budget_from_litellm("alice", raw, clock.now, not_after=clock.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_nothing_is_written_when_one_record_is_bad(data_dir: Path, clock: Clock) -> None:
    ledger = Ledger("team", clock=clock)
    ledger.create("carol", "5", duration="daily")
    before = fingerprint(data_dir)
    now = clock.now.timestamp()
    users = {
        "alice": {"total_budget": 1.0, "duration": 1, "created_at": now, "last_updated_at": now},
        "bob": {"total_budget": 1.0, "duration": 1e6, "created_at": now},
    }
    stream = io.BytesIO(json.dumps(users).encode())
    with pytest.raises(UsageError, match=r"^stdin: user 'bob': duration 1000000 days is longer"):
        import_litellm(ledger, stream)
    assert fingerprint(data_dir) == before


def test_a_dry_run_with_replace_lists_what_it_would_overwrite(data_dir: Path, clock: Clock) -> None:
    ledger = Ledger("team", clock=clock)
    ledger.create("bob", "5", duration="daily")
    path = data_dir.parent / "user_cost.json"
    path.write_text(json.dumps({"alice": {"total_budget": 1.0}, "bob": {"total_budget": 2.5}}))
    before = fingerprint(data_dir)
    result = import_litellm(ledger, path, replace=True, dry_run=True)
    assert result == (["alice", "bob"], [], ["bob"])
    assert fingerprint(data_dir) == before
    assert import_litellm(ledger, path) == (["alice"], ["bob"], [])
    assert import_litellm(ledger, path, replace=True).replaced == ["alice", "bob"]


@pytest.mark.parametrize(
    ("field", "match"),
    [
        ({"created_at": 10**5000}, r"created_at \(40\+ digits\) is out of range"),
        ({"duration": 10**5000}, "duration 1.000000E[+]5000 days is longer"),
    ],
)
def test_huge_integers_from_a_caller_are_refused(
    clock: Clock, field: dict[str, object], match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        budget_from_litellm("alice", {"total_budget": 1, **field}, clock.now)
