"""The names of a project's files in the data dir, all in one place (docs/state-format.md).

A project ``P`` owns ``P.json`` (its state) and files named ``P+<what>``. A project name is
1-64 of ``[A-Za-z0-9._-]``, so it has no ``+``: no file of one project can ever be a file of
another (budgetctl 0.1 named them ``P.<what>``, and a project ``team.prices`` was then ``team``'s
prices file, ``team.prices.json``). Temp files start with ``.``, which no project name does.

0.1's names are still read, and the first write of a project renames its files (see
:func:`legacy`). A new kind of file is added here, to :class:`Files`, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from budgetctl.core.record import Record

SEP = "+"  # between the project name and what the file is; never in a project name
STATE_SUFFIX = ".json"


class Files(Record):
    """Every file a project owns (besides temp files and kept-aside history tails)."""

    state: Path
    history: Path
    prices: Path
    lock: Path  # no longer used (the data dir is locked): removed by a write, as 0.1's P.lock
    request_ids: Path  # the request-id index (sqlite, with its -wal and -shm files beside it)


def files(data_dir: Path, project: str) -> Files:
    """Project ``project``'s files in ``data_dir``."""
    return Files(
        state=data_dir / f"{project}{STATE_SUFFIX}",
        history=data_dir / f"{project}{SEP}history.jsonl",
        prices=data_dir / f"{project}{SEP}prices.json",
        lock=data_dir / f"{project}{SEP}lock",
        request_ids=data_dir / f"{project}{SEP}request-ids.sqlite",
    )


def legacy(data_dir: Path, project: str) -> Files:
    """The names budgetctl 0.1 gave the same files (``state`` did not change).

    ``P.history.jsonl`` and ``P.lock`` can only be ``P``'s; ``P.prices.json`` is ``P``'s prices
    only when it is a prices file: it may be the state of a project named ``P.prices``.
    """
    return Files(
        state=data_dir / f"{project}{STATE_SUFFIX}",
        history=data_dir / f"{project}.history.jsonl",
        prices=data_dir / f"{project}.prices.json",
        lock=data_dir / f"{project}.lock",
        request_ids=files(data_dir, project).request_ids,  # 0.1 kept its ids in the state
    )


def orphan(data_dir: Path, project: str, stamp: int) -> Path:
    """Where history bytes that no state counts are kept (see JsonStore._keep_tail)."""
    return data_dir / f"{project}{SEP}history.{stamp}.orphan.jsonl"


def replaced(path: Path, stamp: int) -> Path:
    """Where ``restore --replace`` keeps a file of the project it replaced: ``P.json`` becomes
    ``P+state.<n>.replaced.json``, ``P+history.jsonl`` ``P+history.<n>.replaced.jsonl`` (a name
    with ``+`` is never a project's state)."""
    name = path.name
    if SEP not in name:  # the state, P.json
        name = name[: -len(STATE_SUFFIX)] + SEP + "state" + STATE_SUFFIX
    stem, _, ext = name.rpartition(".")
    return path.with_name(f"{stem}.{stamp}.replaced.{ext}")


def temp(data_dir: Path, project: str, token: str) -> str:
    """A temp file of ``project`` (``token``: 8 characters of ``[a-z0-9_]``)."""
    return str(data_dir / f".{project}{SEP}{token}.tmp")


def temp_pattern(project: str) -> re.Pattern[str]:
    """Matches ``project``'s temp files, and the ``.P.<token>.tmp`` ones budgetctl 0.1 left."""
    return re.compile(rf"\.{re.escape(project)}[.{re.escape(SEP)}][a-z0-9_]{{8}}\.tmp")


def state_names(names: Iterable[str]) -> dict[str, str]:
    """``{project: file name}`` for the names in a listing that may be a project's state.

    Not yet checked: a name ending in ``.prices.json`` may be 0.1's prices file of another project
    (the store looks inside it), and the project name must still be valid.
    """
    found = {}
    for name in names:
        if name.endswith(STATE_SUFFIX) and SEP not in name and not name.startswith("."):
            found[name[: -len(STATE_SUFFIX)]] = name
    return found
