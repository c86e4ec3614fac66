"""LiteLLM's hosted budget protocol, served over the server's store.

``POST /get_budget {"project_name"}`` answers ``{"status": "success", "data": user_dict}`` (or
``{"status": "error"}`` for a project with no users, as LiteLLM's server did); ``POST /set_budget
{"project_name", "user_dict"}`` stores a whole ``user_dict``. The records are LiteLLM's shape with
budgetctl's exact record under ``"budgetctl"`` and the project's under ``"__budgetctl__"``, as
budgetctl's own :class:`~budgetctl.store.hosted.HostedStore` writes them, so LiteLLM's
``BudgetManager(client_type="hosted")`` and budgetctl's hosted client both work against it.

The protocol sends whole dicts: ``set_budget`` replaces every user whose record differs from the
store's and deletes the users it leaves out, so of two clients that read, change and write at
once, the last one wins and the other's change is lost. That is the protocol's nature (documented
in docs/server.md); ``/v1/`` has one atomic request per operation and loses nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from budgetctl.core import rules
from budgetctl.errors import BudgetctlError, UsageError
from budgetctl.server.stores import Backend
from budgetctl.store import codec
from budgetctl.store.document import FORMAT, VERSION
from budgetctl.store.hosted import WRITE_KEY
from budgetctl.store.litellm_format import (
    META_KEY,
    RECORD_KEY,
    budget_from_litellm,
    litellm_record,
    mirrors,
)

# project -> the write id of the last set_budget (budgetctl's hosted client reads it back to
# settle a write whose answer was lost); kept for the server's lifetime only.
_last_write: dict[str, str] = {}
_last_write_lock = threading.Lock()


def project_of(body: Mapping[str, Any]) -> str:
    name = body.get("project_name")
    if not isinstance(name, str):
        raise UsageError("project_name must be a string")
    return rules.check_project_name(name)


def get_budget(backend: Backend, body: Mapping[str, Any]) -> dict[str, Any]:
    """The project's user_dict, or ``{"status": "error"}`` when it has no users."""
    project = project_of(body)
    ledger = backend.ledger(project)
    if not ledger.exists():
        return {"status": "error", "message": f"no budgets in project {project!r}"}
    view = ledger.view()
    if not view.users:
        return {"status": "error", "message": f"no budgets in project {project!r}"}
    user_dict: dict[str, Any] = {
        budget.user: {**litellm_record(budget), RECORD_KEY: codec.encode(budget)}
        for budget in view.users
    }
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "cap": codec.encode(view.cap) if view.cap is not None else None,
        "request_ids": {},
    }
    with _last_write_lock:
        if project in _last_write:
            meta[WRITE_KEY] = _last_write[project]
    user_dict[META_KEY] = meta
    return {"status": "success", "data": user_dict}


def set_budget(backend: Backend, body: Mapping[str, Any]) -> dict[str, Any]:
    """Store a whole user_dict: users whose record changed are replaced, users left out are
    deleted (last writer wins; see the module docstring)."""
    project = project_of(body)
    user_dict = body.get("user_dict")
    if not isinstance(user_dict, dict):
        raise UsageError("user_dict must be an object of user records")
    ledger = backend.ledger(project)
    now = ledger.now()
    current = {b.user: b for b in ledger.view().users} if ledger.exists() else {}
    wanted = []
    for user, raw in user_dict.items():
        if user == META_KEY:
            continue
        if not isinstance(raw, dict):
            raise UsageError(f"user {user!r}: a record must be an object")
        budget = _budget(user, raw, now)
        rolled = rules.roll_over(budget, now)[0]
        held = current.get(user)
        if held is None or codec.encode(held) != codec.encode(rolled):
            wanted.append(budget)
    gone = [user for user in current if user not in user_dict]
    if wanted:
        ledger.store.create_many(wanted, replace=True)
    if gone:
        ledger.delete(gone)
    meta = user_dict.get(META_KEY)
    if isinstance(meta, dict) and isinstance(meta.get(WRITE_KEY), str):
        with _last_write_lock:
            _last_write[project] = meta[WRITE_KEY][:64]
    return {"status": "success"}


def _budget(user: str, raw: Mapping[str, Any], now: Any) -> rules.Budget:
    """The budget a record means: budgetctl's exact record while the LiteLLM fields still mirror
    it, else the LiteLLM fields (a LiteLLM client changed them)."""
    exact = raw.get(RECORD_KEY)
    if isinstance(exact, dict):
        try:
            decoded = codec.decode(user, exact)
        except (codec.RecordError, ValueError, TypeError, ArithmeticError):
            decoded = None
        if decoded is not None and mirrors(raw, decoded):
            return decoded
    try:
        return budget_from_litellm(user, raw, now)
    except BudgetctlError as exc:
        raise UsageError(f"user_dict: {exc}") from None
