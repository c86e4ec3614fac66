"""A budgetctl server for tests: uvicorn in a thread on a free loopback port, and a small
http.client caller that reads answers with exact decimals (no httpx needed).

The test suite blocks the network (tests/conftest.py); :func:`allow_loopback` lets one test
reach its own server on 127.0.0.1 again.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

_REAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "create_connection": socket.create_connection,
    "getaddrinfo": socket.getaddrinfo,
}


def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the test suite's network block for this test (it talks to its own server only)."""
    monkeypatch.setattr(socket.socket, "connect", _REAL["connect"])
    monkeypatch.setattr(socket.socket, "connect_ex", _REAL["connect_ex"])
    monkeypatch.setattr(socket, "create_connection", _REAL["create_connection"])
    monkeypatch.setattr(socket, "getaddrinfo", _REAL["getaddrinfo"])


class Answer(NamedTuple):
    status: int
    body: Any
    headers: dict[str, str]


class Client:
    """Requests to one server: ``call("PUT", "/v1/...", {...})`` -> Answer."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        sent = {"Content-Type": "application/json", **(headers or {})}
        given = token if token is not None else self.token
        if given:
            sent["Authorization"] = f"Bearer {given}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            text = response.read()
            found = json.loads(text, parse_float=Decimal) if text else None
            return Answer(response.status, found, dict(response.getheaders()))
        finally:
            conn.close()


class Running(NamedTuple):
    url: str
    client: Client
    log: io.StringIO


@contextmanager
def running(
    data_dir: Any = None, database_url: str | None = None, token: str = ""
) -> Iterator[Running]:
    """A server over ``data_dir`` (or the database) in a thread, stopped after."""
    import uvicorn

    from budgetctl.server.app import build_app
    from budgetctl.server.stores import Backend

    log = io.StringIO()
    backend = Backend(None if data_dir is None else str(data_dir), database_url)
    app = build_app(backend, token=token, log=log)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        yield Running(url, Client(url, token or None), log)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
