"""A stand-in for ``budgetctl serve``'s ``/v1`` API (/work/wt/API.md), in-process on the standard
library's HTTP server, over local ledgers in a data dir of its own: what the client tests run
against where the real server is not importable. Each route calls the Ledger method and answers
the CLI view's ``--json`` data, as the real server does, with the extra keys the client reads
(``budget``, ``cap_reserved``, ``hold``, ``holds``) and ``{"error": {code, message}}`` errors.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from budgetctl.cli import jsonout
from budgetctl.cli.views import budgets as bv
from budgetctl.cli.views import catalog as cv
from budgetctl.cli.views import charges as chv
from budgetctl.cli.views import resets as rv
from budgetctl.client.api import error_code
from budgetctl.errors import BudgetctlError, UsageError
from budgetctl.ledger import KEEP, Ledger, list_projects
from tests.helpers.budget_server import allow_loopback, running

STATUS = {
    "usage": 400, "invalid_amount": 400, "invalid_duration": 400, "invalid_time": 400,
    "invalid_name": 400, "response_parse": 400, "unknown_user": 404, "unknown_project": 404,
    "unknown_model": 404, "unknown_hold": 404, "user_exists": 409, "project_exists": 409,
    "request_id_conflict": 409, "hold_committed": 409, "budget_exceeded": 402,
    "not_supported": 501, "lock_timeout": 503, "storage_io": 503,
}  # fmt: skip


class ApiServer:
    """The stub's URL, its data dir, the requests it saw (method, path, headers)."""

    def __init__(self, data_dir: Path, token: str | None) -> None:
        self.data_dir = data_dir
        self.token = token
        self.url = ""
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()  # one request at a time is enough for a stand-in

    def ledger(self, project: str) -> Ledger:
        return Ledger(project, self.data_dir, server="")


def _data(report: Any) -> Any:
    data = report.data
    return data() if callable(data) else data


