"""budgetctl's benchmarks, side by side with LiteLLM's BudgetManager, in one run.

    python bench/run.py [--litellm] [--quick] [--plot FILE]

Three parts (docs/performance.md says what each shows and holds the last published figures):

a. one-shot charge, as a shell script does it, at 1,000 users: ``budgetctl update-cost`` (token
   and text forms) against a Python script doing the same with LiteLLM's BudgetManager (with
   ``--litellm``; LiteLLM is installed from PyPI into bench/.venv-litellm, apart from budgetctl);
b. scale: ``update-cost``, ``show USER`` and ``reset-due`` at 1k, 10k and 100k users (state
   generated through the library's store), the state file's size, and the same operations timed
   inside one process to show what the interpreter start costs;
c. library throughput at 1,000 users: charges per second through ``Ledger`` (every charge a
   locked, fsynced transaction) against LiteLLM's ``update_cost`` + ``save_data``.

Every measured command is its own child process, repeated (interleaved with the others, so drift
hits them alike) and reported as median (min-max); peak memory is each child's own ``ru_maxrss``.
Results go to bench/results/ (JSON and Markdown); the plot to ``--plot``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import harness
import states
from harness import ChildFailed, Sample, fmt_bytes, fmt_sample, log, run_child

BENCH = Path(__file__).resolve().parent
SCRIPTS = BENCH / "scripts"
RESULTS = BENCH / "results"
LITELLM_VENV = BENCH / ".venv-litellm"
LITELLM_VERSION = "1.110.2"  # the release whose budget_manager.py budgetctl is measured against

INPUT_TEXT = (
    "Summarise the following support ticket in two sentences and suggest a priority. The customer "
    "reports that the nightly export job has failed three times this week with a timeout after "
    "the upgrade to version 4.2, that retrying by hand works, and that their finance team needs "
    "the export before 9am on weekdays. They attached logs showing the database connection pool "
    "exhausted at 02:00 UTC, when the backup job also runs."
)
OUTPUT_TEXT = (
    "The nightly export has timed out three times since the 4.2 upgrade, apparently because it "
    "competes with the 02:00 UTC backup for database connections; manual retries succeed. "
    "Priority: high, since finance depends on the export every weekday morning."
)
PROMPT_TOKENS, COMPLETION_TOKENS = "1200", "300"


# --- environments ----------------------------------------------------------------------------


def budgetctl_command() -> list[str]:
    """The ``budgetctl`` entry point of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "budgetctl"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("budgetctl")
    if found:
        return [found]
    raise SystemExit("budgetctl is not installed here: run `pip install -e .` first")


