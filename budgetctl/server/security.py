"""What guards every request: the bearer token, the body limit and the log line.

:class:`Guard` wraps the whole ASGI app (outermost, so nothing answers before it): a request
without the token is refused (401) before any route runs; a body over the limit is refused (413)
by its ``Content-Length`` and, for a chunked or lying one, while it is read; and each request
writes one JSON line on stderr (method, path, status, duration_ms, project), never a header or
the body.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TextIO

from budgetctl.errors import UsageError
from budgetctl.server.errors import BodyTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 2**20  # 1 MiB
MAX_DOCUMENT = 64 * 2**20  # a dump to restore, a user_cost.json to import: 64 MiB
TOKEN_ENV = "BUDGETCTL_SERVER_TOKEN"
PROJECT_KEY = "budgetctl.project"  # in the scope: the project a request named, for the log line
OPEN_PATHS = frozenset({"/healthz"})  # answered without the token


def load_token(token_file: str | None, environ: MutableMapping[str, str] | None = None) -> str:
    """The token: the first line of ``token_file``, else ``BUDGETCTL_SERVER_TOKEN`` ("" for
    none). An empty or unreadable token file is a usage error (exit 2), never "no token"."""
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"cannot read the token file {token_file} ({reason})") from None
        token = text.strip()
        if not token:
            raise UsageError(f"the token file {token_file} is empty")
    else:
        token = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    if any(ord(c) <= 32 or ord(c) >= 127 for c in token):
        raise UsageError(
            "the server token must be printable ASCII without spaces "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches: 127.0.0.0/8, ::1, localhost."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str) -> None:
    """Refuse (exit 2) to listen beyond loopback without a token."""
    if not token and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without a token: anyone who can reach it could spend "
            "the budgets. Set BUDGETCTL_SERVER_TOKEN or give --token-file FILE, or listen on "
            "127.0.0.1"
        )


def authorized(header: bytes | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time)."""
    if header is None:
        return False
    scheme, _, given = header.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), token.encode("utf-8"))


class Guard:
    """The outermost ASGI layer (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str = "",
        max_body: int = MAX_BODY,
        max_document: int = MAX_DOCUMENT,
        documents: tuple[tuple[str, re.Pattern[str]], ...] = (),
        log: TextIO | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.max_document = max_document
        self.documents = documents  # (method, path) of the routes that take a whole document
        self.log = log

    def limit(self, scope: Scope) -> int:
        """The body limit of this request: ``max_document`` for a route that takes a whole
        document (restore, import-litellm), ``max_body`` for every other."""
        method, path = scope.get("method"), scope.get("path") or ""
        for wanted, pattern in self.documents:
            if method == wanted and pattern.match(path):
                return self.max_document
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope[PROJECT_KEY] = None
        status = [500]
        logged = [False]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # logged before the last byte goes out: a reader of the answer finds its line
                logged[0] = True
                self._write_log(scope, status[0], started)
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await _answer(sending, *refusal)
            else:
                await self.app(scope, self._counting(receive, self.limit(scope)), sending)
        finally:
            if not logged[0]:  # no answer (the client went away, or the app failed)
                self._write_log(scope, status[0], started)

    def _refuse(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = dict(scope.get("headers") or [])
        path_open = scope.get("path") in OPEN_PATHS
        if (
            self.token
            and not path_open
            and not authorized(headers.get(b"authorization"), self.token)
        ):
            return 401, "unauthorized", "a valid 'Authorization: Bearer TOKEN' is required"
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.limit(scope)
            except ValueError:
                return 400, "usage", "the Content-Length header is not a number"
            if too_large:
                return 413, "too_large", BodyTooLarge(self.limit(scope)).message
        return None

    def _counting(self, receive: Receive, limit: int) -> Receive:
        seen = [0]

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted

    def _write_log(self, scope: Scope, status: int, started: float) -> None:
        line = {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "project": scope.get(PROJECT_KEY),
        }
        out = self.log if self.log is not None else sys.stderr
        try:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
        except (OSError, ValueError):  # a closed stderr must not fail the request
            pass


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="budgetctl"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
