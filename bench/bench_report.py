#!/usr/bin/env python3
"""Benchmark of ``budgetctl report`` and ``export`` over a large history (a report, not a test).

A project of 100 users and N charges (default 100,000: five models, spread over 90 days, costs
with up to 12 decimals) is written in one transaction (``restore`` of a snapshot), on the JSON
store or, with ``--database-url``, on PostgreSQL. Then, cases interleaved, median and spread:

- ``report --by user|model|day`` (a day in UTC and in Paris time) and ``export`` (CSV) as fresh
  processes, stdout to a pipe read to the end: wall time of the whole process (start-up
  included, ~0.1 s; bytecode written by a warm-up run, as in an installed package);
- the same in-process (``budgetctl.reports``): the library's own time;
- ``report --since`` a tenth of the range: what a range saves.

Each run checks that the report's total equals the sum of the exported rows, exactly.

    python bench/bench_report.py [--charges N] [--runs N] [--database-url URL] [--json]
                                 [--compare ../before/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from bench_costing import machine, summary

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
PROJECT = "bench-report"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=90)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro", None)
USERS = 100


def seed(ledger: object, charges: int) -> Decimal:
    """``charges`` charges of ``USERS`` lifetime budgets, restored in one transaction; the total."""
    from budgetctl.core import events, rules
    from budgetctl.store import snapshot

    history: list[events.Event] = []
    spent: dict[str, Decimal] = {}
    models: dict[str, dict[str, Decimal]] = {}
    step = SPAN / charges
    for number in range(charges):
        user = f"user-{number % USERS:03d}"
        model = MODELS[number % len(MODELS)]
        cost = Decimal(number % 977 + 1).scaleb(-6) + Decimal(number % 13).scaleb(-12)
        history.append(
            events.Charge(
                START + number * step, user, cost, model, 1000 + number % 500, 200, 0, f"r{number}"
            )
        )
        spent[user] = spent.get(user, Decimal(0)) + cost
        if model is not None:
            per = models.setdefault(user, {})
            per[model] = per.get(model, Decimal(0)) + cost
    budgets = [
        rules.new_budget(
            user,
            Decimal(1000),
            START - timedelta(days=1),
            current_cost=total,
            model_cost=models.get(user, {}),
        )
        for user, total in spent.items()
    ]
    creates = [
        events.Create(START - timedelta(days=1), b.user, b.total_budget, None, Decimal(0))
        for b in budgets
    ]
    snap = snapshot.snapshot(PROJECT, budgets, None, [], [], [*creates, *history])
    store = ledger.store  # type: ignore[attr-defined]
    store.restore(snap, START + SPAN + timedelta(days=1), replace=True)
    return sum(spent.values(), Decimal(0))


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall time, and CPU time (this process's and its children's: on a shared machine the
    wall time also counts the others' work)."""
    before = _cpu()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started, _cpu() - before


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", help="run on this PostgreSQL database instead")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument(
        "--compare",
        metavar="PYTHON",
        help="also run each process case with the budgetctl beside this interpreter (another "
        "tree's venv, say ../before/.venv/bin/python), interleaved with this one's",
    )
    options = parser.parse_args()

    from budgetctl import reports
    from budgetctl.ledger import Ledger

    with tempfile.TemporaryDirectory(prefix="budgetctl-bench-report-") as folder:
        env = {**os.environ, "BUDGETCTL_DATA_DIR": folder, "TZ": "UTC"}
        env.pop("BUDGETCTL_SERVER", None)
        # Bytecode is written by the warm-up run and used after, as in an installed package
        # (without it each process compiled budgetctl again: 0.1 s of every figure before).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if options.database_url:
            env["BUDGETCTL_DATABASE_URL"] = options.database_url
        else:
            env.pop("BUDGETCTL_DATABASE_URL", None)
        now = START + SPAN + timedelta(days=1)
        ledger = Ledger(
            PROJECT, folder, database_url=options.database_url, clock=lambda: now, server=""
        )
        began = time.perf_counter()
        total = seed(ledger, options.charges)
        seeded = time.perf_counter() - began
        if options.database_url:
            # The planner's statistics, as autovacuum gathers them within a minute of a restore:
            # without them it sorts the history on disk instead of reading it in index order.
            import psycopg

            with psycopg.connect(options.database_url, autocommit=True) as conn:
                conn.execute("ANALYZE budgetctl_history")

        exported = sum(r.cost for r in reports.export(ledger))
        assert exported == total == reports.report(ledger).total.cost, (exported, total)
        tenth = (START + SPAN * 0.9).isoformat()
        cli = [str(BUDGETCTL), "-p", PROJECT]

        def process(command: list[str], args: list[str]) -> Callable[[], object]:
            return lambda: subprocess.run(
                [*command, *args], env=env, stdout=subprocess.PIPE, check=True
            )

        def library_export() -> None:
            reports.write_csv(reports.export(ledger), io.StringIO())

        commands = {
            "report --by user": ["report", "--by", "user"],
            "report --by model": ["report", "--by", "model"],
            "report --by day": ["report", "--by", "day"],
            "report --by day --tz Europe/Paris": ["report", "--by", "day", "--tz", "Europe/Paris"],
            "report --json": ["report", "--json"],
            "export (csv)": ["export"],
            "report --since (last 10%)": ["report", "--since", tenth],
        }
        other = options.compare and [str(Path(options.compare).parent / "budgetctl"), "-p", PROJECT]
        cases: dict[str, Callable[[], object]] = {}
        for name, args in commands.items():
            cases[f"budgetctl {name}"] = process(cli, args)
            if other:  # the other tree's process right after this one's
                cases[f"  compared: {name}"] = process(other, args)
        cases.update(
            {
                "library: reports.report(by=user)": lambda: reports.report(ledger, "user"),
                "library: reports.report(by=day)": lambda: reports.report(ledger, "day"),
                "library: export to CSV": library_export,
            }
        )
        for run in cases.values():  # warm-up: bytecode compiled, the file in the page cache
            run()
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.runs):
            for name, run in cases.items():
                wall, used = timed(run)
                times[name].append(wall)
                cpu[name].append(used)
        result = {
            "charges": options.charges,
            "store": "postgres" if options.database_url else "json",
            "seed_s": round(seeded, 2),
            "total": str(total),
            "machine": machine(),
            "load_average": os.getloadavg(),
            "cases": {
                name: {**summary(t), "cpu_median_ms": 1000 * statistics.median(cpu[name])}
                for name, t in times.items()
            },
        }
    if options.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"budgetctl report/export, {options.charges:,} charges, {result['store']} store, "
        f"{options.runs} runs (total {total} USD, exact)"
    )
    load = ", ".join(f"{x:.1f}" for x in result["load_average"])  # type: ignore[attr-defined]
    print(f"load average {load} on {result['machine']['cpus']} CPUs")  # type: ignore[index]
    print(f"{'case':<46} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}")
    for name, row in result["cases"].items():  # type: ignore[attr-defined]
        print(
            f"{name:<46} {row['median_ms'] / 1000:>9.3f} {row['min_ms'] / 1000:>7.3f} "
            f"{row['max_ms'] / 1000:>7.3f} {row['cpu_median_ms'] / 1000:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
