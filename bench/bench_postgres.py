#!/usr/bin/env python3
"""Benchmark of the PostgreSQL store against a raw-SQL floor, side by side in one run (a report).

Throughput: N client processes (1, 8, 32), each with its own connection, charge 0.001 as fast as
they can for a fixed time, on one hot user or on 10,000 users at random, with and without a
project cap. Two clients are measured alike, point by point, interleaved (the order alternates):

- **floor**: a minimal psycopg 3 script; per charge ONE statement in autocommit, a conditional
  ``UPDATE ... RETURNING`` of the user's row (and, with a cap, of the cap's row) with the history
  insert in the same statement (a CTE), on budgetctl's own tables;
- **budgetctl**: ``Ledger(project, database_url=URL).charge_cost(user, "0.001", enforce=True)``
  (enforce: refused when it does not fit, as the floor's conditional update; nothing is refused
  here, the budgets are large).

Every point runs in its own new schema (``bc_bench_<random>``: migrated, filled, dropped after),
so both clients start from the same rows. Users and the cap have monthly budgets.

One-shot latency: ``budgetctl -p bench update-cost u00000 --cost 0.001`` as a fresh process with
BUDGETCTL_DATABASE_URL set, against the same command on the JSON store, interleaved.

    python bench/bench_postgres.py [--seconds 6] [--clients 1,8,32] [--rounds 1]
        [--cli-runs 15] [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--out docs/performance-postgres.json] [--plot docs/performance-postgres.png]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
BUDGETCTL = Path(sys.executable).parent / "budgetctl"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROJECT = "bench"
COST = "0.001"
HOT = "u00000"

FLOOR_SQL = """
WITH u AS (
    UPDATE budgetctl_budgets SET current_cost = current_cost + %(cost)s
    WHERE project = %(project)s AND name = %(user)s AND current_cost + %(cost)s <= total_budget
    RETURNING name, current_cost),
h AS (
    INSERT INTO budgetctl_history (project, at, tx, ord, name, type, cost, event)
    SELECT %(project)s, clock_timestamp(), %(tx)s, 0, name, 'charge', %(cost)s, %(event)s
    FROM u)
SELECT current_cost FROM u
"""

FLOOR_CAP_SQL = """
WITH u AS (
    UPDATE budgetctl_budgets SET current_cost = current_cost + %(cost)s
    WHERE project = %(project)s AND name = %(user)s AND current_cost + %(cost)s <= total_budget
    RETURNING name, current_cost),
c AS (
    UPDATE budgetctl_caps SET current_cost = current_cost + %(cost)s
    WHERE project = %(project)s AND current_cost + %(cost)s <= total_budget
    AND EXISTS (SELECT 1 FROM u)
    RETURNING current_cost),
h AS (
    INSERT INTO budgetctl_history (project, at, tx, ord, name, type, cost, event)
    SELECT %(project)s, clock_timestamp(), %(tx)s, 0, u.name, 'charge', %(cost)s, %(event)s
    FROM u, c)
SELECT u.current_cost, c.current_cost FROM u, c
"""


def with_schema(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


def user_names(users: int) -> list[str]:
    return [f"u{i:05d}" for i in range(users)]


# --- one point's database ----------------------------------------------------------------------


def make_schema(base: str, users: int, cap: bool) -> tuple[str, str]:
    """A new schema with budgetctl's tables, ``users`` monthly budgets and maybe a cap."""
    import psycopg

    from budgetctl.ledger import Ledger
    from budgetctl.store.postgres.store import Database

    name = f"bc_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    url = with_schema(base, name)
    database = Database(url)
    database.migrate()
    database.close()
    ledger = Ledger(PROJECT, database_url=url)
    ledger.create(HOT, "1000000000", duration="monthly")
    if cap:
        ledger.set_cap("1000000000", duration="monthly")
    with psycopg.connect(url, autocommit=True) as conn:
        # the other users: copies of the first one's row (same period, same budget)
        # (every column named: a row written behind budgetctl's back must be as its own are)
        columns = (
            "total_budget, current_cost, model_cost, duration, timezone, start_at, created_at, "
            "period_start, next_reset_at, alert_at, held, capped"
        )
        conn.execute(
            f"INSERT INTO budgetctl_budgets (project, name, {columns}) "
            f"SELECT project, 'u' || lpad(i::text, 5, '0'), {columns} FROM budgetctl_budgets, "
            "generate_series(1, %s) AS i WHERE project = %s AND name = %s",
            (users - 1, PROJECT, HOT),
        )
        conn.execute("VACUUM ANALYZE budgetctl_budgets")
        conn.execute("ANALYZE")
    _close(ledger)
    return name, url