def clean_env() -> dict[str, str]:
    """The environment for budgetctl children: no BUDGETCTL_* setting leaks in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
    env["NO_COLOR"] = "1"
    return env


def litellm_env() -> dict[str, str]:
    env = clean_env()
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # its bundled price map: no network
    return env


def ensure_litellm() -> str | None:
    """bench/.venv-litellm's python, with LiteLLM installed from PyPI; None (and why) if not."""
    python = LITELLM_VENV / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import litellm.budget_manager, importlib.metadata as m; print(m.version('litellm'))",
    ]
    if python.exists():
        probe = subprocess.run(check, capture_output=True, text=True, env=litellm_env())
        if probe.returncode == 0 and probe.stdout.strip() == LITELLM_VERSION:
            return str(python)
    log(f"installing litellm=={LITELLM_VERSION} into {LITELLM_VENV} (once; about a minute)")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"litellm=={LITELLM_VERSION}"],
            check=True,
            timeout=1200,
        )
        probe = subprocess.run(check, capture_output=True, text=True, env=litellm_env())
        if probe.returncode != 0:
            raise RuntimeError(probe.stderr.strip()[-500:])
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        log(f"SKIPPED the LiteLLM side: cannot install litellm=={LITELLM_VERSION} ({exc})")
        return None
    return str(python)


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A measured command: its argv for a given round (to vary the user), where and how it runs."""

    argv: Callable[[int], list[str]]
    cwd: Path | None = None
    env: dict[str, str] | None = None
    prepare: Callable[[], None] | None = None  # run before each measurement, not timed


def measure_rounds(commands: dict[str, Command], reps: int) -> dict[str, Sample]:
    """Run every command once per round, in a rotating order; one Sample per command."""
    samples = {name: Sample(name) for name in commands}
    names = list(commands)
    for round_no in range(reps):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            command = commands[name]
            if command.prepare is not None:
                command.prepare()
            seconds, rss, _ = run_child(command.argv(round_no), cwd=command.cwd, env=command.env)
            samples[name].seconds.append(seconds)
            samples[name].rss_mib.append(rss)
    return samples


def update_cost_argv(cli: list[str], data_dir: Path, user: str, text: bool = False) -> list[str]:
    """``budgetctl update-cost`` in its token form, or (``text``) its text form."""
    if text:
        counts = ["--input-text", INPUT_TEXT, "--output-text", OUTPUT_TEXT]
    else:
        counts = ["--prompt-tokens", PROMPT_TOKENS, "--completion-tokens", COMPLETION_TOKENS]
    return [*cli, "update-cost", user, "--model", states.MODEL, *counts, *where(data_dir)]


def where(data_dir: Path) -> list[str]:
    return ["-p", states.PROJECT, "--data-dir", str(data_dir)]


def one_shot(
    work: Path, reps: int, litellm_python: str | None, users: int = 1000
) -> dict[str, Sample]:
    """Part a: one charge per process, at ``users`` users, budgetctl against LiteLLM."""
    log(f"[a] one-shot charge at {users:,} users, {reps} rounds")
    data_dir = work / "oneshot-budgetctl"
    states.budgetctl_state(data_dir, users)
    cli = budgetctl_command()
    env = clean_env()
    commands = {
        "python -c pass": Command(lambda r: [sys.executable, "-c", "pass"], env=env),
        "python -c 'import typer'": Command(
            lambda r: [sys.executable, "-c", "import typer"], env=env
        ),
        "budgetctl update-cost (tokens)": Command(
            lambda r: update_cost_argv(cli, data_dir, states.user_name(r % users)), env=env
        ),
        "budgetctl update-cost (text)": Command(
            lambda r: update_cost_argv(cli, data_dir, states.user_name(r % users), text=True),
            env=env,
        ),
    }
    if litellm_python is not None:
        lt_dir = work / "oneshot-litellm"
        states.litellm_state(lt_dir, users)
        script = str(SCRIPTS / "litellm_charge.py")
        commands["LiteLLM script: update_cost (text) + save_data"] = Command(
            lambda r: [
                litellm_python,
                script,
                states.user_name(r % users),
                states.MODEL,
                INPUT_TEXT,
                OUTPUT_TEXT,
            ],
            cwd=lt_dir,
            env=litellm_env(),
        )
    return measure_rounds(commands, reps)


def scale(work: Path, sizes: Sequence[int], reps: int) -> list[dict[str, object]]:
    """Part b: update-cost, show USER and reset-due (processes and in-process) by project size."""
    rows = [scale_one(work, users, reps) for users in sizes]
    # and the largest project once more as it is after a year: 12 closed periods in each budget
    return [*rows, scale_one(work, max(sizes), reps, closed_periods=12)]


def scale_one(work: Path, users: int, reps: int, closed_periods: int = 0) -> dict[str, object]:
    """Part b at one project size (budgets with ``closed_periods`` closed periods each)."""
    cli = budgetctl_command()
    env = clean_env()
    log(f"[b] scale: {users:,} users ({closed_periods} closed periods each), {reps} rounds")
    template = work / f"scale-{users}-{closed_periods}"
    started = time.perf_counter()
    state_file = states.budgetctl_state(template, users, closed_periods)
    generated = time.perf_counter() - started
    size = state_file.stat().st_size
    history_size = (template / f"{states.PROJECT}+history.jsonl").stat().st_size

    run_dir = states.copy_project(template, work / f"scale-{users}-{closed_periods}-cli")
    samples = measure_rounds(
        {
            "update-cost": Command(
                lambda r: update_cost_argv(cli, run_dir, states.user_name(r)), env=env
            ),
            "show USER": Command(
                lambda r: [*cli, "show", states.user_name(r), *where(run_dir)], env=env
            ),
        },
        reps,
    )
    # reset-due on the same state every time (restored before each run): every budget is due
    moment = states.RESET_DUE_AT
    due_dir = work / f"scale-{users}-{closed_periods}-due"

    def restore() -> None:
        states.copy_project(template, due_dir)

    samples |= measure_rounds(
        {
            "reset-due -q": Command(
                lambda r: [*cli, "reset-due", "-q", "--now", moment, *where(due_dir)],
                env=env,
                prepare=restore,
            ),
            "reset-due": Command(
                lambda r: [*cli, "reset-due", "--now", moment, *where(due_dir)],
                env=env,
                prepare=restore,
            ),
        },
        reps,
    )
    size_after = (due_dir / f"{states.PROJECT}.json").stat().st_size

    inproc_dir = states.copy_project(template, work / f"scale-{users}-{closed_periods}-inproc")
    _, _, out = run_child(
        [
            sys.executable,
            str(SCRIPTS / "budgetctl_inproc.py"),
            str(inproc_dir),
            states.PROJECT,
            str(reps),
            moment.replace("Z", "+00:00"),
        ],
        env=env,
    )
    inproc = {k: Sample(f"in-process {k}", v) for k, v in json.loads(out).items()}
    for folder in (template, run_dir, due_dir, inproc_dir):
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "users": users,
        "closed_periods": closed_periods,
        "state_bytes": size,
        "history_bytes": history_size,
        "state_bytes_after_reset": size_after,
        "generate_s": generated,
        "cli": samples,
        "inproc": inproc,
    }


def throughput(
    work: Path, litellm_python: str | None, per_batch: int, batches: int, users: int = 1000
) -> dict[str, Sample]:
    """Part c: charges per second in one process, as a batch's seconds per charge."""
    log(f"[c] library throughput at {users:,} users: {batches} batches of {per_batch}")
    data_dir = work / "throughput-budgetctl"
    states.budgetctl_state(data_dir, users)
    _, _, out = run_child(
        [
            sys.executable,
            str(SCRIPTS / "budgetctl_throughput.py"),
            str(data_dir),
            states.PROJECT,
            str(per_batch),
            str(batches),
            states.MODEL,
            INPUT_TEXT,
            OUTPUT_TEXT,
        ],
        env=clean_env(),
    )
    result = json.loads(out)
    samples = {
        "budgetctl Ledger.charge_tokens": Sample("tokens", result["tokens"]),
        "budgetctl Ledger.charge_text": Sample("text", result["text"]),
    }
    if litellm_python is not None:
        lt_dir = work / "throughput-litellm"
        states.litellm_state(lt_dir, users)
        _, _, out = run_child(
            [
                litellm_python,
                str(SCRIPTS / "litellm_throughput.py"),
                str(per_batch),
                str(batches),
                states.MODEL,
                INPUT_TEXT,
                OUTPUT_TEXT,
            ],
            cwd=lt_dir,
            env=litellm_env(),
        )
        samples["LiteLLM update_cost (text) + save_data"] = Sample(
            "litellm", json.loads(out)["batch_seconds"]
        )
    for sample in samples.values():
        sample.seconds = [s / per_batch for s in sample.seconds]  # seconds per charge
    return samples


