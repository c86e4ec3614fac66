"""LiteLLM 1.110.2's own ``BudgetManager(client_type="hosted")`` against ``budgetctl serve``
(issue 12, "What must be shown"): one LiteLLM process creates a budget and charges a completion
(a ``ModelResponse`` built from a dict: no network, LiteLLM's bundled price map), a second
LiteLLM process reads it back, and ``budgetctl show --json`` on the server's store (a data dir,
or PostgreSQL) shows the same budget.

LiteLLM runs in its own interpreter, bench/.venv-litellm's (never a dependency of budgetctl or of
its tests; `.ci/run` creates that venv), and never imports budgetctl: the script below checks
that. Where the venv is absent the tests skip, except under ``BUDGETCTL_REQUIRE_LITELLM=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import data
from helpers.postgres import fresh_schema
from helpers.server import allow_loopback, running

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / "bench" / ".venv-litellm" / "bin" / "python"
TOKEN = "litellm-t0ken-for-serve"

pytestmark = [pytest.mark.litellm, pytest.mark.usefixtures("cli_env")]
pytest_plugins = ["helpers.cli"]

# Run by LiteLLM's python: argv = URL TOKEN PHASE. Prints one JSON line.
SCRIPT = r"""
import json, sys, threading
from litellm import BudgetManager
from litellm.utils import ModelResponse

url, token, phase = sys.argv[1:4]
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
manager = BudgetManager(project_name="lite", client_type="hosted", api_base=url, headers=headers)
out = {}
if phase == "write":
    manager.create_budget(total_budget=10, user="alice", duration="monthly")
    response = ModelResponse(**{
        "id": "chatcmpl-offline-1",
        "object": "chat.completion",
        "created": 1764547200,
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello there!"}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
    })
    out["charged"] = manager.update_cost(completion_obj=response, user="alice")["user"]
    # LiteLLM saves in background threads (create_budget's, update_cost's): let them finish,
    # then save once more, so the last write is the whole, charged dict.
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join()
    out["saved"] = manager.save_data()
out["user_dict"] = manager.user_dict
out["budgetctl_imported"] = any(name.split(".")[0] == "budgetctl" for name in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture
def litellm_python() -> str:
    if not VENV_PYTHON.exists():
        why = (
            "LiteLLM's venv bench/.venv-litellm is absent; `python bench/differential.py` "
            "creates it (from PyPI)"
        )
        if os.environ.get("BUDGETCTL_REQUIRE_LITELLM"):
            pytest.fail(why + " (BUDGETCTL_REQUIRE_LITELLM is set: it must be there)")
        pytest.skip(why)
    return str(VENV_PYTHON)


def litellm(python: str, url: str, phase: str, tmp_path: Path) -> dict[str, Any]:
    """One LiteLLM process; its JSON line. No budgetctl on its path, no network but ours."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # its bundled price map
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [python, "-c", SCRIPT, url, TOKEN, phase],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["budgetctl_imported"] is False
    return found


@pytest.fixture(params=["json", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """The server's store, as ``budgetctl`` options naming it."""
    if request.param == "json":
        yield ("--data-dir", str(tmp_path / "served"))
    else:
        with fresh_schema() as url:
            yield ("--database-url", url)


def test_litellm_hosted_client_against_budgetctl_serve(
    litellm_python: str,
    store: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allow_loopback(monkeypatch)
    where = dict([store])
    with running(where.get("--data-dir"), where.get("--database-url"), token=TOKEN) as up:
        writer = litellm(litellm_python, up.url, "write", tmp_path)
        assert writer["saved"] == {"status": "success"}
        charged = writer["charged"]
        cost = charged["current_cost"]
        assert cost > 0 and charged["model_cost"] == {"gpt-3.5-turbo": cost}
        assert (
            charged["total_budget"] == 10 and charged["duration"] == 28
        )  # LiteLLM 1.110's DAYS_IN_A_MONTH

        reader = litellm(litellm_python, up.url, "read", tmp_path)
        alice = reader["user_dict"]["alice"]
        assert alice["current_cost"] == cost
        assert alice["total_budget"] == 10 and alice["duration"] == 28
        assert alice["model_cost"] == {"gpt-3.5-turbo": cost}
        # every request LiteLLM sent carried the token and was answered 2xx
        lines = [json.loads(line) for line in up.log.getvalue().splitlines()]
        litellm_lines = [x for x in lines if x["path"] in ("/get_budget", "/set_budget")]
        assert {x["path"] for x in litellm_lines} == {"/get_budget", "/set_budget"}
        assert all(x["status"] == 200 for x in litellm_lines), litellm_lines

    # the server's store, read by budgetctl itself (the server stopped)
    shown = data("show", "-p", "lite", *store)
    (user,) = shown["users"]
    assert user["user"] == "alice"
    assert user["total_budget"] == Decimal(10)
    assert user["current_cost"] == Decimal(repr(cost))
    assert user["duration"] == "28d"
    assert user["model_cost"] == {"gpt-3.5-turbo": Decimal(repr(cost))}