def _close(ledger: Any) -> None:
    store = getattr(ledger, "store", None)
    db = getattr(store, "db", None)
    if db is not None:
        db.close()


def scalar(conn: Any, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def drop_schema(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def check_totals(url: str, charges: int, cap: bool) -> None:
    """Every acknowledged charge is in the rows (lost nothing, applied nothing twice)."""
    from decimal import Decimal

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        spent = scalar(conn, "SELECT sum(current_cost) FROM budgetctl_budgets")
        rows = scalar(conn, "SELECT count(*) FROM budgetctl_history WHERE type = 'charge'")
        capped = conn.execute("SELECT current_cost FROM budgetctl_caps").fetchone()
    if rows != charges or spent != Decimal(COST) * charges:
        raise SystemExit(f"totals disagree: {charges} charges, {rows} history rows, {spent} spent")
    if cap and (capped is None or capped[0] != spent):
        raise SystemExit(f"the cap's spend {capped} is not the users' {spent}")


# --- the clients -------------------------------------------------------------------------------


def client(
    kind: str,
    url: str,
    users: int,
    cap: bool,
    seconds: float,
    seed: int,
    ready: Any,
    results: Any,
) -> None:
    rng = random.Random(seed)
    names = user_names(users)
    if kind == "floor":
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        sql = FLOOR_CAP_SQL if cap else FLOOR_SQL

        def charge(user: str) -> None:
            now = time.time()
            event = (
                f'{{"type":"charge","time":"{now:.6f}","user":"{user}","model":null,'
                f'"cost":"{COST}","prompt_tokens":0,"completion_tokens":0,"cached_tokens":0}}'
            )
            row = conn.execute(
                sql,
                {"cost": COST, "project": PROJECT, "user": user, "tx": uuid.uuid4().hex,
                 "event": event},
            ).fetchone()  # fmt: skip
            if row is None:
                raise RuntimeError("the floor's charge was refused")

    else:
        if kind == "before":  # an older budgetctl's source tree, given with --before
            sys.path.insert(0, os.environ["BENCH_BEFORE"])
        from budgetctl.ledger import Ledger

        ledger = Ledger(PROJECT, database_url=url)

        def charge(user: str) -> None:
            ledger.charge_cost(user, COST, enforce=True)

    charge(names[rng.randrange(users)])  # connect, check the schema, warm up
    ready.wait()
    latencies = []
    start = time.perf_counter()
    end = start + seconds
    count = 0
    while True:
        before = time.perf_counter()
        if before >= end:
            break
        charge(names[rng.randrange(users)])
        after = time.perf_counter()
        latencies.append(after - before)
        count += 1
    results.put((count, after - start if count else seconds, latencies))


def measure(
    kind: str, base: str, users: int, cap: bool, clients: int, seconds: float
) -> dict[str, Any]:
    name, url = make_schema(base, users, cap)
    try:
        ctx = mp.get_context("spawn")
        ready = ctx.Barrier(clients + 1)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=client,
                args=(kind, url, users, cap, seconds, random.randrange(2**32), ready, results),
            )
            for _ in range(clients)
        ]
        for proc in procs:
            proc.start()
        ready.wait(timeout=120)
        load = os.getloadavg()[0]
        got = [results.get(timeout=seconds + 120) for _ in procs]
        for proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"a {kind} client failed (exit {proc.exitcode})")
        done = sum(c for c, _, _ in got)
        elapsed = max(e for _, e, _ in got)
        lat = sorted(x for _, _, ls in got for x in ls)
        check_totals(url, done + clients, cap)  # + the warm-up charges
    finally:
        drop_schema(base, name)
    return {
        "kind": kind,
        "users": users,
        "cap": cap,
        "clients": clients,
        "charges": done,
        "seconds": elapsed,
        "per_s": done / elapsed,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        "load1": load,
    }


