"""Backups and moves: ``restore``'s report (``dump`` writes the dump itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from budgetctl.cli.report import Report

if TYPE_CHECKING:
    from budgetctl.dump import RestoreResult


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def restored(path: str, result: RestoreResult, dry_run: bool) -> Report:
    source = result.source
    counts = source.counts
    report = Report(
        {
            "file": path,
            "project": result.project,
            "from_project": source.project,
            "dumped_at": source.dumped_at,
            "budgets": counts.budgets,
            "cap": bool(counts.caps),
            "prices": counts.prices,
            "holds": counts.holds,
            "events": counts.events,
            "replaced": result.replaced,
            "dry_run": dry_run,
        }
    )
    shown = "stdin" if path == "-" else path
    parts = [_count(counts.budgets, "budget")]
    if counts.caps:
        parts.append("the cap")
    parts += [
        _count(counts.prices, "custom price"),
        _count(counts.holds, "hold"),
        _count(counts.events, "history event"),
    ]
    verb = "would restore" if dry_run else "restored"
    origin = "" if source.project == result.project else f" (dumped from project {source.project})"
    report.line(f"{verb} project {result.project} from {shown}{origin}: " + ", ".join(parts))
    if result.replaced:
        report.line(
            f"{'would replace' if dry_run else 'replaced'} what project {result.project} held "
            "before (see docs/cli.md, 'Backups and moving a project')"
        )
    return report
