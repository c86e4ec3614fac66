#!/usr/bin/env python3
"""Benchmark of budgetctl's costing layer on this machine (a report, not a test).

Cold processes: each case is a fresh ``python -c ...`` run several times (interleaved, so that
machine noise falls on every case alike); the wall time of the whole process is reported as median
and spread. Compared:

- counting a short text with o200k_base through budgetctl, against bare tiktoken building the same
  Encoding from the same bundled file (``tiktoken.load.load_tiktoken_bpe`` with
  ``tiktoken_ext.openai_public``'s definition), the way a careful user of tiktoken would offline;
- pricing one model (cold: the price table loaded in a fresh process; and in-process: the table
  loaded again and again).

    python bench/bench_costing.py [--runs N] [--json]

Targets: budgetctl's cold count within 1.2x of bare tiktoken; the price table loads in < 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXT = "How much will this prompt cost? Count it before sending it to gpt-4o, please."
O200K_FILE = REPO / "budgetctl" / "costing" / "data" / "o200k_base.tiktoken"

CASES = {
    "python -c pass": "pass",
    "import budgetctl.costing": "import budgetctl.costing",
    "budgetctl: count (o200k_base)": (
        "from budgetctl.costing import load_costing\n"
        f"assert load_costing().count_text('gpt-4o', {TEXT!r}).tokens > 0"
    ),
    "bare tiktoken: count (o200k_base)": (
        "import tiktoken, tiktoken.load, tiktoken_ext.openai_public as public\n"
        "def local(url, expected_hash=None):\n"
        f"    return tiktoken.load.load_tiktoken_bpe({str(O200K_FILE)!r}, expected_hash)\n"
        "public.load_tiktoken_bpe = local\n"
        "encoding = tiktoken.Encoding(**public.o200k_base())\n"
        f"assert len(encoding.encode_ordinary({TEXT!r})) > 0"
    ),
    "budgetctl: price one model": (
        "from budgetctl.costing import load_costing\nload_costing().price('gpt-4o')"
    ),
}


def cold_times(runs: int) -> dict[str, list[float]]:
    """Wall seconds of each case's fresh process, ``runs`` times, cases interleaved."""
    # An empty TIKTOKEN_CACHE_DIR disables tiktoken's cache: both sides read the bundled file.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": ""}
    env.pop("DATA_GYM_CACHE_DIR", None)
    # Bytecode is written by the warm-up run and used after, as in an installed package.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for code in CASES.values():  # warm the OS file cache and write the .pyc files once
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    for _ in range(runs):
        for name, code in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times[name].append(time.perf_counter() - start)
    return times


def in_process_times(runs: int) -> dict[str, list[float]]:
    """Seconds of the steps inside one process (nothing cached between repetitions)."""
    import tiktoken
    import tiktoken.load

    from budgetctl.costing.bundled import load_bundled_table
    from budgetctl.costing.encodings import SPECS, build_encoding, load_ranks
    from budgetctl.costing.prices import price_book

    spec = SPECS["o200k_base"]

    def timed(step: Callable[[], Any]) -> list[float]:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            step()
            samples.append(time.perf_counter() - start)
        return samples

    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    ranks = load_ranks(spec.ranks)
    book = price_book()  # the table is loaded here, once: the lookups below are lookups only
    return {
        "price table load (in-process)": timed(load_bundled_table),
        "price lookup (openai/gpt-4o), table loaded": timed(lambda: book.price("openai/gpt-4o")),
        "o200k ranks: budgetctl load_ranks": timed(lambda: load_ranks(spec.ranks)),
        "o200k ranks: tiktoken load_tiktoken_bpe": timed(
            lambda: tiktoken.load.load_tiktoken_bpe(str(O200K_FILE), spec.ranks.sha256)
        ),
        "o200k Encoding construction": timed(
            lambda: tiktoken.Encoding(
                name="o200k_base",
                pat_str=spec.pat_str,
                mergeable_ranks=ranks,
                special_tokens=dict(spec.special_tokens),
            )
        ),
        "o200k full build: budgetctl build_encoding": timed(lambda: build_encoding("o200k_base")),
    }


def summary(samples: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in samples]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "spread_ms": max(ms) - min(ms),
        "runs": len(ms),
    }


def machine() -> dict[str, str]:
    import tiktoken

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "tiktoken": tiktoken.__version__,
        "platform": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="repetitions of each case (default 9)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    cold = {name: summary(samples) for name, samples in cold_times(args.runs).items()}
    warm = {name: summary(samples) for name, samples in in_process_times(args.runs).items()}
    ours = cold["budgetctl: count (o200k_base)"]["median_ms"]
    bare = cold["bare tiktoken: count (o200k_base)"]["median_ms"]
    table_ms = warm["price table load (in-process)"]["median_ms"]
    price_cold = (
        cold["budgetctl: price one model"]["median_ms"]
        - cold["import budgetctl.costing"]["median_ms"]
    )
    verdict = {
        "count_ratio": ours / bare,
        "count_within_1_2x": ours / bare <= 1.2,
        "price_cold_over_import_ms": price_cold,
        "price_table_under_15ms": table_ms < 15,
    }
    info = machine()
    if args.json:
        report = {"machine": info, "cold": cold, "in_process": warm, "verdict": verdict}
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {info['cpus']} CPUs, {info['cpu']}; Python {info['python']},")
    print(f"         tiktoken {info['tiktoken']}; {info['platform']}")
    print()
    print("| case | median ms | min ms | max ms | spread ms |")
    print("|---|---:|---:|---:|---:|")
    for kind, rows in (("cold process", cold), ("in process", warm)):
        for name, row in rows.items():
            print(
                f"| {name} ({kind}) | {row['median_ms']:.2f} | {row['min_ms']:.2f} | "
                f"{row['max_ms']:.2f} | {row['spread_ms']:.2f} |"
            )
    print()
    print(
        f"count: budgetctl / bare tiktoken = {verdict['count_ratio']:.2f}x "
        f"(target <= 1.2x: {'met' if verdict['count_within_1_2x'] else 'MISSED'})"
    )
    print(
        f"price table load in-process: {table_ms:.1f} ms (target < 15 ms: "
        f"{'met' if verdict['price_table_under_15ms'] else 'MISSED'}); "
        f"cold price over `import budgetctl.costing`: {price_cold:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
