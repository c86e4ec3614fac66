"""The terminal renderer: rich tables, bars coloured at the alert threshold, a period chart.

Imported only when stdout is a terminal (and never for ``--json``), so pipes and cron do not pay
for rich. Rich itself honours ``NO_COLOR``, ``FORCE_COLOR`` and ``COLUMNS``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from budgetctl.cli.report import Bar, Block, Cell, Chart, Choice, Line, Table, Tone

if TYPE_CHECKING:
    from rich.progress import Progress

STYLES: dict[Tone, str] = {
    "ok": "green",
    "alert": "yellow",
    "over": "bold red",
    "muted": "dim",
    "bold": "bold",
}
BAR_WIDTH = 12
CHART_WIDTH = 30


def console(stream: TextIO | None = None) -> Console:
    return Console(file=stream or sys.stdout, highlight=False)


def render(blocks: list[Block], stream: TextIO) -> None:
    out = console(stream)
    for block in blocks:
        if isinstance(block, Line):
            out.print(Text(block.text, style=STYLES[block.tone] if block.tone else ""))
        elif isinstance(block, Table):
            out.print(_table(block))
        else:
            out.print(_chart(block))


def bar(cell: Bar, width: int = BAR_WIDTH) -> Text:
    text = Text()
    if cell.fraction is not None:
        filled = round(min(max(cell.fraction, 0.0), 1.0) * width)
        text.append("█" * filled, style=STYLES[cell.tone])
        text.append("░" * (width - filled), style="dim")
        text.append(" ")
    text.append(cell.label, style=STYLES[cell.tone] if cell.tone != "ok" else "")
    return text


def _cell(cell: Cell) -> Text:
    if isinstance(cell, Bar):
        return bar(cell)
    if isinstance(cell, Choice):
        return Text(cell.terminal)
    return Text(cell)


def _table(table: Table) -> RichTable:
    out = RichTable(
        title=table.title,
        box=box.SIMPLE_HEAD if table.headers else None,
        show_header=table.headers,
        title_justify="left",
        title_style="bold",
        pad_edge=table.headers,
    )
    for column in table.columns:
        out.add_column(column.header, justify="right" if column.numeric else "left")
    for row in table.rows:
        out.add_row(*(_cell(cell) for cell in row))
    return out


def _chart(chart: Chart) -> RichTable:
    grid = RichTable.grid(padding=(0, 2))
    grid.title = chart.title
    grid.title_justify = "left"
    grid.add_column()
    grid.add_column()
    grid.add_column()
    for row in chart.rows:
        line = Text()
        filled = round(min(max(row.fraction, 0.0), 1.0) * CHART_WIDTH)
        mark = None if row.mark is None else min(round(row.mark * CHART_WIDTH), CHART_WIDTH - 1)
        for position in range(CHART_WIDTH):
            if position < filled:
                line.append("█", style=STYLES[row.tone])
            elif position == mark:
                line.append("│", style="bold")
            else:
                line.append("·", style="dim")
        grid.add_row(Text(row.label), line, Text(row.text))
    return grid


def progress(description: str, total: int) -> Progress:
    """A transient progress bar on stderr (callers only ask for one on a terminal)."""
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
