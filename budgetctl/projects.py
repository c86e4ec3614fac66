"""Project discovery: which projects a data directory (or a database) holds, and whether the
directory exists.

One answer for every caller that goes over projects: ``budgetctl projects``, ``reset-due
--all-projects`` (:mod:`budgetctl.maintenance`), and code that reports on a data dir. A data dir
with no projects is no error here: the caller decides whether to warn (cron pointed at the wrong
place should hear of it) or to carry on. With a database URL (``BUDGETCTL_DATABASE_URL``, as for
:class:`~budgetctl.ledger.Ledger`), the projects are the database's.
"""

from __future__ import annotations

import os
from pathlib import Path

from budgetctl.core.record import Record
from budgetctl.ledger import list_projects, resolve_data_dir


class DataDirProjects(Record):
    """The projects found in one data directory: ``data_dir`` is the directory looked at,
    ``projects`` the names of those with a state file there (sorted), ``exists`` whether the
    directory exists at all (False: nothing was ever written to it, or it is the wrong path).

    With ``database_url`` set, the projects are those of that database (``data_dir`` is then
    not looked at, and ``exists`` is True: a database that cannot be reached is an error)."""

    data_dir: Path
    projects: tuple[str, ...]
    exists: bool
    database_url: str | None = None
    server: str | None = None  # client mode (BUDGETCTL_SERVER): the budget server's URL

    @property
    def where(self) -> str:
        """Where the projects were looked for: the directory, the budget server, or the
        database (no password)."""
        if self.server is not None:
            return self.server
        if self.database_url is None:
            return str(self.data_dir)
        from budgetctl.store.postgres.store import redact

        return redact(self.database_url)


def find_projects(
    data_dir: str | os.PathLike[str] | None = None, *, database_url: str | None = None
) -> DataDirProjects:
    """The projects of ``data_dir`` (default: ``BUDGETCTL_DATA_DIR``, else the platform's user
    data directory), or of the database at ``database_url`` (default:
    ``BUDGETCTL_DATABASE_URL``; when set, it wins over the data dir, as for a ledger). A missing
    directory has none; one that cannot be listed, or a database that cannot be reached, is a
    :class:`~budgetctl.errors.StorageIOError`. In client mode (``BUDGETCTL_SERVER`` set, no
    ``database_url`` given), the budget server's projects."""
    folder = resolve_data_dir(data_dir)
    url = database_url or os.environ.get("BUDGETCTL_DATABASE_URL") or None
    from budgetctl.client import configured_server

    server = configured_server() if database_url is None else None
    if server is not None:  # client mode: the server's projects
        from budgetctl.client.api import Client

        client = Client(server)
        answer = client.call("GET", "/v1/projects")
        names = answer.get("projects") if isinstance(answer, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            from budgetctl.client.decode import bad

            raise bad(client.where, "GET /v1/projects did not list names")
        return DataDirProjects(folder, tuple(names), True, server=client.where)
    if url is not None:
        from budgetctl.store.postgres.store import Database

        database = Database(url)
        try:
            return DataDirProjects(folder, tuple(database.projects()), True, url)
        finally:
            database.close()
    names = tuple(list_projects(folder))
    return DataDirProjects(folder, names, bool(names) or folder.is_dir())
