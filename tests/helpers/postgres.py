"""A PostgreSQL for the tests: each test gets its own schema, dropped afterwards.

The server is ``BUDGETCTL_TEST_DATABASE_URL``, else the one on 127.0.0.1:5432 (user postgres) when
it answers. Where none answers, the tests that need one skip with one line saying why, except
under ``BUDGETCTL_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@cache
def server_url() -> str | None:
    """The test server's URL, or None (with the reason in :func:`why_not`) when none answers."""
    url = os.environ.get("BUDGETCTL_TEST_DATABASE_URL") or DEFAULT_URL
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # no driver, no server: say so once
        _reasons.append(f"no PostgreSQL answers at {url} ({' '.join(str(exc).split())[:120]})")
        return None
    return url


_reasons: list[str] = []


def require() -> str:
    """The server URL; skip (or fail, where required) when there is none."""
    url = server_url()
    if url is None:
        reason = _reasons[0] if _reasons else "no PostgreSQL"
        if os.environ.get("BUDGETCTL_REQUIRE_POSTGRES"):
            pytest.fail(f"BUDGETCTL_REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(reason)
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (``search_path``)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema(migrate: bool = True) -> Iterator[str]:
    """A URL of a new, empty schema (with budgetctl's tables when ``migrate``); dropped after."""
    import psycopg

    base = require()
    name = f"bc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    url = with_schema(base, name)
    try:
        if migrate:
            from budgetctl.store.postgres.store import Database

            database = Database(url)
            database.migrate()
            database.close()
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url
