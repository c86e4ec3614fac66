"""One HTTP exchange with a budget server, hardened: the hosted store (LiteLLM's protocol) and
budgetctl's own client (:mod:`budgetctl.client`) both go through :func:`exchange`.

The standard library's ``http.client`` only (a one-shot command must not import a heavy HTTP
stack), and a client that trusts the server only as far as it must:

- redirects are never followed (a 3xx is an error naming where it pointed), so neither the request
  nor its ``Authorization`` header goes anywhere but the URL given;
- a request has a total deadline (``timeout``, for connecting, sending and reading together, not
  per read: a server sending a byte a second is cut at the deadline) and an answer has a size limit
  (``max_answer``), checked while reading;
- the ``http(s)_proxy`` / ``no_proxy`` variables are honoured (a proxy for https is a tunnel);
- a failure says whether the request may have reached the server (:attr:`NoAnswer.sent`): a write
  whose answer was lost may have been done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from budgetctl.core.record import Record
from budgetctl.errors import StorageIOError, UsageError

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NoAnswer(StorageIOError):
    """No complete, readable answer. ``sent``: the request may have reached the server."""

    def __init__(self, path: object, reason: str, sent: bool, hint: str = "") -> None:
        super().__init__(path, reason, hint)
        self.sent = sent


class Answer(Record):
    """A complete answer: its HTTP status and its whole body."""

    status: int
    body: bytes


def check_base_url(url: Any, what: str = "api_base") -> str:
    """``url`` without a trailing '/', if it is an http(s) URL with a host; else the
    StorageIOError a server that cannot be reached is."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except (TypeError, ValueError, AttributeError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageIOError(
            repr(url), f"{what} must be an http:// or https:// URL with a host name"
        )
    return str(url).rstrip("/")


def check_max_answer(max_answer: Any) -> int:
    if isinstance(max_answer, bool) or not isinstance(max_answer, int) or max_answer < 1:
        raise UsageError(f"max_answer must be a number of bytes >= 1, not {max_answer!r}")
    return max_answer


def exchange(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    timeout: float,
    max_answer: int,
) -> Answer:
    """Send one request; its answer (any status but a redirect), within the deadline.

    Raises :class:`NoAnswer` when no complete answer came (with ``sent`` telling whether the
    request may have reached the server), StorageIOError for a redirect.
    """
    import http.client
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        connection = connection_class(via.hostname or "", via.port, timeout=timeout)
        if parts.scheme == "https":
            connection.set_tunnel(host, port)
        else:
            target = url  # a plain-HTTP proxy takes the absolute URL
    else:
        connection = connection_class(host, port, timeout=timeout)
    deadline = time.monotonic() + timeout
    expired = threading.Event()

    def cut() -> None:  # the deadline: unblock whatever read or write is waiting
        expired.set()
        sock = connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(2)  # SHUT_RDWR

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    sent = False
    try:
        connection.connect()
        sent = True  # from here on, the server may have the request
        connection.request(method, target, body, dict(headers))
        response = connection.getresponse()
        if response.status in REDIRECTS:
            where = str(response.getheader("Location", "?"))[:200]
            raise StorageIOError(
                url,
                f"the budget server answered HTTP {response.status}, a redirect to {where}",
                "budgetctl never follows redirects (the request and its token went nowhere "
                "else): give the server's own URL",
            )
        return Answer(response.status, _read(response, url, deadline, expired, max_answer))
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or time.monotonic() >= deadline:
            reason = f"the budget server gave no complete answer within {timeout:g} s"
        elif sent:
            reason = f"the budget server's answer was cut off ({exc or type(exc).__name__})"
        else:
            reason = f"cannot reach the budget server ({getattr(exc, 'strerror', '') or exc})"
        raise NoAnswer(url, reason, sent) from None
    finally:
        watchdog.cancel()
        connection.close()


def _read(
    response: Any, url: str, deadline: float, expired: threading.Event, max_answer: int
) -> bytes:
    """The whole body of ``response``, refused past ``max_answer`` bytes or the deadline."""
    too_large = f"the budget server's answer is larger than {max_answer / 2**20:g} MiB"
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_answer:
        raise NoAnswer(url, too_large, sent=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(65536)
        if expired.is_set() or time.monotonic() >= deadline:
            raise TimeoutError  # a shut-down socket reads as an end of file: not a whole body
        if not chunk:
            break
        size += len(chunk)
        if size > max_answer:
            raise NoAnswer(url, too_large, sent=True)
        chunks.append(chunk)
    if length is not None and length.isdigit() and size != int(length):
        raise NoAnswer(url, f"the answer ended after {size} of {length} bytes", sent=True)
    return b"".join(chunks)
