"""Hostile price files, given with ``--prices``/``BUDGETCTL_PRICES`` or planted as a project's own
prices: each one is a quick, one-line error naming the file (exit 2 for a file the user gave,
exit 1 for a file in the data dir), from the installed command, and nothing changes.

The attacks: numbers with huge or tiny exponents (``1e+999999999`` took 14 s and printed 1 GB),
100,000-digit numbers and names, nesting 100,000 deep, a file over the size limit, bytes that
are not UTF-8, lone surrogates, and values of the wrong type.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _support import Counts, cli
from helpers import fingerprint

from budgetctl import Ledger
from budgetctl.costing.litellm_map import MAX_PRICE_FILE

pytestmark = pytest.mark.reliability


def _entry(rate: str) -> bytes:
    return f'{{"m": {{"input_cost_per_token": {rate}, "output_cost_per_token": 1}}}}'.encode()


HOSTILE: dict[str, bytes] = {
    "1e+999999999": _entry("1e+999999999"),
    "1e-999999999": _entry("1e-999999999"),
    "-1e+999999999": _entry("-1e+999999999"),
    "1E+16": _entry("1E+16"),
    "0.(41 places)1": _entry("0." + "0" * 40 + "1"),
    "100,000 digits": _entry("9" * 100_000),
    "100,000 digits, as text": _entry('"' + "9" * 100_000 + '"'),
    "1e+999999999 as text": _entry('"1e+999999999"'),
    "NaN": _entry("NaN"),
    "Infinity": _entry("Infinity"),
    "sNaN as text": _entry('"sNaN"'),
    "a list": _entry("[1]"),
    "true": _entry("true"),
    "deep array": b'{"m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep object": b'{"m": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    "a 1 MB name": json.dumps({"x" * 2**20: {"input_cost_per_token": -1}}).encode(),
    "not UTF-8": b'{"m\xff": {"input_cost_per_token": 1, "output_cost_per_token": 1}}',
    "a lone surrogate": _entry('"\\ud800"'),
    "no prices at all": b'{"m": {"mode": "chat"}}',
    "empty": b"",
    "a JSON string": b'"' + b"x" * 100_000 + b'"',
}


def test_hostile_price_files_given_by_the_user(
    data_dir: Path, tmp_path: Path, counts: Counts
) -> None:
    Ledger("p").create("alice", "10", duration="monthly")
    before = fingerprint(data_dir)
    files = dict(HOSTILE)
    tried = rejected = 0
    slowest = longest = 0.0
    for name, content in files.items():
        path = tmp_path / f"prices-{len(content)}-{tried}.json"
        path.write_bytes(content)
        for args, env in (
            (("check", "alice", "-m", "m", "--prompt", "hi", "--prices", str(path)), {}),
            (("models", "m"), {"BUDGETCTL_PRICES": str(path)}),
        ):
            tried += 1
            started = time.monotonic()
            done = cli(*args, env=env)
            slowest = max(slowest, time.monotonic() - started)
            longest = max(longest, len(done.stderr))
            assert done.returncode == 2, (name, args, done.returncode, done.stderr[:300])
            assert done.stderr.startswith("error: price file ") and str(path) in done.stderr, name
            assert done.stderr.count("\n") == 1 and "unexpected" not in done.stderr, name
            rejected += 1
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(MAX_PRICE_FILE + 1)  # sparse: no disk used
    tried += 1
    done = cli("models", "m", "--prices", str(huge))
    assert done.returncode == 2 and "larger than 32 MiB" in done.stderr, done.stderr
    rejected += 1
    line = counts(
        operations=tried,
        rejected_as_usage_errors=rejected,
        crashes=0,
        slowest_ms=round(slowest * 1000),
        longest_message=round(longest),
    )
    assert fingerprint(data_dir) == before, line
    assert slowest < 5 and longest < 400, line


PLANTED = {
    name: content
    for name, content in HOSTILE.items()
    if name not in {"no prices at all", "empty", "a JSON string", "NaN", "Infinity"}
}


def test_hostile_project_prices_are_corrupt_state(
    data_dir: Path, tmp_path: Path, counts: Counts
) -> None:
    book = Ledger("p")
    book.create("alice", "10", duration="monthly")
    files = set(data_dir.iterdir())
    book.set_price("m", "0.1", "0.2")
    (prices,) = set(data_dir.iterdir()) - files  # the store names it, not this test
    tried = 0
    for name, content in PLANTED.items():
        # The project's own file format, with the hostile entry as its prices.
        text = content.decode("utf-8", "surrogateescape")
        planted = b'{"format": "budgetctl-prices", "version": 1, "prices": ' + content + b"}"
        prices.write_bytes(planted if text else content)
        before = fingerprint(data_dir)
        tried += 1
        done = cli(
            "update-cost", "alice", "-m", "m", "--prompt-tokens", "1", "--completion-tokens", "1"
        )
        assert done.returncode == 1, (name, done.returncode, done.stderr[:300])
        assert str(prices) in done.stderr and done.stderr.count("\n") == 1, name
        assert len(done.stderr) < 400 and "unexpected" not in done.stderr, name
        assert fingerprint(data_dir) == before, name
    counts(operations=tried, rejected_as_corrupt_state=tried, crashes=0)
