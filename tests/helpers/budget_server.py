"""A budget server on 127.0.0.1 that speaks LiteLLM's hosted protocol, for the hosted-store tests.

``POST /get_budget {"project_name"}`` answers ``{"status": "success", "data": user_dict}`` (or
``{"status": "error"}`` when it has nothing for the project, as LiteLLM's does);
``POST /set_budget {"project_name", "user_dict"}`` stores it. The tests' network guard lets
connections to this loopback address through and nothing else.
"""

from __future__ import annotations

import _socket
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from budgetctl.store import hosted


class BudgetServer:
    """The server's state: ``projects[name]`` is the last user_dict stored for a project."""

    def __init__(self) -> None:
        self.projects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: int | None = None  # answer every request with this HTTP status
        self.url = ""


def _handler(server: BudgetServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append((self.path, body))
            if server.fail_with is not None:
                self.send_response(server.fail_with)
                self.end_headers()
                return
            if self.path == "/get_budget":
                data = server.projects.get(body["project_name"])
                answer: dict[str, Any] = (
                    {"status": "error"} if data is None else {"status": "success", "data": data}
                )
            elif self.path == "/set_budget":
                server.projects[body["project_name"]] = body["user_dict"]
                answer = {"status": "success"}
            else:
                self.send_response(404)
                self.end_headers()
                return
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this process connect to 127.0.0.1 again (tests/conftest.py blocks every connection)."""
    real_getaddrinfo = _socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise RuntimeError(f"tests run offline: no lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise RuntimeError(f"tests run offline: no connection to {address!r}")
        _socket.socket.connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", _create_connection)


def _create_connection(address: tuple[str, int], timeout: Any = None, *_: Any, **__: Any) -> Any:
    """socket.create_connection for an IPv4 loopback address (what http.client calls)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if isinstance(timeout, (int, float)):
        sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


@contextmanager
def running(httpd: ThreadingHTTPServer) -> Iterator[str]:
    """Serve ``httpd`` in a thread; its URL. Stopped and closed afterwards."""
    # Polled every 20 ms, not every 0.5 s, so that shutdown() (which waits for the next poll) does
    # not add half a second to every test that starts a server.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def forget_seen_projects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hosted client remembers, per process, the projects it saw with users (keyed by URL): a
    new server on a reused port must not inherit that memory."""
    monkeypatch.setattr(hosted, "_seen_with_users", set(), raising=False)


@contextmanager
def budget_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[BudgetServer]:
    """A running budget server on a free loopback port, stopped afterwards."""
    allow_loopback(monkeypatch)
    forget_seen_projects(monkeypatch)
    state = BudgetServer()
    with running(ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))) as state.url:
        yield state
