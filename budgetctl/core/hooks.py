"""Hooks: what a project runs or calls when an alert, an overrun or a reset is recorded.

Pure values and rules (docs/hooks.md). A hook is a command (``run``) or a URL (``url``) and the
kinds of event it is for (``on``). When an operation records an event of such a kind, it queues a
:class:`Delivery` per hook in the same atomic step (the store's outbox); delivering it is I/O,
done above the stores (:mod:`budgetctl.notify`). An event's id is derived from what it is about
(project, kind, user, period, threshold), so a retried delivery carries the same id and a
receiver dedupes by it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from budgetctl.core import events
from budgetctl.core.periods import format_utc, parse_utc
from budgetctl.core.record import Record
from budgetctl.errors import UsageError

KINDS = ("alert", "over", "reset")
DEFAULT_TIMEOUT = 10.0  # seconds one delivery may take before it counts as failed
MAX_TIMEOUT = 300.0
_HOOK_ID = r"k_[0-9a-f]{12}"  # compiled on first use (by re, cached there): only hooks need it


class Hook(Record):
    """A command (``run``, run by ``/bin/sh -c``) or a URL (``url``, sent a JSON POST)."""

    hook_id: str
    run: str | None
    url: str | None
    on: tuple[str, ...] = KINDS
    timeout: float = DEFAULT_TIMEOUT

    @property
    def target(self) -> str:
        return self.run if self.run is not None else (self.url or "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.hook_id, "on": list(self.on)}
        data["timeout"] = f"{self.timeout:g}"  # text: every store's JSON reads it back exactly
        if self.run is not None:
            data["run"] = self.run
        else:
            data["url"] = self.url
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Hook:
        return check_hook(
            cls(
                str(raw["id"]),
                raw.get("run"),
                raw.get("url"),
                tuple(raw.get("on") or KINDS),
                float(str(raw.get("timeout", DEFAULT_TIMEOUT))),
            )
        )


class Delivery(Record):
    """One event to deliver to one hook (an outbox entry): ``payload`` is the JSON sent."""

    event_id: str
    hook_id: str
    payload: Mapping[str, Any]
    queued_at: datetime

    @property
    def key(self) -> str:
        return f"{self.event_id} {self.hook_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "hook_id": self.hook_id,
            "payload": dict(self.payload),
            "queued_at": format_utc(self.queued_at),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Delivery:
        return cls(
            str(raw["event_id"]),
            str(raw["hook_id"]),
            dict(raw["payload"]),
            parse_utc(str(raw["queued_at"])),
        )


def hook_id_from(seed: bytes) -> str:
    """A hook id from random bytes the caller supplies (the core reads no randomness)."""
    import hashlib  # only where a hook or an event id is made: no charge pays for it

    return "k_" + hashlib.sha256(seed).hexdigest()[:12]


def check_hook_id(hook_id: str) -> str:
    if not isinstance(hook_id, str) or not re.fullmatch(_HOOK_ID, hook_id):
        raise UsageError(f"{hook_id!r} is not a hook id (they look like k_0123456789ab)")
    return hook_id


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    found = []
    for kind in kinds:
        kind = kind.strip()
        if kind not in KINDS:
            raise UsageError(f"unknown hook event {kind!r}: use {', '.join(KINDS)}")
        if kind not in found:
            found.append(kind)
    if not found:
        raise UsageError(f"a hook needs at least one event: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in found)


def check_hook(hook: Hook) -> Hook:
    check_hook_id(hook.hook_id)
    if (hook.run is None) == (hook.url is None):
        raise UsageError("a hook is either a command (--run CMD) or a URL (--url URL)")
    if hook.run is not None and (not isinstance(hook.run, str) or not hook.run.strip()):
        raise UsageError("a hook's command is empty")
    if hook.url is not None and (
        not isinstance(hook.url, str) or not re.match(r"https?://[^\s/]+", hook.url)
    ):
        raise UsageError(f"{hook.url!r} is not an http:// or https:// URL")
    if not 0 < hook.timeout <= MAX_TIMEOUT:
        raise UsageError(f"a hook's timeout must be more than 0 and at most {MAX_TIMEOUT:g} s")
    return hook._replace(on=check_kinds(hook.on))


_KINDS: dict[type, str] = {events.Alert: "alert", events.Over: "over", events.PeriodClosed: "reset"}


def kind_of(event: events.Event) -> str | None:
    """The hook event kind ``event`` is (None: no hook is told about it)."""
    return _KINDS.get(event.__class__)


def event_id(project: str, event: events.Event) -> str:
    """The id of a hook event: the same for the same alert, overrun or closed period, however
    often it is delivered (``ev_`` and 24 hex digits)."""
    if isinstance(event, events.Alert):
        parts: Sequence[str] = (
            "alert",
            event.user or "",
            format_utc(event.period_start),
            str(event.threshold.normalize()),
        )
    elif isinstance(event, events.Over):
        parts = ("over", event.user or "", format_utc(event.period_start))
    elif isinstance(event, events.PeriodClosed):
        parts = ("reset", event.user or "", format_utc(event.start), format_utc(event.end))
    else:
        parts = (event.type, format_utc(event.time) if event.time else "", repr(event))
    import hashlib

    digest = hashlib.sha256("\x00".join((project, *parts)).encode("utf-8")).hexdigest()
    return "ev_" + digest[:24]


def payload(project: str, event: events.Event) -> dict[str, Any]:
    """The JSON a hook gets (docs/hooks.md): the history event, with ``id``, ``project`` and
    ``event`` (the hook kind: ``alert``, ``over`` or ``reset``)."""
    data = {"id": event_id(project, event), "project": project, "event": kind_of(event)}
    data.update(event.to_json())
    if isinstance(event, events.PeriodClosed):
        data["user"] = event.user  # the cap's: null, as in alert and over
    return data


def deliveries(
    project: str, event: events.Event, hooks: Iterable[Hook], now: datetime
) -> list[Delivery]:
    """What recording ``event`` queues: one delivery per hook that is for its kind."""
    kind = kind_of(event)
    if kind is None:
        return []
    found = []
    body: dict[str, Any] | None = None
    for hook in hooks:
        if kind in hook.on:
            body = body or payload(project, event)
            found.append(Delivery(body["id"], hook.hook_id, body, now))
    return found


class DeliveryReport(Record):
    """What one pass over the outbox did: deliveries made, and those that failed (key, why)."""

    delivered: int
    failed: tuple[tuple[str, str], ...] = ()