def _handle(api: ApiServer, method: str, path: str, query: dict[str, str], body: Any) -> Any:
    if path == "/healthz":
        return 200, {"status": "ok", "service": "budgetctl", "version": "0", "store": "json"}
    if path == "/v1/projects" and method == "GET":
        return 200, {"projects": list_projects(api.data_dir)}
    match = re.fullmatch(r"/v1/projects/([^/]+)(/.*)?", path)
    if match is None:
        return 404, {"error": {"code": "not_found", "message": f"no route {path}"}}
    ledger = api.ledger(unquote(match.group(1)))
    tail = match.group(2) or ""
    dry = body.get("dry_run", False) or query.get("dry_run") == "true"
    user_match = re.fullmatch(r"/budgets/([^/]+)", tail)
    if tail == "" and method == "GET":
        view = ledger.view()
        data = _data(bv.show_all(view, ledger.now()))
        data["holds"] = [chv.hold_data(h) for h in view.holds]
        return 200, data
    if user_match and method == "PUT":
        b = body
        made = ledger.create(
            unquote(user_match.group(1)), b["total_budget"], duration=b.get("duration"),
            start=b.get("start"), timezone=b.get("timezone", "UTC"), alert_at=b.get("alert_at"),
            replace=b.get("replace", False), dry_run=dry,
        )  # fmt: skip
        return 201, _data(bv.saved(made, "create", ledger.now(), dry))
    if user_match and method == "PATCH":
        b = body
        changed = ledger.set(
            unquote(user_match.group(1)), budget=b.get("total_budget"),
            duration=b.get("duration", KEEP), timezone=b.get("timezone"),
            start=b.get("start", KEEP), alert_at=b.get("alert_at", KEEP), dry_run=dry,
        )  # fmt: skip
        return 200, _data(bv.saved(changed, "update", ledger.now(), dry))
    if user_match and method == "GET":
        found = ledger.standing(unquote(user_match.group(1)))
        data = _data(bv.show_user(found.budget, ledger.now(), ledger.project, found.reserved))
        return 200, data
    if user_match and method == "DELETE":
        return 200, {"deleted": ledger.delete([unquote(user_match.group(1))], dry_run=dry)}
    if tail == "/charges" and method == "POST":
        b = dict(body)
        user, rid, hold = b.pop("user"), b.pop("request_id", None), b.pop("hold_id", None)
        common = {
            "request_id": rid,
            "hold": hold,
            "dry_run": dry,
            "enforce": b.get("enforce", False),
        }
        if "response" in b:
            text = b["response"]
            text = text if isinstance(text, str) else json.dumps(text, default=str)
            result = ledger.charge_response(user, text, model=b.get("model"), **common)
        elif "cost" in b:
            result = ledger.charge_cost(user, b["cost"], model=b.get("model"), **common)
        elif "input_text" in b or "output_text" in b:
            result = ledger.charge_text(
                user, b["model"], b.get("input_text", ""), b.get("output_text", ""), **common
            )
        else:
            result = ledger.charge_tokens(
                user, b["model"], b.get("prompt_tokens", 0), b.get("completion_tokens", 0),
                cached_tokens=b.get("cached_tokens", 0), **common,
            )  # fmt: skip
        data = _data(chv.charge(result, dry))
        data["budget"] = bv.budget_data(result.budget)
        return 200, data
    if tail == "/checks" and method == "POST":
        b = body
        extra = {"reserve": b.get("reserve", False), "ttl": b.get("ttl")}
        if "cost" in b:
            result = ledger.check_cost(b["user"], b["cost"], model=b.get("model"), **extra)
        else:
            result = ledger.check(
                b["user"], b["model"], prompt=b.get("prompt"), messages=b.get("messages"),
                max_tokens=b.get("max_tokens", 0), **extra,
            )  # fmt: skip
        data = _data(chv.check(result, ledger.now()))
        data["budget"] = bv.budget_data(result.budget)
        data["cap_reserved"] = result.cap_reserved
        if result.hold is not None:
            data["hold"] = chv.hold_data(result.hold)
        return 200, data
    if tail == "/holds" and method == "GET":
        found = ledger.holds(query.get("user"))
        return 200, _data(chv.holds(found, query.get("user"), ledger.project, ledger.now()))
    if tail == "/holds/release" and method == "POST":
        return 200, _data(chv.released(ledger.release(body["hold_ids"], dry_run=dry), dry))
    if tail == "/reset" and method == "POST":
        return 200, _data(rv.reset(ledger.reset(body["users"], dry_run=dry), dry))
    if tail == "/reset-due" and method == "POST":
        from budgetctl.core.periods import parse_datetime

        now = parse_datetime(body["now"]) if body.get("now") else None
        done = ledger.reset_due(now=now, dry_run=dry)
        return 200, _data(rv.reset_due([done], [], dry, all_projects=False))
    if tail == "/cap" and method == "PUT":
        b = body
        made = ledger.set_cap(
            b.get("total_budget"), duration=b.get("duration", KEEP), timezone=b.get("timezone"),
            dry_run=dry,
        )  # fmt: skip
        return 200, _data(bv.cap(ledger.project, made, ledger.now(), changed=True, dry_run=dry))
    if tail == "/cap" and method == "DELETE":
        return 200, {"cleared": ledger.clear_cap(dry_run=dry)}
    if tail == "/prices" and method == "GET":
        return 200, _data(cv.models(list(ledger.store.prices().values())))
    price_match = re.fullmatch(r"/prices/([^/]+)", tail)
    if price_match and method == "PUT":
        b = body
        price = ledger.set_price_per_million(
            unquote(price_match.group(1)), b["input_per_million"], b["output_per_million"],
            cache_read=b.get("cache_read"), cache_creation=b.get("cache_creation"), dry_run=dry,
        )  # fmt: skip
        return 200, _data(cv.price_set(price, ledger.project, dry))
    if price_match and method == "DELETE":
        ledger.remove_price(unquote(price_match.group(1)), dry_run=dry)
        return 200, {"removed": unquote(price_match.group(1)), "dry_run": dry}
    if tail == "/history" and method == "GET":
        user, limit = query.get("user"), int(query.get("limit", "50"))
        found = [e.to_json() for e in ledger.history(user, limit)]
        return 200, _data(chv.history(found, user, ledger.project))
    return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.seen.append((self.command, self.path, dict(self.headers)))
            wanted = None if api.token is None else f"Bearer {api.token}"
            given = self.headers.get("Authorization")
            if parts.path != "/healthz" and wanted is not None and given != wanted:
                refused = {"error": {"code": "unauthorized", "message": "a token is needed"}}
                return self._answer(401, refused)
            try:
                body = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
                with api.lock:
                    status, data = _handle(api, self.command, parts.path, query, body)
            except BudgetctlError as exc:
                code = error_code(type(exc))
                code = (
                    code if code in STATUS else ("usage" if isinstance(exc, UsageError) else code)
                )
                status, data = (
                    STATUS.get(code, 500),
                    {"error": {"code": code, "message": exc.message}},
                )
                if code == "budget_exceeded":
                    data["error"]["scope"] = getattr(exc, "scope", "user")
            self._answer(status, data)

        def _answer(self, status: int, data: Any) -> None:
            out = jsonout.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def api_server(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, token: str | None = None
) -> Iterator[ApiServer]:
    """A running stand-in server; the test's network is opened to loopback."""
    allow_loopback(monkeypatch)
    api = ApiServer(data_dir, token)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    with running(httpd) as url:
        api.url = url
        yield api
