#!/usr/bin/env python3
"""Benchmark of a one-shot budgetctl command on this machine (a report, not a test).

Cold processes, each started fresh several times (cases interleaved, so machine noise falls on every
case alike), wall time of the whole process, median and spread:

- ``budgetctl update-cost USER --model gpt-4o --prompt-tokens N --completion-tokens N`` (the
  installed console script) on a project of 1,000 users;
- a bare Python script doing the same file work on a same-sized state file: read the JSON, add a
  cost to one user, write it back atomically (temp file in the same dir, fsync, ``os.replace``);
- ``python -c "import typer"`` (the framework's floor) and ``python -c pass``.

Then, in one child process, where the command's time goes: importing typer, importing the
library, importing and building the one CLI command, loading the bundled price table, and the
command itself (state read, roll-over, charge, history append, atomic replace, fsyncs).

    python bench/bench_cli.py [--runs N] [--users N] [--json]
    python bench/bench_cli.py --floor VENV/bin/python [VENV/bin/python ...]

``--floor`` measures the framework's floor instead, in each given interpreter (throwaway venvs
with one typer version each): ``python -c pass``, ``import typer``, and a minimal one-option Typer
app, and whether that app loads pydantic (typer 0.29 does; 0.28 does not).

Targets (docs/performance.md): within 2x of the bare script, and under 20 ms above
``import typer``. Bytecode is compiled by a warm-up run into a private cache, as in an installed
package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench_costing import machine as costing_machine  # the same machine facts and statistics
from bench_costing import summary

REPO = Path(__file__).resolve().parents[1]
BUDGETCTL = Path(sys.executable).parent / "budgetctl"
USER = "user-000500@example.com"
TOKENS = ["--model", "gpt-4o", "--prompt-tokens", "1200", "--completion-tokens", "300"]

# The same file work as budgetctl's charge, and nothing else: read, add, replace atomically.
BARE = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from decimal import Decimal
    path, user = sys.argv[1], sys.argv[2]
    with open(path, "rb") as handle:
        doc = json.loads(handle.read())
    record = doc["users"][user]
    record["current_cost"] = str(Decimal(record.get("current_cost", "0")) + Decimal("0.006"))
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    """
)

# Where the time of one update-cost goes, phase by phase, in a fresh process.
PHASES = textwrap.dedent(
    """
    import gc, json, sys, time
    marks = [("start", time.perf_counter())]
    gc.disable()  # as budgetctl.cli.app.main does
    import typer
    marks.append(("import typer", time.perf_counter()))
    import budgetctl.ledger
    marks.append(("import the library (budgetctl.ledger and its store)", time.perf_counter()))
    from budgetctl.cli.root import build, hoist
    args = hoist(json.loads(sys.argv[1]))
    command = build(args)
    gc.freeze()
    gc.enable()
    marks.append(("import and build the CLI command", time.perf_counter()))
    from budgetctl.costing.bundled import bundled_table
    bundled_table()
    marks.append(("load the bundled price table", time.perf_counter()))
    import budgetctl.cli.commands.charges, budgetctl.cli.views.charges
    code = command.main(args, prog_name="budgetctl", standalone_mode=False)
    marks.append(("run: read state, charge, append history, replace, fsync", time.perf_counter()))
    assert code == 0, code
    print(json.dumps([(name, end - begin) for (_, begin), (name, end) in zip(marks, marks[1:])]))
    """
)


# The smallest Typer app worth the name: one command, one option.
ONE_OPTION_APP = textwrap.dedent(
    """
    import typer

    app = typer.Typer()


    @app.command()
    def main(name: str = typer.Option("world", "--name", help="Who to greet.")) -> None:
        print(f"hello {name}")


    if __name__ == "__main__":
        app()
    """
)


