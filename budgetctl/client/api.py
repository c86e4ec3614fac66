"""The HTTP side of client mode: one request to the ``/v1`` API, its answer as exact JSON, and
its error as the same :class:`~budgetctl.errors.BudgetctlError` class the server raised (so the
command line's exit codes are the same as on a local store).

Requests go through :func:`budgetctl.store.http.exchange` (a total deadline, an answer size
limit, no redirect followed, proxies honoured). The token is sent as ``Authorization: Bearer``
and appears in no message; nor does a password written in the URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from budgetctl import errors
from budgetctl.client import TIMEOUT_ENV, TOKEN_ENV
from budgetctl.core import jsontext
from budgetctl.errors import BudgetctlError, StorageIOError, UsageError
from budgetctl.store import http
from budgetctl.store.lock import check_timeout

DEFAULT_TIMEOUT = 30.0  # seconds for a whole request: connect, send, and read the answer
MAX_ANSWER = 64 * 2**20  # bytes: a large project's history or show


def error_code(cls: type[BudgetctlError]) -> str:
    """The API's code of an error class: its name without ``Error``, in snake case
    (``StorageIOError`` -> ``storage_io``, ``UnknownUserError`` -> ``unknown_user``)."""
    name = cls.__name__.removesuffix("Error")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower()


def _classes() -> dict[str, type[BudgetctlError]]:
    found: dict[str, type[BudgetctlError]] = {}
    todo: list[type[BudgetctlError]] = [BudgetctlError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            found.setdefault(error_code(cls), cls)
        todo.extend(cls.__subclasses__())
    return found


_CLASSES: dict[str, type[BudgetctlError]] | None = None


def redact(url: str) -> str:
    """``url`` without a user or password (it is shown in messages)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=host))


class Client:
    """A budget server's ``/v1`` API at ``base`` (``BUDGETCTL_SERVER``), with ``token``
    (default ``BUDGETCTL_SERVER_TOKEN``) and ``timeout`` seconds per request (default
    ``BUDGETCTL_SERVER_TIMEOUT``, else 30)."""

    def __init__(self, base: str, token: str | None = None, timeout: float | None = None) -> None:
        self.base = http.check_base_url(base, "BUDGETCTL_SERVER")
        self.where = redact(self.base)
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if timeout is None:
            text = os.environ.get(TIMEOUT_ENV) or ""
            try:
                timeout = float(text) if text else DEFAULT_TIMEOUT
            except ValueError:
                raise UsageError(
                    f"{TIMEOUT_ENV} must be a number of seconds, not {text!r}"
                ) from None
        self.timeout = check_timeout(timeout, "the budget server's timeout")
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "budgetctl",
        }
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:  # never the token
        return f"Client({self.where!r})"

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = self.base + path
        if query:
            given = {k: v for k, v in query.items() if v is not None}
            if given:
                url += "?" + urlencode(given)
        return url

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        unsure: str = "",
        document: tuple[str, bytes] | None = None,
        raw: bool = False,
    ) -> Any:
        """The JSON answer of one request (numbers read as exact Decimals).

        ``unsure``: for a write, what to say when the request may have reached the server but no
        answer came (its outcome is then unknown). ``document``: a whole document to send as the
        body instead (its media type and bytes: a dump, a user_cost.json). ``raw``: the answer's
        bytes as they came (a dump), not read as JSON.
        """
        url = self.url(path, query)
        where = redact(url)
        headers = self.headers
        if document is not None:
            headers = {**headers, "Content-Type": document[0]}
            data: bytes | None = document[1]
        else:
            data = None if body is None else json.dumps(body, default=_json_default).encode()
        try:
            answer = http.exchange(
                method, url, data, headers, timeout=self.timeout, max_answer=MAX_ANSWER
            )
        except http.NoAnswer as exc:
            hint = unsure if (exc.sent and unsure) else ""
            raise StorageIOError(where, exc.reason, hint) from None
        except StorageIOError as exc:  # a redirect
            raise StorageIOError(where, exc.reason) from None
        if raw and 200 <= answer.status < 300:
            return answer.body
        try:
            found = jsontext.loads(answer.body, parse_float=Decimal) if answer.body else None
        except (ValueError, UnicodeDecodeError):
            found = None
        if 200 <= answer.status < 300:
            if found is None and answer.body:
                raise StorageIOError(where, "the budget server's answer is not JSON")
            return found
        raise self._error(where, answer.status, found)

    def _error(self, where: str, status: int, found: Any) -> BudgetctlError:
        """The error an answer of ``status`` stands for: the server's own class when it named
        one, else a StorageIOError naming the URL (exit 1)."""
        global _CLASSES
        error = found.get("error") if isinstance(found, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return StorageIOError(where, f"the budget server answered HTTP {status}")
        code, message = str(error.get("code")), error["message"]
        if code == "unauthorized":
            return StorageIOError(
                where,
                f"the budget server refused the request (HTTP {status}: {message})",
                f"set {TOKEN_ENV} to the server's token",
            )
        if code in ("not_found", "method_not_allowed"):
            return StorageIOError(
                where,
                f"the budget server answered HTTP {status} ({message})",
                "is BUDGETCTL_SERVER the URL of 'budgetctl serve' (of this version)?",
            )
        if code == "too_large":
            return UsageError(message)
        if _CLASSES is None:
            _CLASSES = _classes()
        cls = _CLASSES.get(code)
        if cls is None:  # schema_missing, and any code of a newer server
            cls = BudgetctlError if status < 500 else errors.StateError
        return _rebuilt(cls, message, error)


def _rebuilt(cls: type[BudgetctlError], message: str, error: Mapping[str, Any]) -> BudgetctlError:
    """An instance of ``cls`` saying ``message`` (the server's sentence), with the attributes the
    answer gives (``scope`` of a budget exceeded, ...)."""
    made = cls.__new__(cls)
    Exception.__init__(made, message)
    made.message = message
    if isinstance(made, errors.StateError):
        made.path, made.reason = "", message
    if isinstance(made, errors.BudgetExceededError):
        made.scope = str(error.get("scope") or "user")
        for key in ("current_cost", "max_budget"):
            value = error.get(key)
            exact = Decimal(str(value)) if isinstance(value, (int, Decimal, str)) else Decimal(0)
            setattr(made, key + "_exact", exact)
            setattr(made, key, float(exact))
    for key in ("user", "project", "hold_id", "model", "request_id"):
        if isinstance(error.get(key), str):
            setattr(made, key, error[key])
    return made


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        from budgetctl.core.money import to_text

        return to_text(value) if value >= 0 else "-" + to_text(-value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def segment(name: str) -> str:
    """``name`` as one path segment (a user, a project, a model: any text, never a path)."""
    return quote(name, safe="")
