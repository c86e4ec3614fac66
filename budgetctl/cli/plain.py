"""Plain, stable text for pipes, logs and cron mail: no colour, no box drawing, no bars."""

from __future__ import annotations

from typing import TextIO

from budgetctl.cli.report import Bar, Block, Cell, Chart, Choice, Line, Table


def render(blocks: list[Block], stream: TextIO) -> None:
    for block in blocks:
        if isinstance(block, Line):
            stream.write(block.text + "\n")
        elif isinstance(block, Table):
            _table(block, stream)
        else:
            _chart(block, stream)


def _cell(cell: Cell) -> str:
    if isinstance(cell, Bar):
        return cell.label
    if isinstance(cell, Choice):
        return cell.plain
    return cell


def _table(table: Table, stream: TextIO) -> None:
    if table.title:
        stream.write(table.title + "\n")
    rows = [[column.header.upper() for column in table.columns]] if table.headers else []
    rows += [[_cell(cell) for cell in row] for row in table.rows]
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.columns))]
    for row in rows:
        cells = [
            text.rjust(width) if column.numeric else text.ljust(width)
            for text, width, column in zip(row, widths, table.columns, strict=True)
        ]
        stream.write("  ".join(cells).rstrip() + "\n")


def _chart(chart: Chart, stream: TextIO) -> None:
    stream.write(chart.title + "\n")
    width = max((len(row.label) for row in chart.rows), default=0)
    for row in chart.rows:
        stream.write(f"  {row.label.ljust(width)}  {row.text}\n")