def typer_floor(interpreters: list[str], runs: int) -> dict[str, Any]:
    """The floor of each interpreter's typer: start-up, import, a one-option app."""
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="budgetctl-floor-") as tmp:
        app = Path(tmp) / "one_option_app.py"
        app.write_text(ONE_OPTION_APP)
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands: dict[str, list[str]] = {}
        for python in interpreters:
            version = subprocess.run(
                [python, "-c", "import typer; print(typer.__version__)"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            loads = subprocess.run(
                [
                    python,
                    "-c",
                    f"import runpy, sys\nsys.argv = ['app', '--name', 'x']\n"
                    f"try:\n    runpy.run_path({str(app)!r}, run_name='__main__')\n"
                    "except SystemExit:\n    pass\nprint('pydantic' in sys.modules)",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
            report[f"typer {version}"] = {"python": python, "loads_pydantic": loads == "True"}
            commands[f"typer {version}: python -c pass"] = [python, "-c", "pass"]
            commands[f"typer {version}: import typer"] = [python, "-c", "import typer"]
            commands[f"typer {version}: one-option app"] = [python, str(app), "--name", "x"]
        report["cold"] = cold_times(commands, runs, env)
    return report


def make_project(data_dir: Path, users: int) -> Path:
    """A project of ``users`` monthly budgets, each with some spend, written by the library."""
    sys.path.insert(0, str(REPO))
    from datetime import datetime, timezone

    from budgetctl.core import rules
    from budgetctl.core.periods import parse_duration
    from budgetctl.ledger import Ledger

    ledger = Ledger("bench", data_dir)
    now = datetime.now(timezone.utc)
    monthly = parse_duration("monthly")
    budgets = [
        rules.new_budget(
            f"user-{n:06}@example.com",
            Decimal(100),
            now,
            duration=monthly,
            current_cost=Decimal("1.25"),
            model_cost={"gpt-4o": Decimal("1.25")},
        )
        for n in range(users)
    ]
    ledger.store.create_many(budgets)
    return data_dir / "bench.json"


def cases(data_dir: Path, bare_state: Path, bare_script: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "bare script: read JSON, add, write atomically": [
            sys.executable,
            str(bare_script),
            str(bare_state),
            USER,
        ],
        "budgetctl update-cost (token form)": [
            str(BUDGETCTL),
            "update-cost",
            USER,
            "-p",
            "bench",
            "--data-dir",
            str(data_dir),
            "-q",
            *TOKENS,
        ],
        "budgetctl --version": [str(BUDGETCTL), "--version"],
    }


def cold_times(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, Any]:
    for argv in commands.values():  # warm the OS cache and compile bytecode once
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    return {name: summary(samples) for name, samples in times.items()}


def phase_times(data_dir: Path, runs: int, env: dict[str, str]) -> dict[str, Any]:
    args = ["update-cost", USER, "-p", "bench", "--data-dir", str(data_dir), "-q", *TOKENS]
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PHASES, json.dumps(args)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for name, seconds in json.loads(out):
            samples.setdefault(name, []).append(seconds)
    return {name: summary(values) for name, values in samples.items()}


def machine() -> dict[str, str]:
    import typer

    return {**costing_machine(), "typer": typer.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="repetitions of each case (15)")
    parser.add_argument("--users", type=int, default=1000, help="users in the project (1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--floor", nargs="+", metavar="PYTHON", help="measure typer's floor in these interpreters"
    )
    args = parser.parse_args()
    if args.floor:
        report = typer_floor(args.floor, args.runs)
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        print("| cold process | median ms | min ms | max ms | spread ms |")
        print("|---|---:|---:|---:|---:|")
        for name, row in report.pop("cold").items():
            print(
                f"| {name} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | "
                f"{row['max_ms']:.1f} | {row['spread_ms']:.1f} |"
            )
        for version, info in report.items():
            print(f"{version}: the one-option app loads pydantic: {info['loads_pydantic']}")
        return 0
    if not BUDGETCTL.exists():
        sys.exit(f"no budgetctl script next to {sys.executable}: pip install -e . first")

    with tempfile.TemporaryDirectory(prefix="budgetctl-bench-") as tmp:
        root = Path(tmp)
        state = make_project(root / "data", args.users)
        bare_dir = root / "bare"
        bare_dir.mkdir()
        bare_state = bare_dir / "bench.json"
        bare_state.write_bytes(state.read_bytes())
        bare_script = root / "bare.py"
        bare_script.write_text(BARE)
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(root / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for name in ("BUDGETCTL_PRICES", "BUDGETCTL_PROJECT", "BUDGETCTL_DEBUG"):
            env.pop(name, None)
        state_kib = state.stat().st_size / 1024
        cold = cold_times(cases(root / "data", bare_state, bare_script), args.runs, env)
        phases = phase_times(root / "data", args.runs, env)

    ours = cold["budgetctl update-cost (token form)"]["median_ms"]
    bare = cold["bare script: read JSON, add, write atomically"]["median_ms"]
    floor = cold['python -c "import typer"']["median_ms"]
    verdict = {
        "ratio_to_bare": ours / bare,
        "within_2x_of_bare": ours / bare <= 2,
        "ms_above_import_typer": ours - floor,
        "under_20ms_above_import_typer": ours - floor < 20,
    }
    info = machine()
    if args.json:
        report = {
            "machine": info,
            "users": args.users,
            "state_kib": state_kib,
            "cold": cold,
            "phases": phases,
            "verdict": verdict,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {info['cpus']} CPUs, {info['cpu']}; Python {info['python']}, typer")
    print(f"         {info['typer']}; {info['platform']}")
    print(f"project: {args.users} users, state file {state_kib:.0f} KiB; {args.runs} runs each")
    print()
    print("| cold process | median ms | min ms | max ms | spread ms |")
    print("|---|---:|---:|---:|---:|")
    for name, row in cold.items():
        print(
            f"| {name} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | {row['max_ms']:.1f} | "
            f"{row['spread_ms']:.1f} |"
        )
    print()
    print("| update-cost, phase by phase (one process) | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, row in phases.items():
        print(f"| {name} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | {row['max_ms']:.1f} |")
    print()
    print(
        f"update-cost / bare script = {verdict['ratio_to_bare']:.2f}x (target <= 2x: "
        f"{'met' if verdict['within_2x_of_bare'] else 'MISSED'}); "
        f"{verdict['ms_above_import_typer']:.1f} ms above `import typer` (target < 20 ms: "
        f"{'met' if verdict['under_20ms_above_import_typer'] else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
