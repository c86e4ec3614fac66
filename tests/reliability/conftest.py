"""The reliability suite's counts: operations tried, faults injected, charges lost.

Each test reports its counts through the ``counts`` fixture, which prints them, attaches them to
the test's JUnit properties (``record_property``) and keeps them for a "reliability counts" table
at the end of the run, so that CI's log shows them whether the tests pass or fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_COUNTS = pytest.StashKey[dict[str, dict[str, int]]]()


@pytest.fixture
def counts(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Callable[..., str]:
    """``counts(operations=..., faults=..., lost=...)``: record this test's counts; returns them as
    one line, for assertion messages."""
    table = request.config.stash.setdefault(_COUNTS, {})

    def record(**values: int) -> str:
        row = table.setdefault(request.node.nodeid, {})
        row.update(values)
        for name, value in values.items():
            record_property(name, value)
        line = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in row.items())
        print(f"reliability counts: {line}")
        return line

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    table = terminalreporter.config.stash.get(_COUNTS, {})
    if not table:
        return
    terminalreporter.section("reliability counts")
    for nodeid, row in table.items():
        line = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in row.items())
        terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {line}")
