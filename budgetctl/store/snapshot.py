"""A whole project as one value: what ``budgetctl dump`` writes and ``restore`` loads.

A store's ``export()`` returns one, read from one consistent snapshot; its ``restore()`` writes one
in one transaction (docs/dump-format.md). Budgets are as stored (not rolled over: a period that
has ended closes in the store it is restored into, with its ``period`` event, as it would have in
the old one), and the history is oldest first, in the public JSON of :mod:`budgetctl.core.events`,
which is the same in every store.
"""

from __future__ import annotations

from budgetctl.core.events import Event
from budgetctl.core.record import Record
from budgetctl.core.rules import Budget, Hold
from budgetctl.costing.interface import Price


class Snapshot(Record):
    """One project: every field is what the store keeps, in a store-independent order."""

    project: str
    budgets: tuple[Budget, ...]  # by user name; ``recent_periods`` empty (they are in history)
    cap: Budget | None
    prices: tuple[Price, ...]  # the project's custom prices, by model name
    holds: tuple[Hold, ...]  # every hold the store keeps (open, or expired and not yet archived)
    history: tuple[Event, ...]  # oldest first


def snapshot(
    project: str,
    budgets: list[Budget],
    cap: Budget | None,
    prices: list[Price],
    holds: list[Hold],
    history: list[Event],
) -> Snapshot:
    """A :class:`Snapshot` with its parts in the canonical order (so two stores' exports of the
    same project are equal)."""
    return Snapshot(
        project,
        tuple(sorted((b._replace(recent_periods=()) for b in budgets), key=lambda b: b.user)),
        None if cap is None else cap._replace(recent_periods=()),
        tuple(sorted(prices, key=lambda p: p.model)),
        tuple(sorted(holds, key=lambda h: (h.created_at, h.hold_id))),
        tuple(history),
    )
