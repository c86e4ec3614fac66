#!/usr/bin/env python3
"""Benchmark of ``budgetctl show`` on a large project, on a terminal and in a pipe (a report, not
a test).

A project of N monthly budgets (default 20,000; bench/states.py writes it through the store) is
shown by fresh processes, cases interleaved, wall time of the whole process, median and spread:

- on a terminal: a real pseudo-terminal (``pty``) 80 and 200 columns wide, ``TERM=xterm-256color``,
  colours on, everything the program writes read back as a terminal would; ``PAGER=cat`` so the
  figure is the program's own work, not a person scrolling a pager;
- in a pipe: stdout to a pipe that is read to the end (``budgetctl show | cat``);
- ``--json`` in a pipe.

``--source DIR`` runs budgetctl from another source tree instead (e.g. an older commit unpacked
with ``git archive COMMIT | tar -x -C DIR``), with this interpreter, to compare before and after.

    python bench/bench_show.py [--users N] [--runs N] [--source DIR] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bench_costing import machine, summary
from states import PROJECT, budgetctl_state

BUDGETCTL = Path(sys.executable).parent / "budgetctl"


def command(source: Path | None) -> list[str]:
    if source is None:
        return [str(BUDGETCTL)]
    code = (
        f"import sys; sys.path.insert(0, {str(source)!r}); sys.argv[0] = 'budgetctl'; "
        "from budgetctl.cli.app import main; main()"
    )
    return [sys.executable, "-c", code]


def on_terminal(argv: list[str], env: dict[str, str], columns: int) -> tuple[float, int]:
    """Wall time of ``argv`` on a ``columns``-wide pty, reading all it writes; bytes read."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    size = 0
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the program exited and closed its side
                break
            if not chunk:
                break
            size += len(chunk)
        elif process.poll() is not None:
            break
    process.wait()
    elapsed = time.perf_counter() - started
    os.close(master)
    if process.returncode != 0:
        raise SystemExit(f"{argv} failed on a terminal with exit {process.returncode}")
    return elapsed, size


def in_pipe(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True)
    return time.perf_counter() - started, len(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", type=Path, help="run budgetctl from this source tree")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    options = parser.parse_args()
    argv = command(options.source)
    with tempfile.TemporaryDirectory(prefix="budgetctl-bench-show-") as folder:
        data_dir = Path(folder)
        state = budgetctl_state(data_dir, options.users)
        env = {
            **os.environ,
            "BUDGETCTL_DATA_DIR": str(data_dir),
            "TERM": "xterm-256color",
            "PAGER": "cat",
            "TZ": "UTC",
        }
        for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "BUDGETCTL_PAGER"):
            env.pop(name, None)
        show = [*argv, "-p", PROJECT, "show"]
        cases = {
            "terminal, 80 columns": lambda: on_terminal(show, env, 80),
            "terminal, 200 columns": lambda: on_terminal(show, env, 200),
            "pipe": lambda: in_pipe(show, env),
            "pipe, --json": lambda: in_pipe([*show, "--json"], env),
        }
        for run in cases.values():  # warm-up: bytecode compiled, the file in the page cache
            run()
        times: dict[str, list[float]] = {name: [] for name in cases}
        sizes: dict[str, int] = {}
        for _ in range(options.runs):
            for name, run in cases.items():
                elapsed, size = run()
                times[name].append(elapsed)
                sizes[name] = size
        report = {
            "users": options.users,
            "state_bytes": state.stat().st_size,
            "source": str(options.source) if options.source else "installed",
            "machine": machine(),
            "cases": {
                name: {**summary(t), "output_bytes": sizes[name]} for name, t in times.items()
            },
        }
    if options.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"budgetctl show, {options.users:,} users ({report['state_bytes']:,} byte state), "
        f"{options.runs} runs, {report['source']}"
    )
    print(f"{'case':<24} {'median s':>9} {'min s':>7} {'max s':>7} {'output':>12}")
    for name, row in report["cases"].items():
        print(
            f"{name:<24} {row['median_ms'] / 1000:>9.2f} {row['min_ms'] / 1000:>7.2f} "
            f"{row['max_ms'] / 1000:>7.2f} {row['output_bytes']:>12,}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
