"""The hosted store: a project's budgets kept by a server that speaks LiteLLM's budget protocol.

The protocol is the one LiteLLM's ``BudgetManager(client_type="hosted")`` uses:

- ``POST {api_base}/get_budget {"project_name": P}`` -> ``{"status": "success", "data": user_dict}``
  (``{"status": "error"}`` when the server has nothing for the project yet);
- ``POST {api_base}/set_budget {"project_name": P, "user_dict": user_dict}``.

``user_dict`` maps each user to a LiteLLM record (``total_budget``, ``current_cost``,
``model_cost`` as floats, ``duration`` in days, ``created_at``/``last_updated_at`` in epoch
seconds), so LiteLLM clients and a LiteLLM server's own reset job keep reading it. budgetctl adds
its exact record under the key ``"budgetctl"`` inside each user's record, and the project cap and
request ids under the reserved user key :data:`META_KEY`. A user record that another client
changed (its LiteLLM fields no longer mirror budgetctl's record), or that only LiteLLM ever wrote,
is taken from its LiteLLM fields, as ``import-litellm`` reads them.

Every operation runs the same ledger rules as the JSON store (this class reuses its operations):
one ``get_budget``, the change, one ``set_budget``. The protocol has no lock and no history, so two
clients that write at once can still lose an update, and ``history`` is not available: that is the
protocol's limit, and why the JSON store (or, later, a database store) is the one to use when
several processes charge one project.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.core import rules
from budgetctl.core.periods import UTC
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    BudgetctlError,
    CorruptStateError,
    NotSupportedError,
    StorageIOError,
    UnknownProjectError,
)
from budgetctl.store import codec
from budgetctl.store.json_store import FORMAT, VERSION, JsonStore, _Txn

LITELLM_API_BASE = "https://api.litellm.ai"  # LiteLLM's default for client_type="hosted"
META_KEY = "__budgetctl__"  # no "duration", so LiteLLM's reset job passes over it
RECORD_KEY = "budgetctl"
DEFAULT_TIMEOUT = 30.0


class HostedStore(JsonStore):
    """A project on a server that speaks LiteLLM's ``get_budget``/``set_budget`` protocol."""

    def __init__(
        self,
        project: str,
        api_base: str = LITELLM_API_BASE,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        # Not JsonStore.__init__: there is no data dir, lock or history file. The operations this
        # class reuses only need the project, and ``path`` to name the state in errors.
        # A project here is the server's key, never a file name: any non-empty name LiteLLM
        # accepts (its docs use "<my-unique-project>") is fine.
        self.project = rules.check_user_name(project)
        self.api_base = _check_api_base(api_base)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout = timeout
        self.path = f"{self.api_base} (project {project!r})"  # type: ignore[assignment]

    # --- the protocol ----------------------------------------------------------------------------

    def _post(self, endpoint: str, payload: Mapping[str, Any]) -> Any:
        import urllib.error
        import urllib.request

        url = f"{self.api_base}/{endpoint}"
        body = json.dumps(payload).encode("utf-8")
        try:
            request = urllib.request.Request(url, data=body, headers=self.headers, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            raise StorageIOError(url, f"the budget server answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: a bad URL
            reason = getattr(exc, "reason", exc)
            raise StorageIOError(url, f"cannot reach the budget server ({reason})") from None
        try:
            # LiteLLM's floats are read as the decimal text the server sent (never as binary).
            return json.loads(data, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise CorruptStateError(url, "the budget server's answer is not JSON") from None

    def fetch(self) -> dict[str, Any]:
        """The project's ``user_dict`` as the server holds it ({} when it has none)."""
        answer = self._post("get_budget", {"project_name": self.project})
        if not isinstance(answer, dict):
            raise CorruptStateError(self.path, "get_budget did not answer an object")
        if answer.get("status") == "error":
            return {}
        data = answer.get("data")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise CorruptStateError(self.path, "get_budget's 'data' is not an object of users")
        return data

    def store(self, user_dict: Mapping[str, Any]) -> None:
        answer = self._post("set_budget", {"project_name": self.project, "user_dict": user_dict})
        if isinstance(answer, dict) and answer.get("status") == "error":
            raise StorageIOError(self.path, f"set_budget failed: {answer.get('message', answer)}")

    # --- user_dict <-> the JSON store's document --------------------------------------------------

    def _to_doc(self, user_dict: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        from budgetctl.importer import budget_from_litellm

        doc = self._new_doc()
        meta = user_dict.get(META_KEY)
        if isinstance(meta, dict):
            doc["cap"] = meta.get("cap")
            doc["request_ids"] = dict(meta.get("request_ids") or {})
        for user, raw in user_dict.items():
            if user == META_KEY:
                continue
            exact = raw.get(RECORD_KEY) if isinstance(raw, dict) else None
            if exact is not None and _mirrors(raw, self._decode(user, exact)):
                doc["users"][user] = exact
                continue
            try:  # written by LiteLLM, or changed by another client since budgetctl wrote it
                doc["users"][user] = codec.encode(budget_from_litellm(user, raw, now))
            except BudgetctlError as exc:
                raise CorruptStateError(self.path, str(exc)) from None
        return doc

    def _to_user_dict(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        user_dict: dict[str, Any] = {}
        for user, raw in doc["users"].items():
            user_dict[user] = {**codec.litellm_record(self._decode(user, raw)), RECORD_KEY: raw}
        user_dict[META_KEY] = {
            "format": FORMAT,
            "version": VERSION,
            "cap": doc.get("cap"),
            "request_ids": doc.get("request_ids", {}),
        }
        return user_dict

    # --- the JSON store's reading and writing, over the protocol ---------------------------------

    def exists(self) -> bool:
        return bool(self.fetch())

    def _load(self, must_exist: bool) -> dict[str, Any] | None:
        user_dict = self.fetch()
        if not user_dict:
            if must_exist:
                raise UnknownProjectError(self.project, self.api_base)
            return None
        return self._to_doc(user_dict, datetime.now(UTC))

    @contextmanager
    def _transaction(
        self, now: datetime | None, *, create: bool = False, dry_run: bool = False
    ) -> Iterator[_Txn]:
        doc = self._load(must_exist=not create)
        txn = _Txn(self, doc if doc is not None else self._new_doc(), now)
        yield txn
        if txn.dirty and not dry_run:
            if txn.now is not None:
                from budgetctl.store.json_store import _prune_request_ids

                _prune_request_ids(txn.doc["request_ids"], txn.now)
            self.store(self._to_user_dict(txn.doc))

    def history(self, user: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        raise NotSupportedError(
            "the hosted budget protocol keeps no history; use a local project for history"
        )

    def set_price(self, price: Price | None, model: str, *, dry_run: bool = False) -> None:
        raise NotSupportedError(
            "custom prices are kept in a local project's data dir; the hosted protocol has none"
        )

    def prices(self) -> dict[str, Price]:
        return {}


def _check_api_base(api_base: Any) -> str:
    """``api_base`` without a trailing '/', if it is an http(s) URL with a host; else the
    StorageIOError a server that cannot be reached is (LiteLLM's client fails on its first call)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(api_base)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except (TypeError, ValueError, AttributeError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageIOError(
            repr(api_base), "api_base must be an http:// or https:// URL with a host name"
        )
    return str(api_base).rstrip("/")


def _mirrors(litellm: Mapping[str, Any], budget: Any) -> bool:
    """True when a record's LiteLLM fields still say what budgetctl's exact record says.

    Compared as floats: the server's numbers are read as Decimals of the text it sent, which is
    the shortest repr of the float budgetctl wrote (a sub-second time's Decimal is not that float).
    """
    mirror = codec.litellm_record(budget)
    try:
        return all(
            float(litellm.get(field, 0)) == mirror[field]
            for field in ("current_cost", "total_budget", "last_updated_at")
        )
    except (TypeError, ValueError):
        return False
