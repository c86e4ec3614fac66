"""docs/cli.md's "a monthly CSV from cron", run verbatim as cron would (a shell, budgetctl on the
PATH, the data dir in the environment): last month's charges land in one CSV whose rows add up,
exactly, to what was charged last month, and nothing of this month or the month before."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from budgetctl import reports
from budgetctl.ledger import Ledger

pytestmark = pytest.mark.process

BUDGETCTL = Path(sys.executable).parent / "budgetctl"
CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _recipe() -> str:
    section = CLI_DOC.read_text().split("## Recipe: a monthly CSV from cron", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _month_start(moment: datetime, back: int = 0) -> datetime:
    year, month = moment.year, moment.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=timezone.utc)


def test_the_monthly_csv_recipe(data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    this_month, last_month = _month_start(now), _month_start(now, 1)
    moment = [last_month - timedelta(days=3)]
    ledger = Ledger("team-a", clock=lambda: moment[0])
    ledger.create("alice", 100, duration="monthly")
    ledger.create("bob", 100, duration="monthly")
    expected = Decimal(0)
    plan = [
        (last_month - timedelta(microseconds=1), "alice", "7"),  # the month before: left out
        (last_month, "alice", "0.1"),  # the first instant of last month: in
        (last_month + timedelta(days=9, hours=5), "bob", "0.000000123456789"),
        (last_month + timedelta(days=20), "alice", "0.2"),
        (this_month - timedelta(microseconds=1), "bob", "1.999999999999"),  # its last instant
    ]
    for when, user, cost in plan:
        moment[0] = when
        ledger.charge_cost(user, cost, model="gpt-4o")
        if last_month <= when < this_month:
            expected += Decimal(cost)
    if now - this_month > timedelta(seconds=1):  # this month's (unless it began a moment ago)
        moment[0] = this_month
        ledger.charge_cost("alice", "5", model="gpt-4o")

    script = tmp_path / "budgetctl-monthly-csv"
    script.write_text(_recipe())
    script.chmod(0o755)
    out = tmp_path / "reports"
    out.mkdir()
    env = {
        **os.environ,
        "PATH": f"{BUDGETCTL.parent}{os.pathsep}{os.environ['PATH']}",
        "BUDGETCTL_PROJECT": "team-a",
    }
    result = subprocess.run(
        [str(script), str(out)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    name = f"spend-team-a-{last_month:%Y-%m}.csv"
    assert sorted(p.name for p in out.iterdir()) == [name]  # no .tmp left behind
    text = (out / name).read_text()
    assert text.splitlines()[0] == ",".join(reports.EXPORT_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert sum(Decimal(row["cost"]) for row in rows) == expected
    assert {row["project"] for row in rows} == {"team-a"}

    # a failure: one error line, a non-zero exit, and no file for that month
    env["BUDGETCTL_PROJECT"] = "no-such-project"
    failed = subprocess.run(
        [str(script), str(out)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert failed.returncode != 0 and failed.stderr.startswith("error: ")
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing half-written either
