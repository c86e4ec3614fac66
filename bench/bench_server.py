"""``budgetctl serve`` measured: charges per second and latency through the server, beside the
direct store, and the cost of client mode on a one-shot ``update-cost``.

    python bench/bench_server.py [--seconds 4] [--clients 1,8,32] [--store json,postgres]
                                 [--oneshot-runs 20]

a. throughput: for each store (a fresh data dir; a fresh PostgreSQL schema, dropped after) and
   each number of clients, that many client *processes* charge for ``--seconds`` (started
   together after all are ready): through a real ``budgetctl serve`` (each process its own
   ``RemoteLedger``, ``BUDGETCTL_SERVER``), and straight on the store (each its own ``Ledger``
   on the same data dir or database), one after the other in the same run. Each client charges
   its own user (the store still orders every write: the data dir's lock, the database's rows).
   Reported: charges/s over the window, p50 and p99 of each call's latency.
b. one-shot: ``budgetctl update-cost alice --cost 0.01 -q`` as a shell script runs it, on the
   local data dir and in client mode (the server on the same data dir's kind, same machine),
   interleaved (ABAB...), medians and p90.

The machine's load average is printed before and after: on a shared machine it is the noise.
Results: printed as Markdown, and saved to bench/results/server-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PROJECT = "bench"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(message: str) -> None:
    print(f"[bench_server] {message}", file=sys.stderr, flush=True)


def budgetctl() -> str:
    beside = Path(sys.executable).parent / "budgetctl"
    found = str(beside) if beside.exists() else shutil.which("budgetctl")
    if not found:
        raise SystemExit("budgetctl is not installed here: run `pip install -e '.[server]'`")
    return found


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
    env["NO_COLOR"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --- a worker: one client process ------------------------------------------------------------


def worker(mode: str, where: str, user: str, seconds: float) -> None:
    """Charge ``user`` for ``seconds`` once told to go; print the latencies as JSON."""
    from budgetctl import Ledger

    if mode == "server":
        book = Ledger(PROJECT, server=where)
    elif mode == "postgres":
        book = Ledger(PROJECT, database_url=where, server="")
    else:
        book = Ledger(PROJECT, where, server="")
    book.get(user)  # connected, imports done
    print("ready", flush=True)
    sys.stdin.readline()
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        if start >= end:
            break
        book.charge_cost(user, "0.000123", model="gpt-4o")
        latencies.append(time.perf_counter() - start)
    print(json.dumps(latencies), flush=True)


def run_clients(mode: str, where: str, clients: int, seconds: float) -> dict[str, Any]:
    env = clean_env()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", mode, where, f"u{n}", str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(clients)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a {mode} client did not start: {line!r}")
    for proc in procs:  # go, all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    latencies: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"a {mode} client failed ({proc.returncode})")
        latencies.extend(json.loads(out.strip().splitlines()[-1]))
    return {
        "clients": clients,
        "charges": len(latencies),
        "per_second": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


# --- stores and the server ---------------------------------------------------------------------


@contextmanager
def fresh_store(kind: str, workdir: Path) -> Iterator[tuple[list[str], str]]:
    """``(serve options, where)`` of a fresh store: a data dir, or a new schema's URL."""
    if kind == "json":
        data_dir = workdir / "data"
        yield ["--data-dir", str(data_dir)], str(data_dir)
        return
    import psycopg

    base = os.environ.get("BUDGETCTL_TEST_DATABASE_URL") or DEFAULT_DATABASE
    schema = f"bc_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base else "?"
    url = f"{base}{joiner}options={quote(f'-csearch_path={schema}')}"
    try:
        from budgetctl.store.postgres.store import Database

        database = Database(url)
        database.migrate()
        database.close()
        yield ["--database-url", url], url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def serving(options: list[str], logfile: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with logfile.open("wb") as sink:
        server = subprocess.Popen(
            [budgetctl(), "serve", "--port", str(port), *options], stderr=sink, env=clean_env()
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        f"serve did not start: {logfile.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def create_users(kind: str, where: str, users: int) -> None:
    from budgetctl import Ledger

    if kind == "json":
        book = Ledger(PROJECT, where, server="")
    else:
        book = Ledger(PROJECT, database_url=where, server="")
    for n in range(users):
        book.create(f"u{n}", "1000000", duration="monthly")
    book.create("alice", "1000000", duration="monthly")


def throughput(kind: str, counts: list[int], seconds: float, workdir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with fresh_store(kind, workdir) as (options, where):
        create_users(kind, where, max(counts))
        direct_mode = "postgres" if kind == "postgres" else "json"
        with serving(options, workdir / f"serve-{kind}.log") as url:
            for clients in counts:
                # the direct store and the server one after the other, in an order that alternates
                pair = [("server", url), ("direct", where)]
                if clients % 2 == 0:
                    pair.reverse()
                for label, target in pair:
                    mode = "server" if label == "server" else direct_mode
                    log(f"{kind}: {clients} client(s), {label}")
                    row = run_clients(mode, target, clients, seconds)
                    rows.append({"store": kind, "via": label, **row})
    return rows


# --- one-shot update-cost ---------------------------------------------------------------------


def oneshot(runs: int, workdir: Path) -> dict[str, Any]:
    """``update-cost`` on the local data dir against client mode, interleaved."""
    local_dir = workdir / "oneshot-local"
    served_dir = workdir / "oneshot-served"
    create_users("json", str(local_dir), 0)
    create_users("json", str(served_dir), 0)
    times: dict[str, list[float]] = {"local": [], "client": []}
    argv = [budgetctl(), "update-cost", "alice", "--cost", "0.01", "-q", "-p", PROJECT]
    with serving(["--data-dir", str(served_dir)], workdir / "serve-oneshot.log") as url:
        envs = {
            "local": {**clean_env(), "BUDGETCTL_DATA_DIR": str(local_dir)},
            "client": {**clean_env(), "BUDGETCTL_SERVER": url},
        }
        for name in ("local", "client"):  # one warm-up each, not counted
            subprocess.run(argv, env=envs[name], check=True, capture_output=True)
        for round_no in range(runs):
            order = ["local", "client"] if round_no % 2 == 0 else ["client", "local"]
            for name in order:
                start = time.perf_counter()
                subprocess.run(argv, env=envs[name], check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    return {
        name: {
            "runs": len(values),
            "median_ms": statistics.median(values) * 1000,
            "p90_ms": percentile(values, 0.9) * 1000,
            "min_ms": min(values) * 1000,
            "max_ms": max(values) * 1000,
        }
        for name, values in times.items()
    }


# --- main --------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"load average before {result['load_before']}, after {result['load_after']} "
        f"({os.cpu_count()} CPUs); {result['seconds']} s per cell",
        "",
        "| store | clients | via | charges/s | p50 ms | p99 ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in sorted(
        result["throughput"], key=lambda r: (r["store"], r["clients"], r["via"] != "direct")
    ):
        lines.append(
            f"| {row['store']} | {row['clients']} | {row['via']} | {row['per_second']:.0f} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    if result.get("oneshot"):
        lines += ["", "| one-shot update-cost | runs | median ms | p90 ms | min-max ms |"]
        lines.append("|---|---:|---:|---:|---|")
        for name, row in result["oneshot"].items():
            lines.append(
                f"| {name} | {row['runs']} | {row['median_ms']:.0f} | {row['p90_ms']:.0f} "
                f"| {row['min_ms']:.0f}-{row['max_ms']:.0f} |"
            )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--store", default="json,postgres")
    parser.add_argument("--oneshot-runs", type=int, default=20)
    args = parser.parse_args()
    counts = [int(x) for x in args.clients.split(",")]
    result: dict[str, Any] = {
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "seconds": args.seconds,
        "throughput": [],
    }
    with tempfile.TemporaryDirectory(prefix="budgetctl-bench-server-") as tmp:
        workdir = Path(tmp)
        for kind in args.store.split(","):
            result["throughput"] += throughput(kind, counts, args.seconds, workdir)
        if args.oneshot_runs:
            log("one-shot update-cost, local and client mode, interleaved")
            result["oneshot"] = oneshot(args.oneshot_runs, workdir)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"server-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
