"""A hostile budget server on 127.0.0.1: LiteLLM's hosted protocol, misbehaving on demand.

It keeps projects as tests/helpers/budget_server.py's server does, and can instead: redirect
(to another loopback server that records what reaches it), answer a byte at a time, answer a
huge body, answer ``{"status": "error"}`` as during an outage, or store a ``set_budget`` and
answer it with an empty or unreadable body (or not store it and answer so). Every request's
headers are recorded, so a test can show that a token never went anywhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.budget_server import allow_loopback, forget_seen_projects, running


class HostileServer:
    """What the server does; tests set the attributes between calls."""

    def __init__(self) -> None:
        self.projects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers)
        self.url = ""
        self.redirect_to: str | None = None  # answer 302 with Location: this URL + path
        self.redirect_status = 302
        self.drip: float | None = None  # seconds between the bytes of an answer
        self.huge: int | None = None  # answer this many bytes of JSON-looking junk
        self.huge_length_header = True  # with a Content-Length (else read until closed)
        self.outage = False  # get_budget answers {"status": "error"}
        self.set_reply: bytes | None = None  # set_budget answers these bytes with 200
        self.set_stores = True  # whether set_budget stores what it is sent
        self.hang_after_store: float | None = None  # set_budget stores, then sleeps this long
        self.outage_after_store = False  # set_budget stores, then the outage begins
        self.served = 0


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            server.served += 1
            server.requests.append((self.path, dict(self.headers.items())))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if server.redirect_to is not None:
                self.send_response(server.redirect_status)
                self.send_header("Location", server.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if server.huge is not None:
                self._huge(server.huge)
                return
            if self.path == "/get_budget":
                data = server.projects.get(body["project_name"])
                answer = (
                    {"status": "error"}
                    if data is None or server.outage
                    else {"status": "success", "data": data}
                )
                self._answer(json.dumps(answer).encode())
            elif self.path == "/set_budget":
                if server.set_stores:
                    server.projects[body["project_name"]] = body["user_dict"]
                server.outage = server.outage or server.outage_after_store
                if server.hang_after_store is not None:
                    time.sleep(server.hang_after_store)
                reply = server.set_reply
                self._answer(json.dumps({"status": "success"}).encode() if reply is None else reply)
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def do_GET(self) -> None:  # what a client that follows a 302 as a GET would send
            server.served += 1
            server.requests.append((f"GET {self.path}", dict(self.headers.items())))
            self._answer(b'{"status": "success"}')

        def _answer(self, payload: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if server.drip is None:
                self.wfile.write(payload)
                return
            for byte in payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(server.drip)

        def _huge(self, size: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if server.huge_length_header:
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            block = b'{"status": "success", "data": {' + b" " * 65500
            sent = 0
            while sent < size:
                part = block[: size - sent]
                self.wfile.write(part)
                sent += len(part)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up on a slow or huge answer is the point of these tests


@contextmanager
def hostile_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[HostileServer, HostileServer]]:
    """Two servers on free loopback ports: the one a client talks to, and another origin that a
    redirect may point at (it records any request that reaches it)."""
    allow_loopback(monkeypatch)
    forget_seen_projects(monkeypatch)
    first, elsewhere = HostileServer(), HostileServer()
    with (
        running(_Quiet(("127.0.0.1", 0), _handler(first))) as first.url,
        running(_Quiet(("127.0.0.1", 0), _handler(elsewhere))) as elsewhere.url,
    ):
        yield first, elsewhere
