"""budgetctl.core.record: a Record behaves as the typing.NamedTuple it stands for.

Each check runs on a Record class and on the same class written with ``typing.NamedTuple``, and the
two must agree (what the package's value classes rely on: construction by position and keyword,
defaults, the named-tuple methods, repr, equality, hashing, unpacking, pickling, copying).
"""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from budgetctl.core import events, rules
from budgetctl.core.record import Record


class Spend(Record):
    """A record to test."""

    user: str
    cost: Decimal
    model: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.user}:{self.cost}"

    @classmethod
    def free(cls, user: str) -> Spend:
        return cls(user, Decimal(0))


class SpendNT(NamedTuple):
    """A record to test."""

    user: str
    cost: Decimal
    model: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.user}:{self.cost}"

    @classmethod
    def free(cls, user: str) -> SpendNT:
        return cls(user, Decimal(0))


KINDS = [Spend, SpendNT]


def outcome(call: Any) -> Any:
    """What a call returns, or its exception's type and message (with the class name made
    neutral, so that both kinds compare)."""
    try:
        result = call()
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error).replace("SpendNT", "Spend")
    if isinstance(result, tuple):
        return type(result).__name__.replace("SpendNT", "Spend"), tuple(result)
    return result


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k("ann", Decimal("1.5")),
        lambda k: k(user="ann", cost=Decimal(2), tags=("a",)),
        lambda k: k("ann", Decimal(1), "gpt-4o", ("x", "y")),
        lambda k: k("ann"),
        lambda k: k("ann", Decimal(1), "m", (), "extra"),
        lambda k: k("ann", Decimal(1), colour="red"),
        lambda k: k("ann", Decimal(1), user="bob"),
        lambda k: k("ann", Decimal(1))._replace(model="m", cost=Decimal(3)),
        lambda k: k("ann", Decimal(1))._replace(colour="red"),
        lambda k: k._make(["ann", Decimal(1), None, ()]),
        lambda k: k._make(["ann"]),
        lambda k: k("ann", Decimal(1))._asdict(),
        lambda k: repr(k("ann", Decimal("1.50"), tags=("t",))).replace("SpendNT", "Spend"),
        lambda k: k._fields,
        lambda k: k._field_defaults,
        lambda k: k.__match_args__,
        lambda k: k.__doc__,
        lambda k: k.free("ann"),
        lambda k: k("ann", Decimal(1)).label,
        lambda k: k("ann", Decimal(1)) == ("ann", Decimal(1), None, ()),
        lambda k: hash(k("ann", Decimal(1))) == hash(("ann", Decimal(1), None, ())),
        lambda k: k("ann", Decimal(1)) < k("bob", Decimal(0)),
        lambda k: k("ann", Decimal(1))[1:3],
        lambda k: len(k("ann", Decimal(1))),
        lambda k: k("ann", Decimal(1)).count,  # tuple's own methods stay
        lambda k: isinstance(k("ann", Decimal(1)), tuple),
        lambda k: hasattr(k("ann", Decimal(1)), "__dict__"),
    ],
)
def test_a_record_behaves_as_its_named_tuple(call: Any) -> None:
    record, named_tuple = (outcome(lambda kind=kind: call(kind)) for kind in KINDS)
    if callable(record) and callable(named_tuple):  # bound methods: compare what they do
        record, named_tuple = record("ann"), named_tuple("ann")
    assert record == named_tuple


def test_unpacking_matching_pickling_and_copying() -> None:
    spend = Spend("ann", Decimal("0.25"), tags=("a",))
    user, cost, *rest = spend
    assert (user, cost, rest) == ("ann", Decimal("0.25"), [None, ("a",)])
    match spend:
        case Spend(user, cost, model=None):
            assert (user, cost) == ("ann", Decimal("0.25"))
        case _:
            pytest.fail("no match")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(spend, protocol))
        assert again == spend and type(again) is Spend
    assert copy.copy(spend) == spend and copy.deepcopy(spend) == spend
    assert type(copy.deepcopy(spend)) is Spend


def test_the_packages_values_are_records() -> None:
    now = datetime.now(timezone.utc)
    budget = rules.Budget("ann", Decimal(10), None, "UTC", None, now, now, None)
    assert budget._fields[:3] == ("user", "total_budget", "duration")
    assert budget.current_cost == Decimal(0) and budget.recent_periods == ()
    assert budget._replace(current_cost=Decimal(1)).current_cost == Decimal(1)
    assert "Budget(user='ann', total_budget=Decimal('10')" in repr(budget)
    charge = events.Charge(None, "ann", Decimal(1))
    assert charge == (None, "ann", Decimal(1), None, 0, 0, 0, None, False)
    assert events.Commit(*charge, hold_id="h", held=None)[:9] == charge


def test_what_a_record_refuses() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Record):
            a: int = 0
            b: int

    with pytest.raises(AttributeError, match="cannot start with '_'"):

        class Hidden(Record):
            _a: int

    with pytest.raises(TypeError, match="only base is Record"):

        class Two(Record, dict):  # type: ignore[misc]
            a: int

    with pytest.raises(TypeError, match="base class"):
        Record("Name", [("a", int)])  # type: ignore[call-arg]


def test_many_fields() -> None:
    """More fields than the templates of ``__new__``: compiled, as namedtuple does."""
    namespace: dict[str, Any] = {"__annotations__": {f"f{i}": "int" for i in range(20)}}
    namespace["f19"] = 19
    base = Record.__mro_entries__((Record,))[0]  # type: ignore[attr-defined]
    Wide = type(base)("Wide", (base,), namespace)  # a class statement of 20 annotated fields
    row = Wide(*range(19))
    assert row == tuple(range(20)) and row.f19 == 19 and row._replace(f0=5)[0] == 5
    assert Wide(**{f"f{i}": i for i in range(20)}) == row
