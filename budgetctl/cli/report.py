"""What a command prints, as data: a JSON document and the blocks a person reads.

Commands build a :class:`Report`; :mod:`budgetctl.cli.output` writes it as JSON, as plain text
(pipes, cron, ``NO_COLOR``-safe) or with rich (a terminal). Keeping the human output as plain data
means the plain and rich renderers show the same facts, and rich is imported only on a terminal.
(``NamedTuple`` rather than dataclasses: a dataclass costs ~0.5 ms to define at import, and a
one-shot command imports this module every time.)
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Union

Tone = Literal["ok", "alert", "over", "muted", "bold"]


class Line(NamedTuple):
    """One line of text, optionally with a tone for the terminal (plain text ignores it)."""

    text: str
    tone: Tone | None = None


class Bar(NamedTuple):
    """A share of a whole drawn as a bar on a terminal; ``label`` is what plain text shows."""

    fraction: float | None  # 0..1 (more is clipped); None when there is no meaningful share
    label: str
    tone: Tone = "ok"


class Choice(NamedTuple):
    """A cell that reads differently for a person ("in 3 days") and in stable plain text."""

    plain: str
    terminal: str


Cell = Union[str, Bar, Choice]  # noqa: UP007 - a runtime alias, evaluated on Python 3.10


class Column(NamedTuple):
    header: str
    numeric: bool = False  # right-aligned


class Table(NamedTuple):
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]]
    title: str | None = None
    headers: bool = True


class ChartRow(NamedTuple):
    label: str
    fraction: float  # of the chart's scale, 0..1
    mark: float | None  # where the budget line falls, 0..1
    text: str
    tone: Tone = "ok"


class Chart(NamedTuple):
    """Horizontal bars (the recent periods' spend against budget)."""

    title: str
    rows: list[ChartRow]


Block = Union[Line, Table, Chart]  # noqa: UP007 - a runtime alias, evaluated on Python 3.10


class Report:
    """A command's result: ``data`` for ``--json``, ``blocks`` for people."""

    def __init__(self, data: object, blocks: list[Block] | None = None) -> None:
        self.data = data
        self.blocks: list[Block] = blocks if blocks is not None else []

    def line(self, text: str, tone: Tone | None = None) -> Report:
        self.blocks.append(Line(text, tone))
        return self

    def add(self, block: Block) -> Report:
        self.blocks.append(block)
        return self
