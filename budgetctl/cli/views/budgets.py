"""Budgets: ``show``, ``create``/``set``, ``cap``, ``delete``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.cli.humanize import figures, local, pct, share, usd, utc, when
from budgetctl.cli.report import (
    Bar,
    Cell,
    Chart,
    ChartRow,
    Choice,
    Column,
    Report,
    Table,
    Tone,
)
from budgetctl.core import rules
from budgetctl.core.operations import ProjectView
from budgetctl.core.periods import parse_timezone
from budgetctl.core.rules import Budget, ClosedPeriod


def tone(budget: Budget) -> Tone:
    if budget.over_budget:
        return "over"
    return "alert" if budget.alerting else "ok"


def used_bar(budget: Budget) -> Bar:
    return Bar(
        share(budget.current_cost, budget.total_budget),
        pct(budget.current_cost, budget.total_budget),
        tone(budget),
    )


def duration_text(budget: Budget) -> str:
    return budget.duration.text if budget.duration else "lifetime"


def period_data(period: ClosedPeriod) -> dict[str, Any]:
    return {
        "start": period.start,
        "end": period.end,
        "spent": period.spent,
        "budget": period.budget,
        "reason": period.reason,
    }


def alert_data(alerts: tuple[Decimal, ...]) -> Decimal | list[Decimal] | None:
    """``alert_at`` in JSON: one threshold as a number string (as before), several as a list."""
    if not alerts:
        return None
    return alerts[0] if len(alerts) == 1 else list(alerts)


def alert_text(alerts: tuple[Decimal, ...]) -> str:
    """``, alert at 50%, 80%, 100%`` (nothing when there is no threshold)."""
    return (", alert at " + ", ".join(f"{a}%" for a in alerts)) if alerts else ""


def budget_data(
    budget: Budget, *, user: bool = True, reserved: Decimal | None = None
) -> dict[str, Any]:
    """The JSON record of a budget (``show USER``; docs/cli.md lists the keys). With
    ``reserved`` (what open holds reserve of it: ``show``), also ``reserved`` and ``available``
    (budget - spent - reserved, never negative)."""
    data: dict[str, Any] = {"user": budget.user} if user else {}
    data.update(
        total_budget=budget.total_budget,
        current_cost=budget.current_cost,
        remaining=budget.remaining,
        over_budget=budget.over_budget,
        alerting=budget.alerting,
        duration=budget.duration.text if budget.duration else None,
        timezone=budget.timezone,
        start=budget.start,
        created_at=budget.created_at,
        period_start=budget.period_start,
        next_reset_at=budget.next_reset_at,
        model_cost=dict(sorted(budget.model_cost.items())),
        alert_at=alert_data(budget.alert_at),
        recent_periods=[period_data(p) for p in budget.recent_periods],
    )
    if reserved is not None:
        data["reserved"] = reserved
        data["available"] = rules.available(budget, reserved)
    return data


def cap_line(cap: Budget, now: datetime) -> str:
    total, spent, left = figures(cap.total_budget, cap.current_cost)
    resets = f"; resets {when(cap.next_reset_at, now, cap.timezone)}" if cap.next_reset_at else ""
    return (
        f"project cap: {total} {duration_text(cap)}{alert_text(cap.alert_at)}; spent {spent} "
        f"({pct(cap.current_cost, cap.total_budget)}), {left} left{resets}"
    )


def _row(budget: Budget) -> tuple[Cell, ...]:
    total, spent, left = figures(budget.total_budget, budget.current_cost)
    reset = budget.next_reset_at
    return (
        budget.user,
        total,
        spent,
        left,
        used_bar(budget),
        duration_text(budget),
        Choice(utc(reset), local(reset, budget.timezone)) if reset else "never",
    )


SHOW_COLUMNS = (
    Column("user"),
    Column("budget", numeric=True),
    Column("spent", numeric=True),
    Column("remaining", numeric=True),
    Column("used", optional=True),  # spent of budget says it too
    Column("duration", optional=True),
    Column("next reset", wrap=True),
)


def show_all(view: ProjectView, now: datetime) -> Report:
    """``show``: every budget; ``reserved`` and ``available`` columns while holds are open."""
    users = sorted(view.users, key=lambda b: b.user)
    held = {b.user: rules.reserved(view.holds, now, b.user) for b in users}
    cap_held = rules.reserved(view.holds, now)
    report = Report(
        lambda: {
            "project": view.project,
            "cap": budget_data(view.cap, user=False, reserved=cap_held) if view.cap else None,
            "users": [budget_data(b, reserved=held[b.user]) for b in users],
        }
    )
    if users:  # the header on the first line, for people and for `show | head -1`
        if view.holds:
            columns = (*SHOW_COLUMNS[:4], *HELD_COLUMNS, *SHOW_COLUMNS[4:])
            rows = [_row(b)[:4] + _held(b, held[b.user]) + _row(b)[4:] for b in users]
            report.add(Table(columns, rows))
        else:
            report.add(Table(SHOW_COLUMNS, [_row(b) for b in users]))
    else:
        report.line(
            f"no budgets in project {view.project!r} yet; add one with "
            "'budgetctl create USER --budget AMOUNT --duration D'"
        )
    if view.cap is not None:
        line = cap_line(view.cap, now)
        if cap_held:
            line += f"; {usd(cap_held)} held, {usd(rules.available(view.cap, cap_held))} available"
        report.line(line, tone(view.cap))
    return report


HELD_COLUMNS = (Column("reserved", numeric=True), Column("available", numeric=True))


def _held(budget: Budget, held: Decimal) -> tuple[Cell, ...]:
    return (usd(held), usd(rules.available(budget, held)))


def show_user(
    budget: Budget, now: datetime, project: str, reserved: Decimal = Decimal(0)
) -> Report:
    """``show USER``; ``reserved`` (what its open holds reserve) and ``available`` in the JSON,
    and in the table while something is held."""
    report = Report(budget_data(budget, reserved=reserved))
    alert = alert_text(budget.alert_at)
    total, spent, left = figures(budget.total_budget, budget.current_cost)
    zone = budget.timezone
    start, reset = budget.period_start, budget.next_reset_at
    period = Choice(
        f"{utc(start)} to {utc(reset)}",
        f"{local(start, zone)} to {local(reset, zone) if reset else 'never'}",
    )
    facts: list[tuple[Cell, ...]] = [
        ("budget", f"{total} {duration_text(budget)} ({zone}){alert}"),
        ("spent", spent),
        ("used", used_bar(budget)),
        ("remaining", left),
        *(
            [("reserved", usd(reserved)), ("available", usd(rules.available(budget, reserved)))]
            if reserved
            else []
        ),
        ("period", period),
        ("next reset", when(reset, now, zone)),
    ]
    report.blocks.append(
        Table(
            (Column(""), Column("", wrap=True)),
            list(facts),
            title=f"{budget.user} (project {project})",
            headers=False,
        )
    )
    if budget.over_budget:
        report.line(f"{budget.user} is over budget", "over")
    if budget.model_cost:
        by_cost = sorted(budget.model_cost.items(), key=lambda item: (-item[1], item[0]))
        report.blocks.append(
            Table(
                (
                    Column("model"),
                    Column("cost", numeric=True),
                    Column("share of spend", wrap=True),
                ),
                [
                    (
                        model,
                        usd(cost),
                        Bar(share(cost, budget.current_cost), pct(cost, budget.current_cost)),
                    )
                    for model, cost in by_cost
                ],
                title="cost per model",
            )
        )
    chart = periods_chart(budget)
    if chart is not None:
        report.blocks.append(chart)
    return report


def periods_chart(budget: Budget) -> Chart | None:
    """The recent closed periods, oldest first, and the current one: spend against budget."""
    if not budget.recent_periods:
        return None
    points = [(p.start, p.spent, p.budget, "") for p in reversed(budget.recent_periods)]
    points.append((budget.period_start, budget.current_cost, budget.total_budget, " (now)"))
    scale = max(max(spent, limit) for _, spent, limit, _ in points)
    zone = parse_timezone(budget.timezone)
    rows = []
    for start, spent, limit, suffix in points:
        over = spent > limit
        rows.append(
            ChartRow(
                label=f"{start.astimezone(zone):%Y-%m-%d %H:%M}{suffix}",
                fraction=float(spent) / float(scale) if scale else 0.0,
                mark=float(limit) / float(scale) if scale else None,
                text=f"{usd(spent)} of {usd(limit)} ({pct(spent, limit)})",
                tone="over" if over else "ok",
            )
        )
    return Chart(f"recent periods (spend against budget, {budget.timezone})", rows)


def saved(budget: Budget, verb: str, now: datetime, dry_run: bool) -> Report:
    """``create`` and ``set``: the budget as saved (or as it would be)."""
    data = budget_data(budget)
    data["dry_run"] = dry_run
    what = f"would {verb}" if dry_run else f"{verb}d"
    alert = alert_text(budget.alert_at)
    resets = f", resets {when(budget.next_reset_at, now, budget.timezone)}"
    if not budget.next_reset_at:
        resets = ""
    return Report(data).line(
        f"{what} {budget.user}'s budget: {usd(budget.total_budget)} {duration_text(budget)} "
        f"({budget.timezone}){alert}; spent {usd(budget.current_cost)}{resets}"
    )


def cap(
    project: str,
    budget: Budget | None,
    now: datetime,
    *,
    changed: bool = False,
    dry_run: bool = False,
) -> Report:
    """``cap``: the project cap as it is, or as it was (or would be) set."""
    report = Report(
        {
            "project": project,
            "cap": budget_data(budget, user=False) if budget else None,
            "dry_run": dry_run,
        }
    )
    if budget is None:
        return report.line(
            f"project {project!r} has no cap; set one with 'budgetctl cap --budget AMOUNT'"
        )
    verb = ("would set " if dry_run else "set ") if changed else ""
    return report.line(verb + cap_line(budget, now), tone(budget))


def cap_cleared(project: str, existed: bool, dry_run: bool) -> Report:
    report = Report({"project": project, "cap": None, "cleared": existed, "dry_run": dry_run})
    if not existed:
        return report.line(f"project {project!r} has no cap; nothing to clear")
    return report.line(f"{'would clear' if dry_run else 'cleared'} the cap of project {project!r}")


def deleted(users: Sequence[str], dry_run: bool) -> Report:
    verb = "would delete" if dry_run else "deleted"
    return Report({"deleted": list(users), "dry_run": dry_run}).line(
        f"{verb} {len(users)} budget{'s' if len(users) != 1 else ''}: " + ", ".join(users)
    )
