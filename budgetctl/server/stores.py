"""The server's store: a :class:`~budgetctl.ledger.Ledger` per request, over the data dir or the
database the server was started with.

Ledger calls block, so they run in the server's threadpool. With PostgreSQL each thread keeps its
own connection (a psycopg connection is never used by two threads at once) and reuses it for
every request that thread serves; with the data dir, the store's ``flock`` orders the threads as
it orders processes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from budgetctl.ledger import Ledger, resolve_data_dir

if TYPE_CHECKING:
    from budgetctl.projects import DataDirProjects
    from budgetctl.store.postgres.store import Database


class Backend:
    """Where the server keeps its projects: ``data_dir``, or the database at ``database_url``."""

    def __init__(
        self,
        data_dir: str | None = None,
        database_url: str | None = None,
        prices_file: str | None = None,
    ) -> None:
        self.data_dir = resolve_data_dir(data_dir)
        self.database_url = database_url
        self.prices_file = prices_file
        self._local = threading.local()
        if database_url is not None:
            from budgetctl.store.postgres.store import check_url

            check_url(database_url)

    @property
    def kind(self) -> str:
        return "json" if self.database_url is None else "postgres"

    def database(self) -> Database:
        """This thread's connection to the database (opened on first use, then kept)."""
        from budgetctl.store.postgres.store import Database

        assert self.database_url is not None
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = Database(self.database_url)
        return db

    def ledger(self, project: str) -> Ledger:
        """``project``'s ledger, for one request on this thread."""
        if self.database_url is None:
            # server="": never a client of a server itself, whatever BUDGETCTL_SERVER says
            return Ledger(project, self.data_dir, prices_file=self.prices_file, server="")
        from budgetctl.store.postgres.store import PostgresStore

        store = PostgresStore(project, self.database())
        ledger = Ledger(project, self.data_dir, prices_file=self.prices_file, store=store)
        ledger.database_url = self.database_url  # created_project names the database
        return ledger

    def projects(self) -> DataDirProjects:
        from budgetctl.projects import DataDirProjects

        if self.database_url is None:
            from budgetctl.ledger import list_projects

            names = tuple(list_projects(self.data_dir))  # not BUDGETCTL_SERVER's (client mode)
            return DataDirProjects(self.data_dir, names, bool(names) or self.data_dir.is_dir())
        names = tuple(self.database().projects())
        return DataDirProjects(self.data_dir, names, True, self.database_url)

    def close(self) -> None:
        """Close this thread's connection (the others close with their threads)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
