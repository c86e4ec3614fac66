"""Charges and checks: ``update-cost``, ``check``, ``history``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.cli.humanize import figures, pct, stamp, usd, when
from budgetctl.cli.report import Cell, Choice, Column, Report, Table
from budgetctl.cli.views.budgets import budget_data, tone
from budgetctl.core import rules
from budgetctl.core.periods import format_utc, parse_utc
from budgetctl.core.rules import Hold
from budgetctl.errors import BudgetExceededError
from budgetctl.ledger import ChargeResult, CheckResult

# History fields that hold money as decimal text; --json writes them as numbers.
MONEY_FIELDS = ("cost", "spent", "budget", "total_budget", "current_cost", "amount", "held")


def _tokens(prompt: int, completion: int, cached: int = 0) -> str:
    text = f"{prompt:,} prompt + {completion:,} completion tokens"
    return text + (f", {cached:,} cached" if cached else "")


def charge(result: ChargeResult, dry_run: bool) -> Report:
    budget = result.budget
    report = Report(
        {
            "user": result.user,
            "model": result.model,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cached_tokens": result.cached_tokens,
            "cost": result.cost,
            "current_cost": result.current_cost,
            "remaining": result.remaining,
            "over_budget": result.over_budget,
            "duplicate": result.duplicate,
            "total_budget": budget.total_budget,
            "request_id": result.request_id,
            "hold_id": result.hold_id,
            "held": result.held,
            "alerts": [alert.to_json() for alert in result.alerts],
            "estimated": result.estimated,
            "dry_run": dry_run,
            "cap": budget_data(result.cap, user=False) if result.cap else None,
        }
    )
    total, spent, left = figures(budget.total_budget, budget.current_cost)
    standing = (
        f"{result.user} has spent {spent} of {total} "
        f"({pct(budget.current_cost, budget.total_budget)}), {left} left"
    )
    if result.duplicate:
        what = (
            f"request id {result.request_id!r} was already charged"
            if result.hold_id is None
            else f"hold {result.hold_id} was already committed"
        )
        return report.line(f"{what}: nothing changed; {standing}")
    what = f" for {result.model}" if result.model else ""
    counted = (
        f" ({_tokens(result.prompt_tokens, result.completion_tokens, result.cached_tokens)}"
        f"{', estimated' if result.estimated else ''})"
        if result.prompt_tokens or result.completion_tokens
        else ""
    )
    verb = "would charge" if dry_run else "charged"
    report.line(f"{verb} {result.user} {usd(result.cost)}{what}{counted}")
    return report.line(("then " if dry_run else "") + standing, tone(budget))


def charge_warnings(result: ChargeResult, project: str, now: datetime, dry_run: bool) -> list[str]:
    """What a charge must tell a person even under ``-q``: over budget, over the project cap, and
    each alert threshold crossed, the user's and the cap's (once: by the charge that crossed it)."""
    if result.duplicate:
        return []
    budget, warnings = result.budget, []
    if result.over_budget:
        warnings.append(
            f"{result.user} is over budget; 'check' will refuse its calls until it resets or the "
            "budget is raised"
        )
    verb = "would cross" if dry_run else "crossed"
    for alert in result.crossed:
        crossed = budget if alert.user is not None else result.cap
        if crossed is None or crossed.over_budget:  # over: a warning of its own says more
            continue
        who = result.user if alert.user is not None else f"project {project!r}'s cap"
        resets = f"; it resets {when(crossed.next_reset_at, now)}" if crossed.next_reset_at else ""
        warnings.append(
            f"{who} {verb} {alert.threshold}% of {usd(alert.budget)}: {usd(alert.spent)} spent, "
            f"{usd(crossed.remaining)} left{resets}"
        )
    if result.cap is not None and result.cap.over_budget:
        warnings.append(f"project {project!r} is over its cap")
    if result.hold_missing:
        warnings.append(
            f"hold {result.hold_id} was not open (expired, released or unknown): the cost is "
            "recorded all the same"
        )
    elif result.over_hold is not None and result.held is not None:
        warnings.append(
            f"the call cost {usd(result.cost)}, {usd(result.over_hold)} more than its hold of "
            f"{usd(result.held)}: recorded all the same"
        )
    return warnings


def check(result: CheckResult, now: datetime) -> Report:
    budget = result.budget
    report = Report(
        {
            "user": result.user,
            "model": result.model,
            "prompt_tokens": result.prompt_tokens,
            "max_tokens": result.max_tokens,
            "projected_cost": result.projected_cost,
            "current_cost": result.current_cost,
            "total_budget": result.total_budget,
            "remaining": result.remaining,
            "allowed": result.allowed,
            "blocked_by": result.blocked_by,
            "estimated": result.estimated,
            "next_reset_at": budget.next_reset_at,
            "reserved": result.reserved,
            "available": result.available,
            "cap": budget_data(result.cap, user=False) if result.cap else None,
        }
    )
    data = report.data
    if result.hold is not None and isinstance(data, dict):
        data["hold_id"] = result.hold.hold_id
        data["expires_at"] = result.hold.expires_at
    if result.allowed:
        total, _, left = figures(budget.total_budget, budget.current_cost)
        if result.reserved:
            left = f"{usd(result.available)} (after {usd(result.reserved)} held)"
        report.line(
            f"ok: this {result.model + ' ' if result.model else ''}call may cost "
            f"{usd(result.projected_cost)}{_counted(result)}; {result.user} has "
            f"{left} of {total} left"
        )
    if result.hold is not None:
        report.line(
            f"held {usd(result.hold.amount)} as {result.hold.hold_id}, expiring "
            f"{when(result.hold.expires_at, now)}: after the call, 'budgetctl update-cost "
            f"{result.user} ... --hold {result.hold.hold_id}', or 'budgetctl release "
            f"{result.hold.hold_id}' if it was not made"
        )
    return report


def released(holds: list[Hold], dry_run: bool) -> Report:
    report = Report({"released": [hold_data(hold) for hold in holds], "dry_run": dry_run})
    verb = "would release" if dry_run else "released"
    for hold in holds:
        report.line(f"{verb} {hold.hold_id}: {usd(hold.amount)} held for {hold.user}")
    return report


def hold_data(hold: Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "user": hold.user,
        "amount": hold.amount,
        "created_at": hold.created_at,
        "expires_at": hold.expires_at,
    }


def holds(found: list[Hold], user: str | None, project: str, now: datetime) -> Report:
    """``holds``: the open holds, oldest first."""
    report = Report(
        lambda: {"project": project, "user": user, "holds": [hold_data(h) for h in found]}
    )
    if not found:
        return report.line(f"no open holds for {user!r}" if user else "no open holds")
    columns = [Column("hold")]
    if user is None:
        columns.append(Column("user"))
    columns += [
        Column("amount", numeric=True),
        Column("created", wrap=True),
        Column("expires", wrap=True),
    ]
    rows: list[tuple[Cell, ...]] = []
    for hold in found:
        who = (hold.user,) if user is None else ()
        rows.append(
            (
                hold.hold_id,
                *who,
                usd(hold.amount),
                Choice(format_utc(hold.created_at), stamp(hold.created_at, "UTC")),
                Choice(format_utc(hold.expires_at), when(hold.expires_at, now)),
            )
        )
    report.add(Table(tuple(columns), rows))
    return report


def _counted(result: CheckResult) -> str:
    """What a check priced: its tokens, or nothing for a cost known in advance."""
    if not (result.prompt_tokens or result.max_tokens):
        return ""
    estimated = ", estimated" if result.estimated else ""
    return f" ({_tokens(result.prompt_tokens, result.max_tokens)}{estimated})"


def blocked(result: CheckResult, now: datetime, project: str) -> BudgetExceededError:
    """The exit-3 error of a ``check`` that does not fit: which budget, what remains, when."""
    if result.blocked_by == "project" and result.cap is not None:
        limit, whose, held = result.cap, f"the project cap of {project!r}", result.cap_reserved
    else:
        limit, whose, held = result.budget, f"{result.user}'s budget", result.reserved
    total, _, left = figures(limit.total_budget, limit.current_cost)
    if held:
        left = f"{usd(rules.available(limit, held))} (after {usd(held)} held)"
    return BudgetExceededError(
        limit.current_cost,
        limit.total_budget,
        f"{whose} does not cover this call: it may cost {usd(result.projected_cost)} and "
        f"{left} of {total} remains; it resets "
        f"{when(limit.next_reset_at, now, limit.timezone)}",
        scope=result.blocked_by or "user",
    )


def _event_data(event: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(event)
    for key in MONEY_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = Decimal(data[key])
    return data


def _charge_detail(event: Mapping[str, Any]) -> str:
    """What was charged: the model and its tokens, or a cost given as it was (``--cost``)."""
    model = event.get("model")
    prompt, completion = event.get("prompt_tokens", 0), event.get("completion_tokens", 0)
    if not prompt and not completion:
        detail = f"{model}: cost given" if model else "cost given"
    else:
        detail = f"{model or '-'}: " + _tokens(prompt, completion, event.get("cached_tokens", 0))
    if event.get("request_id"):
        detail += f" [{event['request_id']}]"
    if event.get("type") == "commit":
        held = event.get("held")
        detail += f" (hold {event.get('hold_id')}" + (
            f" of {usd(Decimal(held))})" if held is not None else ", no longer open)"
        )
    return detail


def _event_row(event: Mapping[str, Any], with_user: bool, zone: str | None) -> tuple[Cell, ...]:
    kind = event.get("type", "?")
    amount, detail = "", ""
    if kind in ("charge", "commit"):
        amount = usd(Decimal(event["cost"]))
        detail = _charge_detail(event)
    elif kind in ("hold", "release", "expire"):
        amount = usd(Decimal(event["amount"]))
        detail = f"hold {event.get('hold_id')}"
        if kind == "hold":
            detail += f" until {event.get('expires_at')}"
    elif kind in ("period", "cap-period"):
        amount = usd(Decimal(event["spent"]))
        detail = (
            f"{'reset' if event.get('reason') == 'reset' else 'closed'} period "
            f"{event['start']} to {event['end']} (budget {usd(Decimal(event['budget']))})"
        )
    elif kind in ("alert", "over") and "spent" in event and "budget" in event:
        whose = "project cap" if event.get("user") is None else "budget"
        crossed = f"crossed {event['threshold']}%" if kind == "alert" else "went over"
        detail = (
            f"{whose} {crossed}: {usd(Decimal(event['spent']))} spent of "
            f"{usd(Decimal(event['budget']))}"
        )
    elif "total_budget" in event:
        detail = (
            f"budget {usd(Decimal(event['total_budget']))} {event.get('duration') or 'lifetime'}"
        )
    # the cap's events have no user (null): an empty cell, not "None"
    who = (str(event.get("user") or ""),) if with_user else ()
    time: Cell = event.get("time", "")
    if isinstance(time, str) and time:
        time = Choice(time, stamp(parse_utc(time), zone or "UTC"))
    return (time, kind, *who, amount, detail)


def history(
    events: list[dict[str, Any]], user: str | None, project: str, zone: str | None = None
) -> Report:
    """``history``: times in ISO UTC in a pipe, and in ``zone`` (the user's budget's; UTC for
    the whole project) on a terminal."""
    report = Report(
        lambda: {"project": project, "user": user, "events": [_event_data(e) for e in events]}
    )
    if not events:
        return report.line(f"no history for {user!r}" if user else "no history yet")
    columns = [Column("time", wrap=True), Column("event")]  # the date over the time, if need be
    if user is None:
        columns.append(Column("user"))
    columns += [Column("amount", numeric=True), Column("details", wrap=True)]
    rows: list[tuple[Cell, ...]] = [_event_row(e, user is None, zone) for e in events]
    report.add(Table(tuple(columns), rows))
    return report
