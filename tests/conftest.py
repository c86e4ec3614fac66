"""Shared test setup: no test touches the real user data dir, the network or tiktoken's cache."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# tests/helpers holds no tests, so pytest would not rewrite its asserts (helpers.cli's ok() and
# fails() report through them); this must run before any test module imports it.
pytest.register_assert_rewrite("helpers")


# The default run leaves out the slow tests (pyproject.toml's addopts: -m "not slow"), so that the
# suite a developer runs while working takes well under a minute; `pytest -m ""` runs every test
# (.ci/run does), `pytest -m slow` only these. Slow are the tests of these markers (real processes,
# kill -9, fault injection and load, LiteLLM's differential) and the few tests named below.
SLOW_MARKERS = ("process", "reliability", "litellm")
SLOW_TESTS = frozenset(
    {
        # Hypothesis' state machine over the ledger: ~8 s alone. The replay invariant stays in the
        # default run through the store and ledger tests; this explores it at length.
        "tests/test_rules.py::test_ledger_replay",
    }
)


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        named = item.nodeid.split("::")[:2]
        if "::".join(named) in SLOW_TESTS or any(
            item.get_closest_marker(marker) for marker in SLOW_MARKERS
        ):
            item.add_marker(pytest.mark.slow)


class NetworkBlocked(RuntimeError):
    pass


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise NetworkBlocked("tests run offline: budgetctl must not touch the network")


@pytest.fixture(autouse=True)
def _isolated(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point every budgetctl path at a temp dir and make the network unreachable."""
    root = tmp_path_factory.mktemp("budgetctl")
    data_dir = root / "data"
    empty_cache = root / "empty-cache"
    empty_cache.mkdir()
    monkeypatch.setenv("BUDGETCTL_DATA_DIR", str(data_dir))
    # tiktoken's download cache must not be where our encodings come from.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty_cache))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(empty_cache))
    for name in (
        "BUDGETCTL_PROJECT",
        "BUDGETCTL_PRICES",
        "BUDGETCTL_DEBUG",
        "BUDGETCTL_LOCK_TIMEOUT",
        "BUDGETCTL_DATABASE_URL",  # a test that wants a database names its own
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    yield data_dir


@pytest.fixture
def data_dir(_isolated: Path) -> Path:
    """The data dir every budgetctl call in this test uses (not created yet)."""
    return _isolated
