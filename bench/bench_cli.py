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
    python bench/bench_cli.py --compare BEFORE/bin/python [--sizes 1000,100000] [--runs N]

``--floor`` measures the framework's floor instead, in each given interpreter (throwaway venvs
with one typer version each): ``python -c pass``, ``import typer``, and a minimal one-option Typer
app, and whether that app loads pydantic (typer 0.29 does; 0.28 does not).

``--compare`` measures two budgetctl trees against each other in one run: BEFORE's interpreter
(a venv with the older tree installed, its ``budgetctl`` beside it) and this one (AFTER), each on
projects written by its own code, every command interleaved before / after / after again (the
same code twice: their difference is the noise of this run), wall time and CPU time (user + sys
of the child, from ``wait4``), median and interquartile range.

Targets (docs/performance.md): within 2x of the bare script, and under 20 ms above
``import typer``. Bytecode is compiled by a warm-up run into a private cache, as in an installed
package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


# --- --compare: two trees, one run -------------------------------------------------------------

# Run by each side's own interpreter, so each project is written by the code that will read it.
MAKE_STATE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import states
    states.budgetctl_state(Path(sys.argv[2]), int(sys.argv[3]))
    """
)


def compare_cases(users: int) -> dict[str, tuple[list[str], bool]]:
    """Command lines after ``budgetctl`` (no data dir), and whether the state is restored first.

    The project is bench/states.py's: monthly budgets created 2024-01-15, each with spend, so that
    every one is due at ``states.RESET_DUE_AT`` (a roll-over happens on a user's first charge).
    """
    import states

    user = states.user_name(users // 2)
    project = ["-p", states.PROJECT]
    tokens = ["--model", states.MODEL, "--prompt-tokens", "1200", "--completion-tokens", "300"]
    due = ["reset-due", "--now", states.RESET_DUE_AT, *project]
    cases = {
        "update-cost (token form) -q": (["update-cost", user, *project, "-q", *tokens], False),
        "check --cost": (["check", user, *project, "--cost", "0.01"], False),
        "show USER": (["show", user, *project], False),
        "reset-due -q (all due)": ([*due[:1], "-q", *due[1:]], True),
    }
    if users <= 20_000:  # bench_show.py's size; beyond it, a run takes several seconds
        cases["show (every user, pipe)"] = (["show", *project], False)
    if users <= 10_000:
        cases |= {
            "--version": (["--version"], False),
            "history USER": (["history", user, *project], False),
            "reset-due (nothing due)": (["reset-due", *project, "-q"], False),
        }
    else:
        cases["reset-due (prints each)"] = (due, True)
    return cases


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys) of one child, stdout and stderr discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        detail = subprocess.run(argv, env=env, capture_output=True, text=True).stderr
        raise SystemExit(f"{argv} exited {proc.returncode}: {detail.strip()[-1000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def quartiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in samples)
    q1, median, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    return {"median_ms": median, "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1, "runs": len(ms)}


def compare(
    before: str, after: str, sizes: list[int], runs: int, only: list[str]
) -> dict[str, Any]:
    """Every case at every size, rounds interleaved over the sides in a rotating order."""
    sides = {"before": before, "after": after, "after again": after}
    report: dict[str, Any] = {"sides": {"before": before, "after": after}, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="budgetctl-compare-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
        env |= {"PYTHONPYCACHEPREFIX": str(root / "pycache"), "NO_COLOR": "1", "TZ": "UTC"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for users in sizes:
            report["sizes"][str(users)] = compare_size(root, env, sides, users, runs, only)
    return report


class Sides:
    """Each side's interpreter, its ``budgetctl`` and its project (restored from a template)."""

    def __init__(self, root: Path, env: dict[str, str], sides: dict[str, str], users: int):
        self.sides = sides
        self.templates: dict[str, Path] = {}
        bench = str(Path(__file__).resolve().parent)
        for python in dict.fromkeys(sides.values()):  # each project written by its own code
            self.templates[python] = root / f"template-{len(self.templates)}-{users}"
            subprocess.run(
                [python, "-c", MAKE_STATE, bench, str(self.templates[python]), str(users)],
                env=env,
                check=True,
                cwd=root,  # not the caller's: `-c` puts the cwd first on sys.path
            )
        self.dirs = {side: root / f"{side.replace(' ', '-')}-{users}" for side in sides}
        for side in sides:
            self.restore(side)

    def restore(self, side: str) -> None:
        shutil.rmtree(self.dirs[side], ignore_errors=True)
        shutil.copytree(self.templates[self.sides[side]], self.dirs[side])

    def argv(self, side: str, args: list[str]) -> list[str]:
        cli = str(Path(self.sides[side]).parent / "budgetctl")
        return [cli, *args, "--data-dir", str(self.dirs[side])]

    def remove(self) -> None:
        for folder in [*self.dirs.values(), *self.templates.values()]:
            shutil.rmtree(folder, ignore_errors=True)


def compare_size(
    root: Path,
    env: dict[str, str],
    sides: dict[str, str],
    users: int,
    runs: int,
    only: list[str],
) -> dict[str, Any]:
    projects = Sides(root, env, sides, users)
    state_bytes = (projects.dirs["after"] / "bench.json").stat().st_size
    cases = {
        name: case
        for name, case in compare_cases(users).items()
        if not only or any(word in name for word in only)
    }
    print(f"{users:,} users, {len(cases)} cases, {runs} rounds", file=sys.stderr)
    for args, restore in cases.values():  # warm-up: bytecode compiled, files in the page cache
        for side in sides:
            if restore:
                projects.restore(side)
            run_timed(projects.argv(side, args), env)
    wall: dict[str, dict[str, list[float]]] = {c: {s: [] for s in sides} for c in cases}
    cpu: dict[str, dict[str, list[float]]] = {c: {s: [] for s in sides} for c in cases}
    order = list(sides)
    for round_no in range(runs):
        shift = round_no % len(order)
        for case, (args, restore) in cases.items():
            for side in order[shift:] + order[:shift]:
                if restore:
                    projects.restore(side)
                seconds, cpu_seconds = run_timed(projects.argv(side, args), env)
                wall[case][side].append(seconds)
                cpu[case][side].append(cpu_seconds)
    projects.remove()
    result: dict[str, Any] = {"state_bytes": state_bytes, "cases": {}}
    for case in cases:
        row: dict[str, Any] = {
            side: {"wall": quartiles(wall[case][side]), "cpu": quartiles(cpu[case][side])}
            for side in sides
        }
        # Rounds are paired (the sides of a case run back to back): the median of the per-round
        # differences cancels the load that drifts from round to round.
        for name, (one, other) in {
            "after - before": ("after", "before"),
            "again - after": ("after again", "after"),
        }.items():
            row[name] = {
                measure: 1000
                * statistics.median(
                    a - b for a, b in zip(samples[case][one], samples[case][other], strict=True)
                )
                for measure, samples in (("wall", wall), ("cpu", cpu))
            }
        result["cases"][case] = row
    return result


def print_comparison(report: dict[str, Any], runs: int) -> None:
    print(f"before: {report['sides']['before']}")
    print(f"after:  {report['sides']['after']} (and again: the same code, the noise)")
    for users, block in report["sizes"].items():
        print()
        print(f"{int(users):,} users, state {block['state_bytes'] / 1024:,.0f} KiB, {runs} rounds")
        print()
        print(
            "| command | measure | before ms (IQR) | after ms (IQR) | after again ms (IQR) "
            "| after - before, paired | again - after, paired (noise) |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for case, row in block["cases"].items():
            for measure in ("wall", "cpu"):
                b, a, a2 = (row[side][measure] for side in ("before", "after", "after again"))
                delta = row["after - before"][measure]
                noise = row["again - after"][measure]
                print(
                    f"| {case} | {measure} | {b['median_ms']:.1f} ({b['iqr_ms']:.1f}) "
                    f"| {a['median_ms']:.1f} ({a['iqr_ms']:.1f}) "
                    f"| {a2['median_ms']:.1f} ({a2['iqr_ms']:.1f}) "
                    f"| {delta:+.1f} ({100 * delta / b['median_ms']:+.1f}%) "
                    f"| {noise:+.1f} ({100 * noise / a['median_ms']:+.1f}%) |"
                )


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
    parser.add_argument(
        "--compare",
        metavar="BEFORE_PYTHON",
        help="compare with the budgetctl installed beside this interpreter (another tree's venv)",
    )
    parser.add_argument(
        "--sizes", default="1000", help="with --compare: comma-separated project sizes (1000)"
    )
    parser.add_argument(
        "--only", action="append", help="with --compare: only the cases whose name has this"
    )
    args = parser.parse_args()
    if args.compare:
        sizes = [int(size) for size in args.sizes.split(",")]
        report = compare(args.compare, sys.executable, sizes, args.runs, args.only or [])
        report["machine"] = machine()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_comparison(report, args.runs)
        return 0
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
