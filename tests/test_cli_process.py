"""The installed ``budgetctl`` entry point, run as scripts and cron run it: the shell recipe of
docs/cli.md, cron-style reset-due, concurrent charges, stdin responses, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl.ledger import Ledger

pytestmark = pytest.mark.process

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
RESPONSE = Path(__file__).parent / "fixtures" / "responses" / "openai_chat_cached.json"
RESPONSE_COST = Decimal("0.0019725")  # gpt-4o: 93 * 2.5e-6 + 1024 * 1.25e-6 + 46 * 1e-5


def with_budgetctl() -> dict[str, str]:
    """This test's environment (its data dir) with ``budgetctl`` on the PATH."""
    assert os.environ.get("BUDGETCTL_DATA_DIR"), "never the real user data dir"
    return {**os.environ, "PATH": f"{BUDGETCTL.parent}{os.pathsep}{os.environ['PATH']}"}


def run(argv: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **options)  # type: ignore[call-overload,no-any-return]


def cli(*args: str, **options: object) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a script runs it (``input=``, ``env=`` as for subprocess)."""
    return run([str(BUDGETCTL), *args], **options)


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A bash script with ``budgetctl`` on its PATH (``set -euo pipefail``)."""
    return run(
        ["bash", "-euo", "pipefail", "-c", textwrap.dedent(script)], cwd=cwd, env=with_budgetctl()
    )


def state(*args: str) -> dict:
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout, parse_float=Decimal)


def test_the_entry_point_is_installed() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("budgetctl ")


def test_shell_recipe_check_call_charge(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "request.json").write_text(
        json.dumps(
            {"model": "gpt-4o", "max_tokens": 200, "messages": [{"role": "user", "content": "hi"}]}
        )
    )
    (tmp_path / "response.json").write_bytes(RESPONSE.read_bytes())
    # docs/cli.md "A shell recipe", with the network call replaced by a canned response.
    result = bash(
        """
        budgetctl create alice --budget 5 --duration monthly -q
        if budgetctl check alice --messages request.json -q; then
            cat response.json | budgetctl update-cost alice --response - -q
        else
            echo "over budget" >&2; exit 3
        fi
        budgetctl show alice --json
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    shown = json.loads(result.stdout, parse_float=Decimal)
    assert shown["current_cost"] == RESPONSE_COST
    assert shown["model_cost"] == {"gpt-4o-2024-08-06": RESPONSE_COST}


def test_shell_recipe_stops_when_over_budget(data_dir: Path, tmp_path: Path) -> None:
    result = bash(
        """
        budgetctl create bob --budget 0.0001 --duration none -q
        status=0
        budgetctl check bob --model gpt-4o --prompt "hello" --max-tokens 1000 -q || status=$?
        echo "status=$status"
        """,
        tmp_path,
    )
    assert result.stdout == "status=3\n"
    assert result.stderr.startswith("error: bob's budget does not cover this call")


def test_piped_response_read_twice_is_charged_once(data_dir: Path) -> None:
    assert cli("create", "alice", "--budget", "5", "--duration", "none").returncode == 0
    first = cli("update-cost", "alice", "--response", "-", input=RESPONSE.read_text())
    second = cli("update-cost", "alice", "--response", "-", input=RESPONSE.read_text())
    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    assert "was already charged: nothing changed" in second.stdout
    assert state("show", "alice")["current_cost"] == RESPONSE_COST
    charges = [e for e in state("history", "alice")["events"] if e["type"] == "charge"]
    assert len(charges) == 1


def test_reset_due_from_cron(data_dir: Path) -> None:
    # carol's day ended yesterday: cron's reset-due (no --now: a later one is refused) closes it
    yesterday = Ledger(clock=lambda: datetime.now(timezone.utc) - timedelta(days=1))
    yesterday.create("carol", "2", duration="daily", start="2026-01-01")
    yesterday.charge_cost("carol", "1.25")
    cron_env = {  # what cron gives a job: no terminal, a bare environment
        "PATH": "/usr/bin:/bin",
        "HOME": str(data_dir.parent),
        "BUDGETCTL_DATA_DIR": str(data_dir),
    }
    quiet = cli("reset-due", "-q", "--now", "2099-01-01T00:00:00Z", "--dry-run", env=cron_env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    ahead = cli("reset-due", "-q", "--now", "2099-01-01T00:00:00Z", env=cron_env)
    assert ahead.returncode == 2 and "is later than the clock" in ahead.stderr
    logged = cli("reset-due", env=cron_env)
    assert logged.returncode == 0 and logged.stderr == ""
    assert logged.stdout.splitlines()[-1] == "checked 1 budget in project default: reset 1"
    assert "reset carol: $1.25 spent of $2.00" in logged.stdout
    assert state("show", "carol")["current_cost"] == 0
    again = cli("reset-due", "-q", env=cron_env)
    assert (again.returncode, again.stdout) == (0, "")
    missing = cli("reset-due", "-q", "-p", "nope", env=cron_env)
    assert missing.returncode == 4 and missing.stderr.startswith("error: no project 'nope'")


def test_parallel_charges_lose_nothing(data_dir: Path, tmp_path: Path) -> None:
    assert cli("create", "dave", "--budget", "100", "--duration", "none").returncode == 0
    loop = "for i in $(seq 50); do budgetctl update-cost dave --cost 0.01 -q; done"
    workers = [
        subprocess.Popen(
            ["bash", "-euc", loop], env=with_budgetctl(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for worker in workers:
        _, errors = worker.communicate(timeout=180)
        assert worker.returncode == 0, errors
    assert state("show", "dave")["current_cost"] == Decimal("2.00")
    charges = [
        e for e in state("history", "dave", "--limit", "1000")["events"] if e["type"] == "charge"
    ]
    assert len(charges) == 200


PROBE = """
import json, sys
from budgetctl.cli.app import main
sys.argv = ["budgetctl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = {"rich", "tiktoken", "pydantic", "sqlite3", "psycopg"}  # psycopg: only with a database
heavy = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print(json.dumps([code, heavy]), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["update-cost", "alice", "-m", "gpt-4o", "--prompt-tokens", "9", "--completion-tokens", "3"], []),  # noqa: E501
        (["update-cost", "alice", "--cost", "0.5", "--json"], []),
        (["update-cost", "alice", "--cost", "0.5", "--request-id", "r"], ["sqlite3"]),  # only then
        (["show"], []),
        (["show", "alice", "--json"], []),
        (["reset-due", "-q"], []),
        (["reset-due", "--all-projects", "-q"], []),
        (["projects"], []),
        (["check", "alice", "--cost", "1"], []),
        (["history", "alice"], []),
        (["models", "gpt-4o"], []),
        (["check", "alice", "-m", "gpt-4o", "--prompt", "hello"], ["tiktoken"]),
        (["update-cost", "alice", "-m", "gpt-4o", "--input-text", "a", "--output-text", "b"], ["tiktoken"]),  # noqa: E501
    ],
)  # fmt: skip
def test_plain_and_json_paths_load_no_rich_no_tokenizer_no_sqlite_unless_needed(
    data_dir: Path, args: list[str], loaded: list[str]
) -> None:
    assert cli("create", "alice", "--budget", "5", "-d", "monthly").returncode == 0
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code, heavy = json.loads(result.stderr.splitlines()[-1])
    assert code == 0, result.stderr
    assert heavy == loaded


