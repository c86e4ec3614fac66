"""The PostgreSQL database behind ``--database-url``: its schema's state and its upgrade, for
``budgetctl db status`` and ``budgetctl db migrate`` (and code that deploys budgetctl).

The schema is versioned (:mod:`budgetctl.store.postgres.schema`): ``migrate`` applies what the
database lacks and is safe to run again, or from several hosts at once. Nothing here imports the
driver until a database is used.
"""

from __future__ import annotations

import os

from budgetctl.core.record import Record
from budgetctl.errors import UsageError

ENV = "BUDGETCTL_DATABASE_URL"


class SchemaStatus(Record):
    """``database`` (its URL, password hidden) has budgetctl schema ``version`` (0: none); this
    budgetctl needs ``needed``."""

    database: str
    version: int
    needed: int

    @property
    def migrate_needed(self) -> bool:
        """True when ``budgetctl db migrate`` would change the database."""
        return self.version < self.needed

    @property
    def too_new(self) -> bool:
        """True when the database was migrated by a newer budgetctl: upgrade this one."""
        return self.version > self.needed


class Migration(Record):
    """``migrate`` took ``database`` from schema version ``before`` to ``after`` (equal: it was
    up to date)."""

    database: str
    before: int
    after: int


def database_url(url: str | None = None, *, command: str | None = None) -> str:
    """``url``, else ``BUDGETCTL_DATABASE_URL``; neither is a usage error naming ``command``."""
    found = url or os.environ.get(ENV) or None
    if found is None:
        who = command or "this"
        raise UsageError(
            f"{who} needs a PostgreSQL database: give --database-url URL or set {ENV} "
            "(postgresql://USER@HOST:PORT/DATABASE)"
        )
    return found


def status(url: str | None = None) -> SchemaStatus:
    """The schema version of the database at ``url`` (default: ``BUDGETCTL_DATABASE_URL``)."""
    from budgetctl.store.postgres import schema
    from budgetctl.store.postgres.store import Database

    database = Database(database_url(url))
    try:
        return SchemaStatus(database.where, database.version(), schema.VERSION)
    finally:
        database.close()


def migrate(url: str | None = None) -> Migration:
    """Create or upgrade budgetctl's tables in the database at ``url`` (default:
    ``BUDGETCTL_DATABASE_URL``). Idempotent. A database of a newer schema than this budgetctl
    knows is left as it is (:class:`~budgetctl.store.postgres.store.SchemaMissingError`)."""
    from budgetctl.store.postgres.store import Database

    database = Database(database_url(url))
    try:
        before, after = database.migrate()
        database.check_schema()  # a newer schema than this budgetctl's: say so
        return Migration(database.where, before, after)
    finally:
        database.close()