# --- reporting -------------------------------------------------------------------------------


def report_one_shot(samples: dict[str, Sample]) -> list[str]:
    lines = [
        "| command (1,000 users) | wall time, median (min-max) | peak RSS, median |",
        "|---|---|---|",
    ]
    for name, sample in samples.items():
        lines.append(f"| {name} | {fmt_sample(sample)} | {sample.rss_median:.1f} MiB |")
    lt = samples.get("LiteLLM script: update_cost (text) + save_data")
    tok = samples["budgetctl update-cost (tokens)"]
    txt = samples["budgetctl update-cost (text)"]
    lines.append("")
    if lt is not None:
        lines.append(
            f"Token form: **{lt.median / tok.median:.1f}x faster** than the LiteLLM script "
            f"(target ≥ 10x), peak memory {tok.rss_median:.1f} MiB against "
            f"{lt.rss_median:.1f} MiB (target < 50 MiB). Text form: "
            f"{lt.median / txt.median:.1f}x faster, {txt.rss_median:.1f} MiB."
        )
    else:
        lines.append(
            f"Token form: peak memory {tok.rss_median:.1f} MiB (target < 50 MiB); "
            "LiteLLM not measured in this run (`--litellm`)."
        )
    return lines


def report_scale(rows: list[dict[str, object]]) -> list[str]:
    lines = [
        "| users | state file | `update-cost` | `show USER` | `reset-due -q` (all due) "
        "| `reset-due` (prints each) | in-process charge | in-process reset-due "
        "| peak RSS update-cost / reset-due |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cli: dict[str, Sample] = row["cli"]  # type: ignore[assignment]
        inproc: dict[str, Sample] = row["inproc"]  # type: ignore[assignment]
        aged = f" (+{row['closed_periods']} closed periods each)" if row["closed_periods"] else ""
        lines.append(
            f"| {row['users']:,}{aged} | {fmt_bytes(row['state_bytes'])} "  # type: ignore[arg-type]
            f"| {fmt_sample(cli['update-cost'])} | {fmt_sample(cli['show USER'])} "
            f"| {fmt_sample(cli['reset-due -q'])} | {fmt_sample(cli['reset-due'])} "
            f"| {fmt_sample(inproc['charge'])} | {fmt_sample(inproc['reset_due'])} "
            f"| {cli['update-cost'].rss_median:.0f} / {cli['reset-due -q'].rss_median:.0f} MiB |"
        )
    fresh = [row for row in rows if not row["closed_periods"]]
    if len(fresh) > 1:
        lines += ["", "Growth, each step up in users (ratio of medians):", ""]
        for before, after in itertools.pairwise(fresh):
            factor = after["users"] / before["users"]  # type: ignore[operator]
            parts = []
            for key in ("update-cost", "show USER", "reset-due -q"):
                a: Sample = before["cli"][key]  # type: ignore[index]
                b: Sample = after["cli"][key]  # type: ignore[index]
                parts.append(f"`{key}` x{b.median / a.median:.1f}")
            ratio = after["state_bytes"] / before["state_bytes"]  # type: ignore[operator]
            parts.append(f"state file x{ratio:.1f}")
            lines.append(
                f"- {before['users']:,} → {after['users']:,} users (x{factor:g}): "
                + ", ".join(parts)
            )
    return lines


def report_throughput(samples: dict[str, Sample]) -> list[str]:
    lines = [
        "| in one process, 1,000 users | charges per second, median (min-max of batches) |",
        "|---|---|",
    ]
    for name, sample in samples.items():
        rates = sorted(1 / s for s in sample.seconds)
        lines.append(
            f"| {name} | {statistics.median(rates):,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f}) |"
        )
    return lines


def plot(rows: list[dict[str, object]], target: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("no plot: matplotlib is not installed (pip install -e '.[bench]')")
        return
    aged = [row for row in rows if row["closed_periods"]]
    rows = [row for row in rows if not row["closed_periods"]]
    users = [row["users"] for row in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    series = [
        ("cli", "update-cost", "update-cost (process)", "-", "o"),
        ("cli", "show USER", "show USER (process)", "-", "s"),
        ("cli", "reset-due -q", "reset-due -q, all due (process)", "-", "^"),
        ("inproc", "charge", "charge (in-process)", "--", "o"),
        ("inproc", "reset_due", "reset-due (in-process)", "--", "^"),
    ]
    for group, key, label, style, marker in series:
        medians = [row[group][key].median for row in rows]  # type: ignore[index]
        lows = [row[group][key].spread[0] for row in rows]  # type: ignore[index]
        highs = [row[group][key].spread[1] for row in rows]  # type: ignore[index]
        err = [
            [m - lo for m, lo in zip(medians, lows, strict=True)],
            [hi - m for m, hi in zip(medians, highs, strict=True)],
        ]
        ax.errorbar(
            users, medians, yerr=err, label=label, linestyle=style, marker=marker, capsize=3
        )
    for row in aged:
        cli: dict[str, Sample] = row["cli"]  # type: ignore[assignment]
        ax.plot(
            [row["users"]],
            [cli["update-cost"].median],
            marker="X",
            markersize=9,
            color="black",
            linestyle="none",
            label=f"update-cost, {row['closed_periods']} closed periods per budget",
        )
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.axhline(2.0, color="grey", linewidth=0.8, linestyle=":")
    ax.text(users[0], 1.05, "target: update-cost < 1 s", fontsize=8, color="grey")
    ax.text(users[0], 2.1, "target: reset-due < 2 s", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users in the project")
    ax.set_ylabel("seconds (median, bars: min-max)")
    ax.set_title("budgetctl latency by project size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    log(f"plot written to {target}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--litellm",
        action="store_true",
        help="also measure LiteLLM's BudgetManager (installed into "
        "bench/.venv-litellm from PyPI on first use)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds and sizes up to 10k users: a smoke run"
    )
    parser.add_argument("--reps", type=int, help="rounds per measurement (default 7, quick 3)")
    parser.add_argument("--sizes", help="comma-separated project sizes for the scale part")
    parser.add_argument(
        "--only",
        choices=["oneshot", "scale", "throughput"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=RESULTS / "performance-scale.png",
        help="where to write the latency-by-users plot (PNG)",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where the generated projects go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 7)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1000, 10000] if args.quick else [1000, 10000, 100000])
    )
    parts = set(args.only or ["oneshot", "scale", "throughput"])
    litellm_python = ensure_litellm() if args.litellm else None

    work = Path(tempfile.mkdtemp(prefix="budgetctl-bench-", dir=args.work_dir))
    report: list[str] = ["## Machine", ""]
    info = harness.machine(work)
    report += [f"- {k}: {v}" for k, v in info.items()]
    results: dict[str, object] = {"machine": info, "reps": reps}
    try:
        if "oneshot" in parts:
            samples = one_shot(work, reps, litellm_python)
            results["oneshot"] = {k: v.as_dict() for k, v in samples.items()}
            report += [
                "",
                "## Against LiteLLM: one charge per process",
                "",
                *report_one_shot(samples),
            ]
        if "scale" in parts:
            rows = scale(work, sizes, reps)
            results["scale"] = [
                {
                    **{k: v for k, v in row.items() if k not in ("cli", "inproc")},
                    "cli": {k: s.as_dict() for k, s in row["cli"].items()},  # type: ignore[union-attr]
                    "inproc": {k: s.as_dict() for k, s in row["inproc"].items()},
                }  # type: ignore[union-attr]
                for row in rows
            ]
            report += ["", "## Scale", "", *report_scale(rows)]
            plot(rows, args.plot)
        if "throughput" in parts:
            per_batch, batches = (20, 3) if args.quick else (50, 5)
            samples = throughput(work, litellm_python, per_batch, batches)
            results["throughput"] = {k: v.as_dict() for k, v in samples.items()}
            report += ["", "## Library throughput", "", *report_throughput(samples)]
    except ChildFailed as exc:
        log(f"a measured command failed: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    log(f"results in {RESULTS / 'latest.md'} and {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
