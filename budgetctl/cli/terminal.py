"""The terminal renderer: tables that fit the window without cutting a name, an amount or a time,
bars coloured at the alert threshold, the recent periods' chart, and a pager for long output.

Laid out by hand with ANSI colour codes rather than with rich's ``Table``, which measures every
cell of every row several times (5.3 s for ``show`` of 2,000 users, 34 s for 20,000): this is one
pass over the cells, as fast as the plain text of a pipe (docs/performance.md).

On a narrow terminal nothing a person needs is cut: bars are dropped first (their labels stay),
then the ``optional`` columns, then headers and the ``wrap`` columns (descriptions, times in words)
wrap at spaces; a table that still does not fit is stacked (each row's first cell on a line of its
own, the rest indented under it). Users, models, money and times are never shortened; only a table
whose first column alone is wider than the window is wrapped by the terminal.
Colour follows ``NO_COLOR`` (off), ``FORCE_COLOR`` (on) and ``TERM=dumb`` (off).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence

from budgetctl.cli.report import Bar, Block, Cell, Chart, Choice, Line, Table, Tone

STYLES: dict[Tone, str] = {  # ANSI SGR parameters
    "ok": "32",  # green
    "alert": "33",  # yellow
    "over": "1;31",  # bold red
    "muted": "2",  # dim
    "bold": "1",
}
DIM = "2"
BAR_WIDTH = 12
CHART_WIDTH = 30
MIN_CHART_WIDTH = 10
GAP = "  "


def colour_enabled() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return os.environ.get("TERM", "") != "dumb"


def size() -> os.terminal_size:
    """The window (``COLUMNS``/``LINES`` win, as for every program that reads them)."""
    return shutil.get_terminal_size((80, 24))


class _Paint:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, style: str | None) -> str:
        if not (self.colour and style and text):
            return text
        return f"\x1b[{style}m{text}\x1b[0m"


def render(blocks: Sequence[Block], width: int | None = None, colour: bool | None = None) -> str:
    """``blocks`` as the text a terminal ``width`` columns wide shows (ANSI colours included)."""
    width = width if width is not None else size().columns
    paint = _Paint(colour_enabled() if colour is None else colour)
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Line):
            text = block.terminal if block.terminal is not None else block.text
            # a sentence that is fine needs no colour; a warning or a muted note gets one
            lines.append(
                paint(text, STYLES[block.tone] if block.tone not in (None, "ok") else None)
            )
        elif isinstance(block, Table):
            lines.extend(_table(block, width, paint))
        else:
            lines.extend(_chart(block, width, paint))
    return "".join(line + "\n" for line in lines)


# --- tables ---------------------------------------------------------------------------------------


def _bar_width(cell: Bar, bars: bool) -> int:
    drawn = bars and cell.fraction is not None
    return BAR_WIDTH + 1 + len(cell.label) if drawn else len(cell.label)


def _plain(cell: Cell) -> str:
    if isinstance(cell, Choice):
        return cell.terminal
    assert isinstance(cell, str)
    return cell


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at spaces only (a word longer than
    ``width`` stays whole: names, amounts and times are never cut)."""
    if len(text) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def _widths(table: Table, bars: bool) -> list[int]:
    """Each column's natural width: its longest cell or header (one pass a column)."""
    widths = [len(column.header) if table.headers else 0 for column in table.columns]
    for index in range(len(table.columns)):
        lengths = [
            len(cell)
            if cell.__class__ is str
            else _bar_width(cell, bars)
            if cell.__class__ is Bar
            else len(_plain(cell))
            for cell in (row[index] for row in table.rows)
        ]
        widths[index] = max(widths[index], max(lengths, default=0))
    return widths


def _fits(widths: Sequence[int], width: int) -> bool:
    return sum(widths) + len(GAP) * (len(widths) - 1) <= width


def _without(table: Table, index: int) -> Table:
    return table._replace(
        columns=table.columns[:index] + table.columns[index + 1 :],
        rows=[row[:index] + row[index + 1 :] for row in table.rows],
    )


def _two_lines(text: str) -> int:
    """The narrowest width at which ``text`` wraps into at most two lines (at a space)."""
    words = text.split()
    if len(words) < 2:
        return len(text)
    lengths = [len(word) for word in words]
    best = len(text)
    left = -1
    right = sum(lengths) + len(lengths) - 1
    for length in lengths[:-1]:
        left += length + 1
        right -= length + 1
        best = min(best, max(left, right))
    return best


