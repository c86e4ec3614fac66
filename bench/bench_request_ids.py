#!/usr/bin/env python3
"""Benchmark: a charge with 0, 100,000 and 1,000,000 remembered request ids (a report, not a test).

budgetctl 0.1 kept every remembered id in the state file, so every charge parsed and rewrote all
of them (issue 8 item 15: 2.2 s and 367 MB at a million ids, 11 days at one charge a second). Ids
now live in ``<project>+request-ids.sqlite``, pointing into the history; a charge reads one entry.
Target (docs/performance.md): a charge with a million ids within 1.5x of one with none.

Each project has 1,000 lifetime budgets and N charges with ids, one a second up to now (so none is
past the 90 days), written as a real project's would be: charge events in the history (the state
counting them and their spend), and the index built from that history by the store's own code.
Then, interleaved over the sizes, each a fresh process (``bench/launch.py``: wall time and the
process's own peak RSS):

- ``budgetctl update-cost USER --cost 0.25 --request-id NEW -q``: a new id (looked up, then
  remembered: one index row written, expired rows deleted);
- the same with an id already charged (a retry: a duplicate, nothing written);
- ``budgetctl update-cost USER --cost 0.25 -q``: no id, for reference;

and the first of them in one warm process through ``Ledger.charge_cost`` (no interpreter start).

    python bench/bench_request_ids.py [--sizes 0,100000,1000000] [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import harness
from harness import Sample, fmt_bytes, run_child

REPO = Path(__file__).resolve().parents[1]
BUDGETCTL = Path(sys.executable).parent / "budgetctl"
PROJECT = "bench"
USERS = 1000
COST = Decimal("0.000001")  # each remembered charge's cost
CHUNK = 50_000  # history lines written at a time
FILES = {"state": ".json", "history": "+history.jsonl", "index": "+request-ids.sqlite"}


def user_name(i: int) -> str:
    return f"user-{i % USERS:06d}@example.com"


def request_id(i: int) -> str:
    return f"chatcmpl-{i:012d}BenchRemembered"  # 38 characters, as OpenAI's


def make_project(data_dir: Path, ids: int) -> None:
    """A project of USERS lifetime budgets and ``ids`` remembered charges."""
    sys.path.insert(0, str(REPO))
    from budgetctl.core import rules
    from budgetctl.core.money import to_text
    from budgetctl.core.periods import format_utc
    from budgetctl.store import history
    from budgetctl.store.json_store import JsonStore
    from budgetctl.store.request_ids import RequestIdIndex

    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(seconds=ids + 60)
    store = JsonStore(PROJECT, data_dir)
    budgets = [rules.new_budget(user_name(i), Decimal(1000), start) for i in range(USERS)]
    store.create_many(budgets)
    doc = json.loads(store.path.read_bytes())
    size = doc["history"]["size"]
    counts = [0] * USERS
    with open(store.history_path, "ab") as out:
        for first in range(0, ids, CHUNK):
            events = []
            for i in range(first, min(first + CHUNK, ids)):
                counts[i % USERS] += 1
                events.append(
                    {
                        "type": "charge",
                        "time": format_utc(start + timedelta(seconds=i)),
                        "user": user_name(i),
                        "model": None,
                        "cost": to_text(COST),
                        "prompt_tokens": 0,
                        "completion_tokens": 0,
                        "cached_tokens": 0,
                        "request_id": request_id(i),
                    }
                )
            lines = history.encode_lines(events)
            out.write(lines)
            size += len(lines)
        out.flush()
        os.fsync(out.fileno())
    for i, count in enumerate(counts):
        doc["users"][user_name(i)]["current_cost"] = to_text(COST * count)
    doc["history"]["size"] = size
    store.path.write_bytes(history.ENCODER.encode(doc).encode("utf-8"))
    index = RequestIdIndex(store.request_ids_path, store.history_path)
    index.build(size, {})
    index.close()


def in_process(dirs: dict[int, Path], runs: int, stamp: str) -> dict[int, list[float]]:
    """``Ledger.charge_cost`` with a new id in each project, ``runs`` rounds in this process,
    interleaved over the projects (seconds each)."""
    from budgetctl.ledger import Ledger

    ledgers = {size: Ledger(PROJECT, folder) for size, folder in dirs.items()}
    seconds: dict[int, list[float]] = {size: [] for size in dirs}
    for k in range(runs + 1):  # round 0 brings each project's files into the OS cache
        for size, ledger in ledgers.items():
            begin = time.perf_counter()
            result = ledger.charge_cost(user_name(500), "0.25", request_id=f"in-{stamp}-{k}")
            if k:
                seconds[size].append(time.perf_counter() - begin)
            assert not result.duplicate
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,100000,1000000", help="remembered ids per project")
    parser.add_argument("--runs", type=int, default=15, help="runs of each case (15)")
    parser.add_argument("--in-process-runs", type=int, default=60, help="in-process rounds (60)")
    parser.add_argument(
        "--work-dir", help="keep the projects here and reuse them next time (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if not BUDGETCTL.exists():
        sys.exit(f"no budgetctl script next to {sys.executable}: pip install -e . first")
    sizes = [int(size) for size in args.sizes.split(",")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
    env["NO_COLOR"] = "1"
    report: dict[str, Any] = {"sizes": {}}
    stamp = str(time.time_ns())  # ids new in this run, also in projects kept from an earlier one
    with tempfile.TemporaryDirectory(prefix="budgetctl-ids-") as tmp:
        root = Path(args.work_dir or tmp)
        report["machine"] = harness.machine(root)
        dirs = {size: root / f"ids-{size}" for size in sizes}
        for size in sizes:
            begin = time.perf_counter()
            if not (dirs[size] / f"{PROJECT}.json").exists():
                make_project(dirs[size], size)
                harness.log(f"{size:,} ids: generated in {time.perf_counter() - begin:.1f} s")
            report["sizes"][size] = {
                "files": {
                    kind: (dirs[size] / f"{PROJECT}{suffix}").stat().st_size
                    for kind, suffix in FILES.items()
                }
            }
        samples: dict[tuple[int, str], Sample] = {}
        for run in range(args.runs + 1):  # run 0 warms the OS cache and compiles bytecode
            for size in sizes:
                base = [str(BUDGETCTL), "update-cost", user_name(500), "-p", PROJECT]
                base += ["--data-dir", str(dirs[size]), "-q", "--cost"]
                old = size // 2 if size else None
                commands = {
                    "new id": [*base, "0.25", "--request-id", f"new-{stamp}-{run}"],
                    "no id": [*base, "0.25"],
                }
                if old is not None:
                    retry = [str(BUDGETCTL), "update-cost", user_name(old), "-p", PROJECT]
                    retry += ["--data-dir", str(dirs[size]), "--cost", to_cost(), "--json"]
                    commands["retry (duplicate)"] = [*retry, "--request-id", request_id(old)]
                for case, argv in commands.items():
                    seconds, rss, out = run_child(argv, env=env)
                    if case.startswith("retry"):
                        assert json.loads(out)["duplicate"] is True
                    if run:
                        sample = samples.setdefault((size, case), Sample(f"{size} {case}"))
                        sample.seconds.append(seconds)
                        sample.rss_mib.append(rss)
        for size, seconds in in_process(dirs, args.in_process_runs, stamp).items():
            report["sizes"][size]["in_process_new_id_ms"] = summary(seconds)
    for (size, case), sample in samples.items():
        report["sizes"][size][case] = {
            "median_ms": 1000 * sample.median,
            "min_ms": 1000 * sample.spread[0],
            "max_ms": 1000 * sample.spread[1],
            "rss_median_mib": sample.rss_median,
        }
    base_cold = report["sizes"][sizes[0]]["new id"]["median_ms"]
    base_warm = report["sizes"][sizes[0]]["in_process_new_id_ms"]["median_ms"]
    for size in sizes:
        row = report["sizes"][size]
        row["ratio_cold"] = row["new id"]["median_ms"] / base_cold
        row["ratio_in_process"] = row["in_process_new_id_ms"]["median_ms"] / base_warm
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(
        "| remembered ids | state / history / index | new id (cold) | retry, a duplicate (cold) "
        "| no id (cold) | peak RSS, new id | new id, in process | vs 0 ids (cold / in process) |"
    )
    print("|---:|---|---|---|---|---:|---|---|")
    for size in sizes:
        row = report["sizes"][size]
        files = " / ".join(fmt_bytes(row["files"][k]) for k in ("state", "history", "index"))
        retry_cell = ms(row["retry (duplicate)"]) if "retry (duplicate)" in row else "-"
        print(
            f"| {size:,} | {files} | {ms(row['new id'])} | {retry_cell} | {ms(row['no id'])} | "
            f"{row['new id']['rss_median_mib']:.1f} MiB | {ms(row['in_process_new_id_ms'])} | "
            f"{row['ratio_cold']:.2f}x / {row['ratio_in_process']:.2f}x |"
        )
    return 0


def to_cost() -> str:
    return format(COST, "f")


def ms(row: dict[str, float]) -> str:
    return f"{row['median_ms']:.1f} ms ({row['min_ms']:.1f}-{row['max_ms']:.1f})"


def summary(seconds: list[float]) -> dict[str, float]:
    values = [1000 * s for s in seconds]
    return {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values)}


if __name__ == "__main__":
    sys.exit(main())
