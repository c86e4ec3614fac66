#!/usr/bin/env python3
"""Benchmark: what a hook costs a charge (a report, not a test; docs/performance.md, "Hooks").

Each round times three fresh ``budgetctl update-cost`` processes, in interleaved cases:

- ``plain``: a charge that crosses no threshold, no hooks;
- ``alert, no hook``: a charge that crosses a threshold (an ``alert`` event recorded);
- ``alert, hook sleeps 10 s``: the same with a hook ``sleep 10`` (its delivery is queued in the
  charge's transaction and started as a detached process: the charge must not wait for it).

Wall time of the whole process, median and min-max over ``--runs`` rounds.

    python bench/bench_hooks.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETCTL = Path(sys.executable).parent / "budgetctl"


def cli(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(BUDGETCTL), *args], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    cases = {"plain": [], "alert, no hook": [], "alert, hook sleeps 10 s": []}
    with tempfile.TemporaryDirectory() as work:
        envs = {}
        for name in cases:
            env = {**os.environ, "BUDGETCTL_DATA_DIR": str(Path(work) / name.replace(" ", "_"))}
            env.pop("BUDGETCTL_SERVER", None)
            env.pop("BUDGETCTL_DATABASE_URL", None)
            envs[name] = env
            cli(env, "create", "seed", "--budget", "1", "--duration", "none", "-q")
        cli(envs["alert, hook sleeps 10 s"], "hook", "add", "--run", "sleep 10", "--timeout", "20")
        for n in range(runs):
            for name, env in envs.items():
                alert = "none" if name == "plain" else "50"
                cli(env, "create", f"u{n}", "--budget", "10", "--duration", "monthly",
                    "--alert-at", alert, "-q")  # fmt: skip
                cases[name].append(cli(env, "update-cost", f"u{n}", "--cost", "6", "-q"))
    print(f"update-cost, {runs} runs each, wall time of the process (ms)\n")
    print("| case | median | min - max |\n|---|---:|---:|")
    for name, times in cases.items():
        ms = [t * 1000 for t in times]
        print(f"| {name} | {statistics.median(ms):.0f} | {min(ms):.0f} - {max(ms):.0f} |")


if __name__ == "__main__":
    main()
