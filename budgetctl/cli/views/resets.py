"""Resets: ``reset`` (by hand, now) and ``reset-due`` (cron: periods that ended)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from budgetctl.cli.humanize import usd, utc
from budgetctl.cli.report import Report
from budgetctl.core.operations import ResetDue
from budgetctl.core.rules import ClosedPeriod


def _entry(user: str, period: ClosedPeriod, project: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"user": user}
    if project is not None:
        entry["project"] = project
    entry.update(
        period_start=period.start,
        period_end=period.end,
        spent=period.spent,
        budget=period.budget,
    )
    return entry


def _line(verb: str, user: str, period: ClosedPeriod, project: str | None = None) -> str:
    where = f" (project {project})" if project else ""
    return (
        f"{verb} {user}{where}: {usd(period.spent)} spent of {usd(period.budget)} "
        f"from {utc(period.start)} to {utc(period.end)}"
    )


def reset(done: Sequence[tuple[str, ClosedPeriod]], dry_run: bool) -> Report:
    report = Report({"reset": [_entry(u, p) for u, p in done], "dry_run": dry_run})
    verb = "would reset" if dry_run else "reset"
    for user, period in done:
        report.line(_line(verb, user, period))
    if not done:
        report.line("no budgets to reset")
    return report


def reset_due(
    results: Sequence[ResetDue], failed: Sequence[str], dry_run: bool, all_projects: bool
) -> Report:
    """One project's ``reset-due``, or every project's (``--all-projects``)."""
    checked = sum(r.checked for r in results)  # a count of budgets looked at, not money
    report = Report(
        {
            "checked": checked,
            "reset": [
                _entry(u, p, r.project if all_projects else None)
                for r in results
                for u, p in r.reset
            ],
            "cap_reset": [
                {
                    "project": r.project,
                    "period_start": r.cap.start,
                    "period_end": r.cap.end,
                    "spent": r.cap.spent,
                    "budget": r.cap.budget,
                }
                for r in results
                if r.cap is not None
            ],
            "projects": [r.project for r in results],
            "failed": list(failed),
            "hooks_delivered": sum(r.delivered for r in results),
            "hooks_undelivered": sum(r.undelivered for r in results),
            "dry_run": dry_run,
        }
    )
    verb = "would reset" if dry_run else "reset"
    for result in results:
        for user, period in result.reset:
            report.line(_line(verb, user, period, result.project if all_projects else None))
        if result.cap is not None:
            report.line(_line(verb, "the project cap", result.cap, result.project))
    resets = sum(len(r.reset) for r in results)
    where = (
        f"{len(results)} project{'s' if len(results) != 1 else ''}"
        if all_projects
        else f"project {results[0].project}"
        if results
        else "no project"
    )
    report.line(
        f"checked {checked} budget{'s' if checked != 1 else ''} in {where}: "
        f"{verb} {resets}" + (" (dry run, nothing changed)" if dry_run else "")
    )
    delivered = sum(r.delivered for r in results)
    undelivered = sum(r.undelivered for r in results)
    if delivered or undelivered:
        report.line(
            f"hook events: {delivered} delivered"
            + (f", {undelivered} still undelivered (tried again next run)" if undelivered else "")
        )
    return report