def test_errors_from_the_entry_point(data_dir: Path) -> None:
    unknown = cli("show", "zed")
    assert unknown.returncode == 4 and "Traceback" not in unknown.stderr
    assert cli("create", "a", "-b", "1", "--duration", "none").returncode == 0
    (data_dir / "default.json").write_text('{"format": "budgetctl-state"')
    corrupt = cli("update-cost", "a", "--cost", "1")
    assert corrupt.returncode == 1
    assert corrupt.stderr.count("\n") == 1 and str(data_dir / "default.json") in corrupt.stderr
    usage = cli("create", "a", "--budget", "-3", "--duration", "none")
    assert usage.returncode == 2 and usage.stderr.startswith("error: budget must not be negative")


def test_shell_completion(data_dir: Path) -> None:
    env = {
        **os.environ,
        "_BUDGETCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": "budgetctl upd",
        "COMP_CWORD": "1",
    }
    result = cli(env=env)
    assert result.returncode == 0 and result.stdout.split() == ["update-cost"]
    script = cli("--show-completion", "bash")
    assert script.returncode == 0 and "_budgetctl_completion" in script.stdout


def test_a_closed_pipe_is_not_a_traceback(data_dir: Path, tmp_path: Path) -> None:
    result = bash("budgetctl models | head -1 >/dev/null", tmp_path)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def complete(line: str) -> list[str]:
    """What bash completion offers for the last word of ``line`` (typer's bash protocol)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**with_budgetctl(), "_BUDGETCTL_COMPLETE": "complete_bash", "COMP_WORDS": line}
    result = cli(env={**env, "COMP_CWORD": str(cword)})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_completion_offers_users_projects_models_durations_and_zones(data_dir: Path) -> None:
    for user in ("alice", "bob@example.com", "albert"):
        assert cli("create", user, "-b", "5", "-d", "monthly").returncode == 0
    assert cli("-p", "team", "create", "carol", "-b", "5", "-d", "daily").returncode == 0
    assert complete("budgetctl show ") == ["albert", "alice", "bob@example.com"]
    assert complete("budgetctl update-cost al") == ["albert", "alice"]
    assert complete("budgetctl delete alice b") == ["bob@example.com"]
    assert complete("budgetctl -p team history ") == ["carol"]  # the project named before
    assert complete("budgetctl reset --project team ") == ["carol"]
    assert complete(f"budgetctl --data-dir {data_dir / 'none'} show ") == []
    assert complete("budgetctl show -p ") == ["default", "team"]
    assert complete("budgetctl -p t") == ["team"]
    assert complete("budgetctl create dan -d mo") == ["monthly"]
    assert "3mo" in complete("budgetctl set alice --duration ")
    assert complete("budgetctl create dan --tz Europe/Par") == ["Europe/Paris"]
    assert complete("budgetctl check alice -m gpt-4o-mini-2") == ["gpt-4o-mini-2024-07-18"]
    assert "claude-3-5-sonnet-20241022" in complete("budgetctl models claude-3-5")
    assert complete("budgetctl price remove gpt-4o-mini-2") == ["gpt-4o-mini-2024-07-18"]


def _holds_recipe() -> str:
    """The script of docs/cli.md's "Holds: reserve, then commit", as the docs print it."""
    doc = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    section = doc.split("## Holds: reserve, then commit", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _fake_curl(folder: Path, response: Path | None) -> Path:
    """A ``curl`` on the PATH that writes ``response`` to its ``-o FILE``, or fails (exit 22)."""
    folder.mkdir()
    curl = folder / "curl"
    if response is None:
        curl.write_text(
            "#!/bin/sh\necho 'curl: (22) The requested URL returned error: 503' >&2\nexit 22\n"
        )
    else:
        curl.write_text(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n"
            '  if [ "$1" = -o ]; then cp "' + str(response) + '" "$2"; fi; shift\n'
            "done\n"
        )
    curl.chmod(0o755)
    return folder


@pytest.mark.parametrize("call_succeeds", [True, False])
def test_holds_recipe_reserve_call_commit_or_release(
    data_dir: Path, tmp_path: Path, call_succeeds: bool
) -> None:
    """docs/cli.md's holds recipe, run verbatim with a stand-in for curl: the call's cost is
    recorded and its hold freed, or (the call failed) the hold is released; nothing stays held."""
    assert cli("create", "alice", "--budget", "5", "--duration", "monthly").returncode == 0
    shim = _fake_curl(tmp_path / "bin", RESPONSE if call_succeeds else None)
    env = with_budgetctl()
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    env["OPENAI_API_KEY"] = "sk-test"
    script = tmp_path / "recipe.sh"
    script.write_text(_holds_recipe())
    result = run(["bash", str(script)], cwd=tmp_path, env=env)
    assert result.returncode == (0 if call_succeeds else 1), result.stderr
    shown = state("show", "alice")
    assert shown["reserved"] == 0 and state("holds")["holds"] == []
    events = state("history", "alice")["events"]
    kinds = [e["type"] for e in events]
    assert kinds == (
        ["commit", "hold", "create"] if call_succeeds else ["release", "hold", "create"]
    )
    held = events[1]["amount"]
    assert held > 0  # the worst case: the prompt and 300 completion tokens of gpt-4o
    if call_succeeds:
        assert shown["current_cost"] == RESPONSE_COST and events[0]["held"] == held
        assert events[0]["hold_id"] == events[1]["hold_id"]
        # the commit line again: the same hold and charge, a duplicate
        again = run(
            [
                "bash",
                "-c",
                f"budgetctl update-cost alice --response response.json "
                f"--hold {events[0]['hold_id']}",
            ],
            cwd=tmp_path,
            env=env,
        )
        assert again.returncode == 0 and "already committed" in again.stdout, again.stderr
        assert state("show", "alice")["current_cost"] == RESPONSE_COST
    else:
        assert shown["current_cost"] == 0


def test_holds_recipe_stops_when_the_call_does_not_fit(data_dir: Path, tmp_path: Path) -> None:
    assert cli("create", "alice", "--budget", "0.0001", "--duration", "monthly").returncode == 0
    shim = _fake_curl(tmp_path / "bin", RESPONSE)
    env = with_budgetctl()
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    env["OPENAI_API_KEY"] = "sk-test"
    script = tmp_path / "recipe.sh"
    script.write_text(_holds_recipe())
    result = run(["bash", str(script)], cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert result.stderr.startswith("error: alice's budget does not cover this call")
    assert not (tmp_path / "response.json").exists()  # no call was made
    assert state("holds")["holds"] == []
