"""Fuzzing the parsers of outside input: only budgetctl's documented usage errors come out.

Amounts, durations, time zones and times (what a person types), and completion responses (what a
provider sends, here arbitrary JSON and real fixtures with random parts replaced): each either
parses or raises a UsageError subclass with a message, never another exception.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _support import Counts
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl.core import money, periods
from budgetctl.costing import load_costing, usage_from_response
from budgetctl.errors import UsageError

pytestmark = pytest.mark.reliability

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "responses"
EXAMPLES = settings(max_examples=400, deadline=None)


class Tally:
    """Inputs tried and rejected (with a UsageError) by one fuzz test."""

    def __init__(self) -> None:
        self.tried = self.rejected = 0

    def attempt(self, parse: Any, *args: Any) -> None:
        """Parse; a UsageError (with a message) is the only acceptable failure."""
        self.tried += 1
        try:
            parse(*args)
        except UsageError as exc:
            self.rejected += 1
            assert str(exc).strip(), f"{parse.__name__}{args!r}: an empty message"

    def report(self, counts: Counts) -> None:
        line = counts(operations=self.tried, rejected_as_usage_errors=self.rejected, crashes=0)
        assert self.tried > 0, line


near_amounts = st.from_regex(
    r"\A[ $+-]?[0-9_]{0,30}(\.[0-9]{0,50})?([eE][+-]?[0-9]{1,12})?\s?\Z", fullmatch=True
)
amount_inputs = st.one_of(
    st.text(),
    near_amounts,
    st.sampled_from(["nan", "-inf", "sNaN", "Infinity", "1e999999999"]),
    st.floats(),
    st.integers(),
    st.decimals(),
    st.booleans(),
    st.none(),
    st.binary(),
)


def test_parse_amount(counts: Counts) -> None:
    tally = Tally()

    @EXAMPLES
    @given(value=amount_inputs)
    def fuzz(value: Any) -> None:
        tally.attempt(money.parse_amount, value, "budget")

    fuzz()
    tally.report(counts)


def test_parse_duration(counts: Counts) -> None:
    tally = Tally()

    @EXAMPLES
    @given(text=st.one_of(st.text(), st.from_regex(r"\A\s*[0-9]{0,9}(h|d|w|mo|y|m|s)?\s*\Z")))
    def fuzz(text: str) -> None:
        tally.attempt(periods.parse_duration, text)

    fuzz()
    tally.report(counts)


zone_like = st.one_of(
    st.text(),
    st.from_regex(r"\A[A-Za-z_./+-]{0,40}\Z", fullmatch=True),
    st.sampled_from(["Europe/Paris", "../etc/passwd", "UTC\x00", "America", "tzdata", "/UTC"]),
)


def test_parse_timezone(counts: Counts) -> None:
    tally = Tally()

    @EXAMPLES
    @given(name=zone_like)
    def fuzz(name: str) -> None:
        tally.attempt(periods.parse_timezone, name)

    fuzz()
    tally.report(counts)


time_like = st.one_of(
    st.text(),
    st.datetimes().map(lambda d: d.isoformat()),
    st.from_regex(r"\A@-?[0-9]{0,25}(\.[0-9]{0,5})?([eE][0-9]{1,4})?\Z", fullmatch=True),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:]{0,12})?([+-][0-9:]{1,8}|Z)?\Z"),
)


def test_parse_datetime(counts: Counts) -> None:
    tally = Tally()

    @EXAMPLES
    @given(text=time_like, zone=st.sampled_from(["UTC", "Europe/Paris", "Pacific/Kiritimati"]))
    def fuzz(text: str, zone: str) -> None:
        tally.attempt(periods.parse_datetime, text, periods.parse_timezone(zone))

    fuzz()
    tally.report(counts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
SAMPLES = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


def mutate(doc: Any, draw: st.DrawFn) -> Any:
    """A copy of ``doc`` with one random part (at any depth) replaced by random JSON."""
    doc = copy.deepcopy(doc)
    node = doc
    while isinstance(node, (dict, list)) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()) or not isinstance(node[key], (dict, list)):
            node[key] = draw(json_values)
            break
        node = node[key]
    return doc


@st.composite
def responses(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(json_values)
    return mutate(draw(st.sampled_from(SAMPLES)), draw)


COSTING = load_costing(None, {})


def test_usage_from_response(counts: Counts) -> None:
    tally = Tally()

    @settings(max_examples=600, deadline=None)
    @given(response=responses())
    def fuzz(response: Any) -> None:
        tally.attempt(usage_from_response, response)
        tally.attempt(COSTING.usage_from_response, response)

    fuzz()
    tally.report(counts)
