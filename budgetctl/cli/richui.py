"""The progress bar of long work on a terminal (rich), on stderr: never in a pipe or in cron.

Tables, bars and charts are drawn by :mod:`budgetctl.cli.terminal`, which needs no rich.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def progress(description: str, total: int) -> Progress:
    """A transient progress bar on stderr (callers only ask for one on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar_ = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    bar_.add_task(description, total=total)
    return bar_