# --- one-shot command --------------------------------------------------------------------------


def one_shot(base: str, runs: int) -> dict[str, Any]:
    """Fresh ``budgetctl update-cost`` processes on PostgreSQL and on the JSON store."""
    name, url = make_schema(base, 1, cap=False)
    data_dir = tempfile.mkdtemp(prefix="bc_bench_json_")
    plain = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
    command = [str(BUDGETCTL), "-p", PROJECT, "update-cost", HOT, "--cost", COST, "-q"]
    envs = {
        "postgres": {**plain, "BUDGETCTL_DATABASE_URL": url},
        "json": {**plain, "BUDGETCTL_DATA_DIR": data_dir},
    }
    times: dict[str, list[float]] = {kind: [] for kind in envs}
    try:
        subprocess.run(
            [str(BUDGETCTL), "-p", PROJECT, "create", HOT, "--budget", "1000000000",
             "--duration", "monthly", "-q"],
            env=envs["json"], check=True, capture_output=True,
        )  # fmt: skip
        for env in envs.values():  # warm-up: bytecode, caches
            subprocess.run(command, env=env, check=True, capture_output=True)
        for i in range(runs):
            for kind in envs if i % 2 == 0 else reversed(list(envs)):
                before = time.perf_counter()
                subprocess.run(command, env=envs[kind], check=True, capture_output=True)
                times[kind].append(time.perf_counter() - before)
    finally:
        drop_schema(base, name)
        subprocess.run(["rm", "-rf", data_dir], check=False)
    return {
        kind: {
            "median_ms": 1000 * statistics.median(ts),
            "min_ms": 1000 * min(ts),
            "max_ms": 1000 * max(ts),
            "runs": len(ts),
        }
        for kind, ts in times.items()
    }


# --- report ------------------------------------------------------------------------------------


def machine(base: str) -> dict[str, Any]:
    import psycopg

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(base, autocommit=True) as conn:
        server = scalar(conn, "SHOW server_version")
        sync = scalar(conn, "SHOW synchronous_commit")
        fsync = scalar(conn, "SHOW fsync")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "psycopg": psycopg.__version__,
        "postgresql": server,
        "synchronous_commit": sync,
        "fsync": fsync,
    }


