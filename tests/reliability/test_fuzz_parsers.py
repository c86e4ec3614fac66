"""Fuzzing the parsers of outside input: only budgetctl's documented usage errors come out.

Amounts, durations, time zones and times (what a person types), and completion responses (what a
provider sends, here arbitrary JSON and real fixtures with random parts replaced): each either
parses or raises a UsageError subclass with a message, never another exception. Likewise price
files with extreme numbers, state records with extreme amounts, times and durations (a
RecordError, which the store reports as a corrupt state), JSON nested deep or with huge integers,
BUDGETCTL_LOCK_TIMEOUT values and user names that are not UTF-8; what is accepted must then work
(exact costs at the largest counts, periods computable around any accepted time).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _support import Counts
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl.core import jsontext, money, periods, rules
from budgetctl.core.rules import MAX_TOKENS
from budgetctl.costing import Usage, cost_of, load_costing, read_price_file, usage_from_response
from budgetctl.errors import UsageError
from budgetctl.store import codec, lock

pytestmark = pytest.mark.reliability

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "responses"
EXAMPLES = settings(max_examples=400, deadline=None)


class Tally:
    """Inputs tried and rejected (with a UsageError, or ``expected``) by one fuzz test."""

    def __init__(self, expected: tuple[type[Exception], ...] = (UsageError,)) -> None:
        self.tried = self.rejected = 0
        self.expected = expected

    def attempt(self, parse: Any, *args: Any) -> Any:
        """Parse; an expected error (with a short message) is the only acceptable failure.
        Returns what ``parse`` returned, or None when it was rejected."""
        self.tried += 1
        try:
            return parse(*args)
        except self.expected as exc:
            self.rejected += 1
            assert str(exc).strip(), f"{parse.__name__}{args!r}: an empty message"
            assert len(str(exc)) < 1000, f"{parse.__name__}: a message of {len(str(exc))} chars"
            return None

    def report(self, counts: Counts) -> None:
        rejected = "rejected_as_usage_errors" if self.expected == (UsageError,) else "rejected"
        line = counts(operations=self.tried, **{rejected: self.rejected}, crashes=0)
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


# --- what issue 8 hardened: numbers, times, names and JSON from files ---------------------------

extreme_numbers = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,40}(\.[0-9]{1,60})?([eE][+-]?[0-9]{1,10})?\Z", fullmatch=True),
    st.sampled_from(["1e+999999999", "1e-999999999", "9" * 5000, "0." + "0" * 45 + "1", "-0"]),
)
rate_values = st.one_of(
    extreme_numbers,  # written as JSON numbers
    extreme_numbers.map(json.dumps),  # written as JSON strings
    st.sampled_from(["NaN", "Infinity", "-Infinity", "true", "null", "[]", "{}", '"sNaN"']),
)
RATE_FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
]
LARGEST = Usage(model="m", prompt_tokens=MAX_TOKENS, completion_tokens=MAX_TOKENS)


def test_read_price_file(counts: Counts, tmp_path_factory: pytest.TempPathFactory) -> None:
    tally = Tally()
    path = tmp_path_factory.mktemp("prices") / "prices.json"

    @EXAMPLES
    @given(rates=st.lists(st.tuples(st.sampled_from(RATE_FIELDS), rate_values), max_size=4))
    def fuzz(rates: list[tuple[str, str]]) -> None:
        fields = ", ".join(f'"{field}": {value}' for field, value in rates)
        path.write_text(
            f'{{"m": {{{fields}}}, "ok": {{"input_cost_per_token": 1, '
            '"output_cost_per_token": 1}}'
        )
        started = time.monotonic()
        table = tally.attempt(read_price_file, path)
        assert time.monotonic() - started < 1
        if table is not None and "m" in table:
            cost = cost_of(table["m"], LARGEST)  # never Inexact, Overflow or a huge expansion
            assert cost.is_finite() and cost >= 0

    fuzz()
    tally.report(counts)


state_times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda moment: moment.replace(microsecond=0).isoformat() + "Z"
    ),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z"]),
)
records = st.fixed_dictionaries(
    {
        "total_budget": extreme_numbers,
        "current_cost": extreme_numbers,
        "created_at": state_times,
        "period_start": state_times,
    },
    optional={
        "next_reset_at": state_times,
        "start": state_times,
        "duration": st.sampled_from(["daily", "monthly", "yearly", "100y", "1e400d", "36600d"]),
        "timezone": st.sampled_from(["UTC", "Pacific/Kiritimati", "America/Santiago", "Nowhere"]),
        "model_cost": st.dictionaries(st.text(max_size=5), extreme_numbers, max_size=2),
        "alert_at": extreme_numbers,
    },
)


def test_decode_state_records(counts: Counts) -> None:
    """A record of a state file either decodes into a budget every rule can work on, or is a
    RecordError (which the store reports as a corrupt state naming the file)."""
    tally = Tally(expected=(codec.RecordError,))
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)

    @settings(max_examples=600, deadline=None)
    @given(record=records)
    def fuzz(record: dict[str, Any]) -> None:
        budget = tally.attempt(codec.decode, "alice", record)
        if budget is not None:
            budget, _ = rules.roll_over(budget, now)
            rules.charge(budget, money.MAX_AMOUNT, "gpt-4o")
            codec.encode(budget)

    fuzz()
    tally.report(counts)


documents = st.one_of(
    st.text(max_size=50),
    st.integers(min_value=1, max_value=50_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=50_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),
    st.binary(max_size=50),
)


def test_json_from_outside(counts: Counts) -> None:
    tally = Tally(expected=(json.JSONDecodeError, UnicodeDecodeError))

    @EXAMPLES
    @given(document=documents)
    def fuzz(document: str | bytes) -> None:
        tally.attempt(jsontext.loads, document)

    fuzz()
    tally.report(counts)


def test_lock_timeout_values(counts: Counts, monkeypatch: pytest.MonkeyPatch) -> None:
    tally = Tally()

    @EXAMPLES
    @given(
        value=st.one_of(
            st.text(max_size=12),
            st.floats().map(repr),
            st.sampled_from(["abc", "-1", "nan", "inf", "-inf", "1e999", "0", "0.5", " 3 "]),
        )
    )
    def fuzz(value: str) -> None:
        if "\x00" in value:
            return  # an environment variable cannot hold NUL
        monkeypatch.setenv("BUDGETCTL_LOCK_TIMEOUT", value)
        seconds = tally.attempt(lock.lock_timeout)
        assert seconds is None or (math.isfinite(seconds) and seconds >= 0)

    fuzz()
    tally.report(counts)


def test_names(counts: Counts) -> None:
    """User names (argv decodes undecodable bytes to lone surrogates): valid, or a usage error;
    a valid one can always be written out as UTF-8."""
    tally = Tally()

    @EXAMPLES
    @given(
        name=st.one_of(
            st.text(max_size=20),
            st.binary(min_size=1, max_size=20).map(lambda raw: os.fsdecode(raw)),
            st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
        )
    )
    def fuzz(name: str) -> None:
        if tally.attempt(rules.check_user_name, name) is not None:
            name.encode("utf-8")

    fuzz()
    tally.report(counts)


def test_times_that_parse_have_computable_periods(counts: Counts) -> None:
    tally = Tally()
    durations = [periods.parse_duration(text) for text in ("daily", "monthly", "100y", "1200mo")]

    @EXAMPLES
    @given(text=time_like, zone=st.sampled_from(["UTC", "Pacific/Kiritimati", "Etc/GMT+12"]))
    def fuzz(text: str, zone: str) -> None:
        tz = periods.parse_timezone(zone)
        moment = tally.attempt(periods.parse_datetime, text, tz)
        if moment is not None:
            for duration in durations:
                assert duration is not None
                periods.period_containing(duration, moment, tz, moment)
                periods.period_containing(duration, periods.EARLIEST, tz, moment)
                periods.period_containing(duration, periods.LATEST, tz, moment)

    fuzz()
    tally.report(counts)
