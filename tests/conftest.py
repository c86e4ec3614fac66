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
