"""A fuzz of ``budgetctl serve``'s API from its own OpenAPI document (issue 12): schemathesis
(bench/fuzz_server.py) sends a thousand-odd generated requests to a real server over a data dir
and over PostgreSQL; none is answered with a 5xx (a 500 is a bug; 503, a store that is down,
must not happen here either), as the server's own log of every request shows.

schemathesis lives in bench/.venv-schemathesis, never in budgetctl's test dependencies (it pulls
in ~30 packages and a pytest plugin every run would load): `.ci/run` creates that venv and sets
``BUDGETCTL_REQUIRE_SCHEMATHESIS=1``; elsewhere these tests skip, saying how to create it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.postgres import require
from helpers.server import allow_loopback

pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.process, pytest.mark.reliability]

BENCH = Path(__file__).resolve().parents[1] / "bench"
ST = BENCH / ".venv-schemathesis" / "bin" / "st"


def module() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import fuzz_server
    finally:
        sys.path.remove(str(BENCH))
    return fuzz_server


@pytest.fixture
def st() -> str:
    if not ST.exists():
        why = (
            "schemathesis' venv bench/.venv-schemathesis is absent; "
            "`python bench/fuzz_server.py` creates it (from PyPI) and runs the full fuzz"
        )
        if os.environ.get("BUDGETCTL_REQUIRE_SCHEMATHESIS"):
            pytest.fail(why + " (BUDGETCTL_REQUIRE_SCHEMATHESIS is set: it must be there)")
        pytest.skip(why)
    return str(ST)


@pytest.mark.parametrize("store", ["json", "postgres"])
def test_the_fuzz_finds_no_server_error(
    store: str, st: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store == "postgres":
        require()
    allow_loopback(monkeypatch)  # to ask the server's /healthz; schemathesis runs apart
    result = module().fuzz(store, st, examples=10)
    assert result.server_errors == 0, result.summary()
    assert result.exit_code == 0, result.output
    assert result.cases > 500 and result.requests > 500, result.summary()
    assert result.statuses.get(200, 0) > 20  # not only refusals: operations succeeded too
