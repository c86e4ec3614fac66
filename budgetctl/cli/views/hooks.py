"""Hooks: ``hook list``, ``hook add``, ``hook remove``, ``hook test``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from budgetctl.cli.report import Report
from budgetctl.core.hooks import Delivery, Hook


def _describe(hook: Hook) -> str:
    what = f"run {hook.run!r}" if hook.run is not None else f"POST {hook.url}"
    return f"{hook.hook_id}: {what} on {','.join(hook.on)} (timeout {hook.timeout:g} s)"


def _data(hook: Hook) -> dict[str, Any]:
    data = hook.to_json()
    data["timeout"] = Decimal(data["timeout"])
    return data


def listed(project: str, hooks: Sequence[Hook], pending: Sequence[Delivery]) -> Report:
    report = Report(
        {
            "project": project,
            "hooks": [_data(hook) for hook in hooks],
            "pending": [
                {"event_id": d.event_id, "hook_id": d.hook_id, "queued_at": d.queued_at}
                for d in pending
            ],
        }
    )
    if not hooks:
        report.line(f"project {project!r} has no hooks; add one with 'budgetctl hook add'")
    for hook in hooks:
        report.line(_describe(hook))
    if pending:
        report.line(f"{len(pending)} event(s) not delivered yet ('reset-due' tries them again)")
    return report


def added(project: str, hook: Hook, dry_run: bool = False) -> Report:
    report = Report({"project": project, "hook": _data(hook), "dry_run": dry_run})
    return report.line(f"{'would add' if dry_run else 'added'} hook {_describe(hook)}")


def removed(project: str, hook_id: str, dry_run: bool = False) -> Report:
    report = Report({"project": project, "removed": hook_id, "dry_run": dry_run})
    verb = "would remove" if dry_run else "removed"
    return report.line(f"{verb} hook {hook_id} of project {project!r}")


def tested(project: str, hook_id: str, error: str | None) -> Report:
    report = Report({"project": project, "hook_id": hook_id, "ok": error is None, "error": error})
    if error is None:
        return report.line(f"hook {hook_id}: test event delivered")
    return report.line(f"hook {hook_id}: test event not delivered: {error}", "over")
