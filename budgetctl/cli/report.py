"""What a command prints, as data: a JSON document and the blocks a person reads.

Commands build a :class:`Report`; :mod:`budgetctl.cli.output` writes it as JSON, as plain text
(pipes, cron, ``NO_COLOR``-safe) or with rich (a terminal). Keeping the human output as plain data
means the plain and rich renderers show the same facts, and rich is imported only on a terminal.
(Records, :mod:`budgetctl.core.record`, rather than dataclasses: a dataclass costs ~0.5 ms to
define at import, and a one-shot command imports this module every time.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Union

from budgetctl.core.record import Record

Tone = Literal["ok", "alert", "over", "muted", "bold"]


class Line(Record):
    """One line of text, optionally with a tone for the terminal (plain text ignores it), and
    optionally worded differently on a terminal (``terminal``: times in the budget's zone)."""

    text: str
    tone: Tone | None = None
    terminal: str | None = None


class Bar(Record):
    """A share of a whole drawn as a bar on a terminal; ``label`` is what plain text shows."""

    fraction: float | None  # 0..1 (more is clipped); None when there is no meaningful share
    label: str
    tone: Tone = "ok"


class Choice(Record):
    """A cell that reads differently for a person ("in 3 days") and in stable plain text."""

    plain: str
    terminal: str


Cell = Union[str, Bar, Choice]  # noqa: UP007 - a runtime alias, evaluated on Python 3.10


class Column(Record):
    """A table column. On a narrow terminal nothing is cut: bars are dropped first (their labels
    stay), then ``optional`` columns (what the others already imply), then headers and ``wrap``
    columns (descriptions, times written in words) wrap at spaces; then each row is stacked (its
    first cell on a line of its own, the rest under it)."""

    header: str
    numeric: bool = False  # right-aligned
    wrap: bool = False
    optional: bool = False


class Table(Record):
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]]
    title: str | None = None
    headers: bool = True


class ChartRow(Record):
    label: str
    fraction: float  # of the chart's scale, 0..1
    mark: float | None  # where the budget line falls, 0..1
    text: str
    tone: Tone = "ok"


class Chart(Record):
    """Horizontal bars (the recent periods' spend against budget)."""

    title: str
    rows: list[ChartRow]


Block = Union[Line, Table, Chart]  # noqa: UP007 - a runtime alias, evaluated on Python 3.10


class Report:
    """A command's result: ``data`` for ``--json``, ``blocks`` for people. ``data`` may be given
    as a function, built only when JSON is asked for (``show`` of 20,000 users)."""

    def __init__(
        self, data: object | Callable[[], object], blocks: list[Block] | None = None
    ) -> None:
        self._data = data
        self.blocks: list[Block] = blocks if blocks is not None else []

    @property
    def data(self) -> object:
        if callable(self._data):
            self._data = self._data()
        return self._data

    def line(self, text: str, tone: Tone | None = None, terminal: str | None = None) -> Report:
        self.blocks.append(Line(text, tone, terminal))
        return self

    def add(self, block: Block) -> Report:
        self.blocks.append(block)
        return self
