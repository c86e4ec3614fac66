"""Project discovery: which projects a data directory holds, and whether the directory exists.

One answer for every caller that goes over projects: ``budgetctl projects``, ``reset-due
--all-projects`` (:mod:`budgetctl.maintenance`), and code that reports on a data dir. A data dir
with no projects is no error here: the caller decides whether to warn (cron pointed at the wrong
place should hear of it) or to carry on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from budgetctl.ledger import list_projects, resolve_data_dir


class DataDirProjects(NamedTuple):
    """The projects found in one data directory: ``data_dir`` is the directory looked at,
    ``projects`` the names of those with a state file there (sorted), ``exists`` whether the
    directory exists at all (False: nothing was ever written to it, or it is the wrong path)."""

    data_dir: Path
    projects: tuple[str, ...]
    exists: bool


def find_projects(data_dir: str | os.PathLike[str] | None = None) -> DataDirProjects:
    """The projects of ``data_dir`` (default: ``BUDGETCTL_DATA_DIR``, else the platform's user
    data directory). A missing directory has none; one that cannot be listed is a
    :class:`~budgetctl.errors.StorageIOError`."""
    folder = resolve_data_dir(data_dir)
    names = tuple(list_projects(folder))
    return DataDirProjects(folder, names, bool(names) or folder.is_dir())
