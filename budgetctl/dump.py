"""``budgetctl dump`` and ``restore``: a whole project as JSON Lines, for backups and moves.

A dump is a header line, one line per budget, the cap, each custom price, each hold the store
keeps, each history event oldest first, and a last line with the counts (docs/dump-format.md).
Every line is checked before anything is written, so a dump that is not one, was written by a
newer budgetctl, or was cut short is refused naming the line, and nothing changes. The store
writes the snapshot in one transaction (``Store.restore``); the JSON store and PostgreSQL give
the same ``show --json`` and ``history --json`` for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from budgetctl.core import events, rules
from budgetctl.core.periods import format_utc, parse_utc
from budgetctl.core.record import Record
from budgetctl.core.rules import CAP, Budget, Hold
from budgetctl.costing.interface import Price
from budgetctl.errors import BudgetctlError, UsageError
from budgetctl.importer import Source, source_name
from budgetctl.ledger import Ledger
from budgetctl.store import codec, document, prices_file
from budgetctl.store.snapshot import Snapshot

FORMAT = "budgetctl-dump"
VERSION = 1
_KINDS = ("budget", "cap", "price", "hold", "event", "end")  # in the order they are written


class Counts(Record):
    """What a dump holds (its last line says the same, so a truncated dump is detected)."""

    budgets: int
    caps: int
    prices: int
    holds: int
    events: int

    @classmethod
    def of(cls, snap: Snapshot) -> Counts:
        cap = 0 if snap.cap is None else 1
        return cls(len(snap.budgets), cap, len(snap.prices), len(snap.holds), len(snap.history))


class Dumped(Record):
    """A dump as read: the snapshot, and what its header says."""

    snapshot: Snapshot
    project: str  # the project it was dumped from
    dumped_at: datetime | None
    counts: Counts


class RestoreResult(Record):
    """What ``restore`` wrote (or, with ``dry_run``, would write)."""

    project: str  # the project restored into
    source: Dumped
    replaced: bool  # a project was there, and was replaced


# --- writing -------------------------------------------------------------------------------------


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def budget_record(budget: Budget) -> dict[str, Any]:
    """A budget's whole record: every field, defaults written out (as the state file's records
    otherwise, money as decimal text)."""
    record = codec.encode(budget)
    return {
        "total_budget": record["total_budget"],
        "current_cost": record["current_cost"],
        "model_cost": record.get("model_cost", {}),
        "duration": record.get("duration"),
        "timezone": budget.timezone,
        "start": record.get("start"),
        "created_at": record["created_at"],
        "period_start": record["period_start"],
        "next_reset_at": record.get("next_reset_at"),
        "alert_at": record.get("alert_at"),
    }


def encode(snap: Snapshot, dumped_at: datetime) -> Iterator[bytes]:
    """The lines of the dump of ``snap``."""
    from budgetctl._version import __version__

    yield _line(
        {
            "format": FORMAT,
            "version": VERSION,
            "project": snap.project,
            "dumped_at": format_utc(dumped_at),
            "budgetctl": __version__,
        }
    )
    for budget in snap.budgets:
        yield _line({"kind": "budget", "user": budget.user, **budget_record(budget)})
    if snap.cap is not None:
        yield _line({"kind": "cap", **budget_record(snap.cap)})
    for price in snap.prices:
        yield _line({"kind": "price", "model": price.model, **prices_file.encode_price(price)})
    for hold in snap.holds:
        yield _line({"kind": "hold", "hold_id": hold.hold_id, **document.encode_hold(hold)})
    for event in snap.history:
        yield _line({"kind": "event", **event.to_json()})
    yield _line({"kind": "end", **Counts.of(snap)._asdict()})


def dump(ledger: Ledger, stream: IO[bytes]) -> Counts:
    """Write the whole project of ``ledger`` to ``stream`` (binary) as a dump; what it holds."""
    snap = ledger.store.export()
    for line in encode(snap, ledger.now()):
        stream.write(line)
    stream.flush()
    return Counts.of(snap)


# --- reading -------------------------------------------------------------------------------------


def _lines(source: Source) -> Iterator[bytes]:
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                yield from handle
        except OSError as exc:
            raise UsageError(f"cannot read {os.fspath(source)} ({exc.strerror})") from None
    else:
        yield from source


def read(source: Source) -> Dumped:
    """The dump in ``source`` (a path, or a binary stream such as stdin), every line checked;
    UsageError naming the line when it is not a whole budgetctl dump this version reads."""
    name = source_name(source)
    return _Reader(name).read(_lines(source))


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.number = 0

    def fail(self, reason: str) -> UsageError:
        return UsageError(f"{self.name}: line {self.number}: {reason}; nothing was restored")

    def read(self, lines: Iterable[bytes]) -> Dumped:
        header: dict[str, Any] | None = None
        budgets: list[Budget] = []
        cap: Budget | None = None
        prices: list[Price] = []
        holds: list[Hold] = []
        history: list[events.Event] = []
        end: dict[str, Any] | None = None
        last_kind = 0
        for data in lines:
            self.number += 1
            value = self.parse(data)
            if header is None:
                header = self.header(value)
                continue
            if end is not None:
                raise self.fail("there is more after the dump's last line")
            kind = value.get("kind")
            if kind not in _KINDS:
                raise self.fail(f"unknown kind of line {kind!r}")
            if _KINDS.index(kind) < last_kind:
                raise self.fail(f"a {kind!r} line after the {_KINDS[last_kind]!r} lines")
            last_kind = _KINDS.index(kind)
            try:
                if kind == "budget":
                    budgets.append(self.budget(value))
                elif kind == "cap":
                    if cap is not None:
                        raise self.fail("a second cap")
                    cap = codec.decode(CAP, value)
                elif kind == "price":
                    prices.append(self.price(value))
                elif kind == "hold":
                    holds.append(self.hold(value))
                elif kind == "event":
                    history.append(events.from_json(value))
                else:
                    end = value
            except (codec.RecordError, events.EventError, BudgetctlError) as exc:
                if isinstance(exc, UsageError) and str(exc).startswith(f"{self.name}: line"):
                    raise
                raise self.fail(str(exc)) from None
        if header is None:
            raise UsageError(
                f"{self.name} is empty: expected a budgetctl dump; nothing was restored"
            )
        if end is None:
            raise UsageError(
                f"{self.name}: the dump ends at line {self.number} without its last line "
                '({"kind": "end", ...}): it is incomplete (cut short?); nothing was restored'
            )
        snap = Snapshot(
            str(header["project"]), tuple(budgets), cap, tuple(prices), tuple(holds), tuple(history)
        )
        counts = Counts.of(snap)
        for field, found in counts._asdict().items():
            if end.get(field) != found:
                raise self.fail(
                    f"the dump says it holds {end.get(field)!r} {field} but has {found}: it is "
                    "incomplete or was edited"
                )
        self.unique([b.user for b in budgets], "budget of user")
        self.unique([p.model for p in prices], "price of model")
        self.unique([h.hold_id for h in holds], "hold")
        dumped_at = header.get("dumped_at")
        return Dumped(
            snap,
            str(header["project"]),
            parse_utc(dumped_at) if isinstance(dumped_at, str) else None,
            counts,
        )

    def parse(self, data: bytes) -> dict[str, Any]:
        if not data.strip():
            raise self.fail("the line is empty")
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
            raise self.fail(f"not valid JSON ({reason})") from None
        if not isinstance(value, dict):
            raise self.fail("not a JSON object")
        return value

    def header(self, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("format") != FORMAT:
            raise UsageError(
                f"{self.name} is not a budgetctl dump (its first line has no "
                f'"format": "{FORMAT}"); nothing was restored'
            )
        version = value.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail(f"unknown dump format version {version!r}")
        if version > VERSION:
            raise self.fail(
                f"dump format version {version} is newer than this budgetctl reads ({VERSION}); "
                "upgrade budgetctl"
            )
        if not isinstance(value.get("project"), str):
            raise self.fail("the header names no project")
        if value.get("dumped_at") is not None:
            try:
                parse_utc(str(value["dumped_at"]))
            except ValueError:
                raise self.fail(f"dumped_at {value['dumped_at']!r} is not a time") from None
        return value

    def budget(self, value: dict[str, Any]) -> Budget:
        user = value.get("user")
        if not isinstance(user, str):
            raise self.fail("a budget line without its user")
        rules.check_user_name(user)
        return codec.decode(user, value)

    def price(self, value: dict[str, Any]) -> Price:
        model = value.get("model")
        if not isinstance(model, str) or not model:
            raise self.fail("a price line without its model")
        try:
            return prices_file.decode_price(model, value)
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise self.fail(f"the price of {model!r} is malformed ({exc})") from None

    def hold(self, value: dict[str, Any]) -> Hold:
        hold_id, user = value.get("hold_id"), value.get("user")
        if not isinstance(hold_id, str) or not hold_id or not isinstance(user, str):
            raise self.fail("a hold line without its hold_id or user")
        try:
            return document.decode_hold(hold_id, value, self.name)
        except BudgetctlError:
            raise self.fail(f"hold {hold_id!r} is malformed") from None

    def unique(self, names: list[str], what: str) -> None:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise UsageError(
                    f"{self.name}: two lines hold the {what} {name!r}; nothing was restored"
                )
            seen.add(name)


def restore(
    ledger: Ledger, source: Source, *, replace: bool = False, dry_run: bool = False
) -> RestoreResult:
    """Restore the dump in ``source`` into ``ledger``'s project, in one transaction.

    Every line is checked first (UsageError naming the line; nothing written). A project that
    exists (budgets, cap, prices or history) is refused with ProjectExistsError unless
    ``replace``. The dump may come from another project name: it is restored under this one.
    """
    found = read(source)
    snap = found.snapshot._replace(project=ledger.project)
    replaced = ledger.store.restore(snap, ledger.now(), replace=replace, dry_run=dry_run)
    return RestoreResult(ledger.project, found, replaced)


__all__ = ["FORMAT", "VERSION", "Counts", "Dumped", "RestoreResult", "dump", "read", "restore"]
