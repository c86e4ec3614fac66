"""Whether an ``api_base`` is a budgetctl server (``budgetctl serve``), for
``BudgetManager(client_type="hosted", api_base=...)``: its ``GET /healthz`` answers
``"service": "budgetctl"``. Asked once per process and ``api_base`` (a definite answer is kept;
no answer at all is not, and the hosted protocol's client is used, which fails as it always did).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping

from budgetctl.core import rules
from budgetctl.errors import BudgetctlError
from budgetctl.store import http

PROBE_TIMEOUT = 5.0  # seconds: a budgetctl server answers /healthz at once
_known: dict[str, bool] = {}
_lock = threading.Lock()


def is_budgetctl(api_base: str) -> bool:
    """True when ``api_base`` is a budgetctl server."""
    try:
        base = http.check_base_url(api_base)
    except BudgetctlError:
        return False
    with _lock:
        if base in _known:
            return _known[base]
    try:
        answer = http.exchange(
            "GET", base + "/healthz", None, {"Accept": "application/json"},
            timeout=PROBE_TIMEOUT, max_answer=65536,
        )  # fmt: skip
    except BudgetctlError:
        return False  # no answer: not kept, asked again by the next manager
    try:
        found = json.loads(answer.body) if 200 <= answer.status < 300 else None
    except (ValueError, UnicodeDecodeError):
        found = None
    verdict = isinstance(found, dict) and found.get("service") == "budgetctl"
    with _lock:
        _known[base] = verdict
    return verdict


def fits_v1(project: object) -> bool:
    """Whether ``project`` is a name the ``/v1`` API takes (LiteLLM's protocol takes any)."""
    try:
        rules.check_project_name(project)  # type: ignore[arg-type]
    except BudgetctlError:
        return False
    return True


def bearer(headers: Mapping[str, str] | None) -> str | None:
    """The token of an ``Authorization: Bearer T`` header (LiteLLM's ``headers=``)."""
    for name, value in (headers or {}).items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
