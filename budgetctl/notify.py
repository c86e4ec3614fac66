"""Delivering hook events: running a hook's command or POSTing to its URL (docs/hooks.md).

The ledger operations queue deliveries in the store's outbox with the event that caused them
(:mod:`budgetctl.core.hooks`). This module makes them, at least once:

- the process that recorded an event starts a detached ``python -m budgetctl.notify`` for its
  project (:func:`spawn`) and does not wait for it, so a slow hook never slows a charge;
- ``reset-due`` (cron) delivers whatever is still in the outbox (:func:`deliver_pending`), each
  attempt bounded by the hook's timeout;
- a delivery leaves the outbox only after it succeeded (a command's exit status 0, a 2xx answer),
  so a hook that fails, hangs or whose process is killed is tried again, and may be delivered
  more than once: the event's ``id`` is the same every time, for the receiver to dedupe.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from budgetctl.core.hooks import DeliveryReport, Hook
from budgetctl.store.interface import HookStore

USER_AGENT = "budgetctl-hooks"


def environment(payload: Mapping[str, Any], hook: Hook) -> dict[str, str]:
    """The ``BUDGETCTL_*`` variables a hook's command gets (docs/hooks.md)."""
    env = dict(os.environ)
    values = {
        "BUDGETCTL_EVENT_ID": payload.get("id"),
        "BUDGETCTL_EVENT": payload.get("event"),
        "BUDGETCTL_EVENT_TYPE": payload.get("type"),
        "BUDGETCTL_PROJECT": payload.get("project"),
        "BUDGETCTL_USER": payload.get("user"),
        "BUDGETCTL_THRESHOLD": payload.get("threshold"),
        "BUDGETCTL_SPENT": payload.get("spent"),
        "BUDGETCTL_BUDGET": payload.get("budget"),
        "BUDGETCTL_HOOK_ID": hook.hook_id,
    }
    for name, value in values.items():
        env[name] = "" if value is None else str(value)
    return env


def _run(hook: Hook, body: bytes, env: dict[str, str]) -> str | None:
    assert hook.run is not None
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", hook.run],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a timeout ends all of it
        )
    except OSError as exc:
        return f"cannot run the command: {exc}"
    try:
        _, err = proc.communicate(body, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"timed out after {hook.timeout:g} s"
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        return f"exit status {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
    return None


def _post(hook: Hook, body: bytes) -> str | None:
    assert hook.url is not None
    request = urllib.request.Request(
        hook.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as answer:
            answer.read(65536)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot POST: {reason}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(hook: Hook, payload: Mapping[str, Any]) -> str | None:
    """Send ``payload`` to ``hook`` once; None when it succeeded, else why it did not."""
    body = json.dumps(dict(payload), separators=(",", ":")).encode("utf-8")
    if hook.run is not None:  # one line on stdin, as `jq` or `read` expect
        return _run(hook, body + b"\n", environment(payload, hook))
    return _post(hook, body)


def deliver_pending(store: HookStore, now: Callable[[], datetime]) -> DeliveryReport:
    """One attempt at each delivery in the outbox; those made are taken out of it (each right
    after it succeeded, so a process killed midway loses none and repeats at most one)."""
    pending = store.pending()
    if not pending:
        return DeliveryReport(0)
    by_id = {hook.hook_id: hook for hook in store.hooks()}
    done, failed = 0, []
    for delivery in pending:
        hook = by_id.get(delivery.hook_id)
        error = None if hook is None else deliver(hook, delivery.payload)  # removed: drop it
        if error is None:
            store.delivered([delivery.key], now())
            done += hook is not None
        else:
            failed.append((delivery.key, error))
    return DeliveryReport(done, tuple(failed))


def spawn(project: str, data_dir: os.PathLike[str] | str, database_url: str | None) -> bool:
    """Start a detached process that delivers the project's outbox; never waits for it.
    False when it could not be started (``reset-due`` delivers then)."""
    env = dict(os.environ)
    env.pop("BUDGETCTL_SERVER", None)
    if database_url is not None:
        env["BUDGETCTL_DATABASE_URL"] = database_url
    else:
        env.pop("BUDGETCTL_DATABASE_URL", None)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "budgetctl.notify", project, os.fspath(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    """``python -m budgetctl.notify PROJECT DATA_DIR``: deliver the project's outbox once."""
    from budgetctl.ledger import Ledger

    project, data_dir = argv
    ledger = Ledger(project, data_dir, server="")
    report = ledger.deliver_pending()
    return 0 if not report.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