def table(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (workload, cap, clients): both clients' median rate over the rounds, ratio."""
    rows = []
    keys = sorted({(p["users"], p["cap"], p["clients"]) for p in points})
    for users, cap, clients in keys:
        rate = {}
        for kind in ("floor", "before", "budgetctl"):
            found = [
                p
                for p in points
                if (p["users"], p["cap"], p["clients"], p["kind"]) == (users, cap, clients, kind)
            ]
            if not found:
                continue
            rate[kind] = statistics.median(p["per_s"] for p in found)
            rate[kind + "_p50_ms"] = statistics.median(p["p50_ms"] for p in found)
        if "before" in rate:
            before = {
                "before_per_s": rate["before"],
                "before_ratio": rate["before"] / rate["floor"],
            }
        else:
            before = {}
        rows.append(
            {
                **before,
                "users": users,
                "cap": cap,
                "clients": clients,
                "floor_per_s": rate["floor"],
                "budgetctl_per_s": rate["budgetctl"],
                "ratio": rate["budgetctl"] / rate["floor"],
                "floor_p50_ms": rate["floor_p50_ms"],
                "budgetctl_p50_ms": rate["budgetctl_p50_ms"],
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({(r["users"], r["cap"]) for r in rows})
    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 3.4), squeeze=False)
    for ax, (users, cap) in zip(axes[0], cases, strict=True):
        mine = [r for r in rows if (r["users"], r["cap"]) == (users, cap)]
        xs = [r["clients"] for r in mine]
        ax.plot(xs, [r["floor_per_s"] for r in mine], "o--", label="raw SQL floor")
        if "before_per_s" in mine[0]:
            ax.plot(xs, [r["before_per_s"] for r in mine], "x:", label="budgetctl before")
        ax.plot(xs, [r["budgetctl_per_s"] for r in mine], "s-", label="budgetctl")
        for r in mine:
            where = (r["clients"], r["budgetctl_per_s"])
            ax.annotate(f"{r['ratio']:.2f}", where, textcoords="offset points", xytext=(0, -12),
                        ha="center", fontsize=7)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_ylim(bottom=0)
        who = "1 hot user" if users == 1 else f"{users:,} users"
        ax.set_title(f"{who}, {'cap' if cap else 'no cap'}", fontsize=9)
        ax.set_xlabel("clients (processes)")
    axes[0][0].set_ylabel("charges/s")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("PostgreSQL: budgetctl vs raw-SQL floor (labels: ratio)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("BUDGETCTL_BENCH_DATABASE_URL") or DEFAULT_URL
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="per point (default 6)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--users", default="1,10000", help="workloads: number of users")
    parser.add_argument("--caps", default="no,yes", help="without and/or with a project cap")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every point")
    parser.add_argument("--cli-runs", type=int, default=15, help="one-shot runs (0: skip)")
    parser.add_argument("--only", choices=("floor", "budgetctl"), help="measure one client")
    parser.add_argument(
        "--before",
        type=Path,
        help="also measure the budgetctl package in this directory (e.g. git archive OLD "
        "budgetctl | tar -x -C DIR), interleaved, as 'before'",
    )
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    parser.add_argument("--plot", type=Path, help="write the plot here (PNG)")
    args = parser.parse_args()

    clients = [int(c) for c in args.clients.split(",")]
    workloads = [int(u) for u in args.users.split(",")]
    caps = [c == "yes" for c in args.caps.split(",")]
    kinds = [args.only] if args.only else ["floor", "budgetctl"]
    if args.before:
        os.environ["BENCH_BEFORE"] = str(args.before.resolve())
        kinds.insert(1, "before")
    report: dict[str, Any] = {"machine": machine(args.url), "seconds": args.seconds}
    report["started"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    report["load_before"] = os.getloadavg()
    points = []
    flip = False
    for _ in range(args.rounds):
        for users in workloads:
            for cap in caps:
                for n in clients:
                    for kind in kinds[::-1] if flip else kinds:
                        point = measure(kind, args.url, users, cap, n, args.seconds)
                        points.append(point)
                        print(
                            f"{kind:>9} users={users:<5} cap={cap!s:<5} clients={n:<2} "
                            f"{point['per_s']:8.1f}/s  p50 {point['p50_ms']:.1f} ms  "
                            f"load {point['load1']:.2f}",
                            flush=True,
                        )
                    flip = not flip
    report["points"] = points
    report["load_after"] = os.getloadavg()
    if "floor" in kinds and "budgetctl" in kinds:
        report["table"] = table(points)
        for row in report["table"]:
            print(
                f"users={row['users']:<5} cap={row['cap']!s:<5} clients={row['clients']:<2} "
                f"floor {row['floor_per_s']:8.1f}/s  budgetctl {row['budgetctl_per_s']:8.1f}/s  "
                f"ratio {row['ratio']:.2f}"
                + (f"  (before: {row['before_ratio']:.2f})" if "before_ratio" in row else "")
            )
    if args.cli_runs:
        report["one_shot"] = one_shot(args.url, args.cli_runs)
        for kind, fig in report["one_shot"].items():
            print(f"one-shot update-cost on {kind}: median {fig['median_ms']:.1f} ms "
                  f"({fig['min_ms']:.1f}-{fig['max_ms']:.1f})")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot and "table" in report:
        plot(report["table"], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