def _floors(table: Table, bars: bool, lines: int) -> list[int]:
    """How narrow each column may get: headers wrap at spaces; a ``wrap`` column to its longest
    word (``lines`` = 0) or to what keeps each of its cells on two lines (``lines`` = 2)."""
    floors = []
    for index, column in enumerate(table.columns):
        header = _longest_word(column.header) if table.headers else 0
        texts = {
            " " * _bar_width(c, bars) if isinstance(c, Bar) else _plain(c)
            for c in (row[index] for row in table.rows)
        }
        if not column.wrap:
            floor = max(map(len, texts), default=0)
        elif lines == 2:
            floor = max((_two_lines(t) for t in texts), default=0)
        else:
            floor = max(map(_longest_word, texts), default=0)
        floors.append(max(header, floor))
    return floors


def _squeeze(table: Table, widths: list[int], floors: Sequence[int], width: int) -> None:
    """Narrow ``widths`` (in place) towards ``floors`` until the table fits ``width``: headers
    first, then the wrap columns, the widest giving a column at a time."""
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            return
        headers = [i for i in shrinkable if not table.columns[i].wrap]
        widest = max(headers or shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1


def layout(table: Table, width: int) -> tuple[Table, list[int], bool]:
    """What a ``width``-column terminal shows of ``table``: the table (without the optional
    columns that did not fit), its column widths, and whether bars are drawn. The widths add up
    to more than ``width`` when even wrapped the table does not fit (see :func:`_stacked`)."""
    bars = any(isinstance(cell, Bar) for row in table.rows for cell in row)
    widths = _widths(table, bars)
    if _fits(widths, width):
        return table, widths, bars
    if bars:  # first: drop the bars, keep their labels
        bars = False
        widths = _widths(table, bars)
        if _fits(widths, width):
            return table, widths, bars
    # then the optional columns (what the others imply), from the right, before anything wraps
    optional = [i for i, column in enumerate(table.columns) if column.optional]
    while optional and not _fits(widths, width):
        table = _without(table, optional.pop())
        widths = _widths(table, bars)
    # then headers wrap at spaces and the wrap columns down to two lines a cell, and further
    # (to their longest word) only if that makes the table fit
    _squeeze(table, widths, _floors(table, bars, 2), width)
    floors = _floors(table, bars, 0)
    if _fits(floors, width):
        _squeeze(table, widths, floors, width)
    return table, widths, bars


def _bar(cell: Bar, bars: bool, paint: _Paint) -> str:
    style = STYLES[cell.tone]
    if not bars or cell.fraction is None:
        return paint(cell.label, style)
    filled = round(min(max(cell.fraction, 0.0), 1.0) * BAR_WIDTH)
    return (
        paint("█" * filled, style)
        + paint("░" * (BAR_WIDTH - filled), DIM)
        + " "
        + paint(cell.label, style if cell.tone != "ok" else None)
    )


def _row(
    cells: Sequence[tuple[list[str], list[str]]], widths: Sequence[int], table: Table
) -> list[str]:
    """Lines of one row: each cell as (plain lines, painted lines), padded by its plain width."""
    height = max(len(plain) for plain, _ in cells)
    lines = []
    for number in range(height):
        parts = []
        for (plain, painted), w, column in zip(cells, widths, table.columns, strict=True):
            text = plain[number] if number < len(plain) else ""
            shown = painted[number] if number < len(painted) else ""
            pad = " " * max(w - len(text), 0)
            parts.append(pad + shown if column.numeric else shown + pad)
        lines.append(GAP.join(parts).rstrip())
    return lines


def _table(table: Table, width: int, paint: _Paint) -> list[str]:
    lines = [paint(table.title, STYLES["bold"])] if table.title else []
    if not table.rows and not table.headers:
        return lines
    fitted, widths, bars = layout(table, width)
    if not _fits(widths, width):
        stacked = _stacked(table, width, paint)
        if stacked is not None:
            return lines + stacked
    if fitted.headers:
        lines.extend(_head(fitted, widths, paint))
        lines.append("─" * min(sum(widths) + len(GAP) * (len(widths) - 1), width))
    for row_lines in _rows(fitted, widths, bars, paint):
        lines.extend(row_lines)
    return lines


def _stacked(table: Table, width: int, paint: _Paint) -> list[str] | None:
    """``table`` too wide for the window even wrapped, as records: each row's first cell (the
    user, the model) on a line of its own, the other cells under it, indented and fitted to what
    is left of the window. None when that does not fit either: when the names alone are wider
    than the window, the terminal wraps the table as it is."""
    if len(table.columns) < 2:
        return None
    key = Table(table.columns[:1], [row[:1] for row in table.rows], headers=table.headers)
    key_widths = _widths(key, False)
    rest, rest_widths, bars = layout(
        Table(table.columns[1:], [row[1:] for row in table.rows], headers=table.headers),
        width - len(GAP),
    )
    if key_widths[0] > width or not _fits(rest_widths, width - len(GAP)):
        return None
    lines = []
    if table.headers:
        lines.extend(_head(key, key_widths, paint))
        lines.extend(GAP + line for line in _head(rest, rest_widths, paint))
        used = len(GAP) + sum(rest_widths) + len(GAP) * (len(rest_widths) - 1)
        lines.append("─" * min(max(key_widths[0], used), width))
    for key_lines, rest_lines in zip(
        _rows(key, key_widths, False, paint), _rows(rest, rest_widths, bars, paint), strict=True
    ):
        lines.extend(key_lines)
        lines.extend(GAP + line for line in rest_lines)
    return lines


def _head(table: Table, widths: Sequence[int], paint: _Paint) -> list[str]:
    """The header's lines, each header wrapped at spaces to its column."""
    heads = []
    for column, w in zip(table.columns, widths, strict=True):
        wrapped = wrap(column.header, w)
        heads.append((wrapped, [paint(text, STYLES["bold"]) for text in wrapped]))
    return _row(heads, widths, table)


def _rows(table: Table, widths: Sequence[int], bars: bool, paint: _Paint) -> Iterator[list[str]]:
    """Each row's lines (one, unless a wrap column's cell wraps)."""
    painted_bars: dict[Bar, str] = {}  # a report of many budgets repeats a few bars
    numeric = [column.numeric for column in table.columns]
    wraps = [column.wrap for column in table.columns]
    for row in table.rows:
        parts = []
        for index, cell in enumerate(row):
            w = widths[index]
            if cell.__class__ is Bar:
                bar = cell
                shown = painted_bars.get(bar)
                if shown is None:
                    shown = painted_bars[bar] = _bar(bar, bars, paint)
                pad = " " * (w - _bar_width(bar, bars))
                parts.append(pad + shown if numeric[index] else shown + pad)
                continue
            text = _plain(cell)
            if wraps[index] and len(text) > w:
                break  # this row wraps: the general path below
            parts.append(text.rjust(w) if numeric[index] else text.ljust(w))
        else:
            yield [GAP.join(parts).rstrip()]
            continue
        yield _row(_cells(row, widths, table, bars, paint), widths, table)


def _cells(
    row: Sequence[Cell], widths: Sequence[int], table: Table, bars: bool, paint: _Paint
) -> list[tuple[list[str], list[str]]]:
    """A row's cells as (plain lines, painted lines), wrapped to their columns."""
    cells = []
    for cell, w, column in zip(row, widths, table.columns, strict=True):
        if isinstance(cell, Bar):
            cells.append(([" " * _bar_width(cell, bars)], [_bar(cell, bars, paint)]))
            continue
        text = _plain(cell)
        wrapped = wrap(text, w) if column.wrap else [text]
        cells.append((wrapped, wrapped))
    return cells


# --- the chart ------------------------------------------------------------------------------------


def _chart(chart: Chart, width: int, paint: _Paint) -> list[str]:
    lines = [paint(chart.title, STYLES["bold"])]
    labels = max((len(row.label) for row in chart.rows), default=0)
    texts = max((len(row.text) for row in chart.rows), default=0)
    room = min(CHART_WIDTH, width - labels - texts - 2 * len(GAP))
    for row in chart.rows:
        if room < MIN_CHART_WIDTH:  # too narrow for bars: the figures are what matter
            lines.append(f"{row.label.ljust(labels)}{GAP}{paint(row.text, STYLES[row.tone])}")
            continue
        filled = round(min(max(row.fraction, 0.0), 1.0) * room)
        mark = None if row.mark is None else min(round(row.mark * room), room - 1)
        drawn = []
        for position in range(room):
            if position < filled:
                drawn.append(paint("█", STYLES[row.tone]))
            elif position == mark:
                drawn.append(paint("│", STYLES["bold"]))
            else:
                drawn.append(paint("·", DIM))
        lines.append(f"{row.label.ljust(labels)}{GAP}{''.join(drawn)}{GAP}{row.text}")
    return lines
