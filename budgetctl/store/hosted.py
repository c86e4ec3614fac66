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

Every operation is the same :mod:`budgetctl.core.operations` call as on the JSON store, over the
same document (:class:`budgetctl.store.document.DocumentStore`, whose ``load`` is one
``get_budget`` and whose ``commit`` is one ``set_budget``). The protocol has no lock and no
history, so two clients that write at once can still lose an update, and ``history`` is not
available: that is the protocol's limit, and why the JSON store (or, later, a database store) is
the one to use when several processes charge one project.

The client trusts the server only as far as it must (docs/library.md, "client_type=hosted"):

- redirects are never followed (a 3xx is an error naming where it pointed), so neither the request
  nor its ``Authorization`` header goes anywhere but ``api_base``;
- a request has a total deadline (``timeout``, for connecting, sending and reading together, not
  per read: a server sending a byte a second is cut at the deadline) and an answer has a size limit
  (``max_answer``), checked while reading;
- ``{"status": "error"}`` from ``get_budget`` means "nothing stored yet" (as in LiteLLM) only for a
  project this process has never seen with users; once seen, it is an outage, an error, and nothing
  is written over the project;
- a ``set_budget`` whose answer is lost or unreadable after the request was sent (an empty body, a
  timeout, a dropped connection) is settled by reading the project back: each write carries a
  random write id in the project's ``__budgetctl__`` record, so the write is reported stored when
  the server holds that id, and failed (safe to retry) when it does not. Only when even the read
  fails is the outcome unknown; a charge with a request id is then still safe to retry.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetctl.core import events, jsontext, rules
from budgetctl.core.money import ZERO, add
from budgetctl.core.periods import UTC, format_utc
from budgetctl.core.rules import Budget, RememberedCharge
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    BudgetctlError,
    CorruptStateError,
    NotSupportedError,
    StorageIOError,
    UnknownProjectError,
)
from budgetctl.store import codec, http, request_ids
from budgetctl.store.document import FORMAT, VERSION, DocumentState, DocumentStore, new_document
from budgetctl.store.litellm_format import (
    META_KEY,
    RECORD_KEY,
    budget_from_litellm,
    litellm_record,
    mirrors,
)
from budgetctl.store.lock import check_timeout
from budgetctl.store.snapshot import Snapshot

LITELLM_API_BASE = "https://api.litellm.ai"  # LiteLLM's default for client_type="hosted"
WRITE_KEY = "write"  # in the META_KEY record: the id of the write that stored this user_dict
DEFAULT_TIMEOUT = 30.0  # seconds for a whole request: connect, send, and read the answer
MAX_ANSWER = 64 * 2**20  # bytes; a 100,000-user project's user_dict is about 40 MiB

# (api_base, project) of the projects this process has seen holding users: for those, an error
# answer from get_budget is an outage, never "empty". Shared by every HostedStore of the process
# (a web app often builds one BudgetManager per request).
_seen_with_users: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()


_NoAnswer = http.NoAnswer  # no complete, readable answer; ``sent``: the request may have arrived


class HostedStore(DocumentStore):
    """A project on a server that speaks LiteLLM's ``get_budget``/``set_budget`` protocol."""

    def __init__(
        self,
        project: str,
        api_base: str = LITELLM_API_BASE,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        # A project here is the server's key, never a file name: any non-empty name LiteLLM
        # accepts (its docs use "<my-unique-project>") is fine.

        self.project = rules.check_user_name(project)
        self.api_base = _check_api_base(api_base)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout = check_timeout(timeout, "the hosted client's timeout")
        self.max_answer = http.check_max_answer(max_answer)
        self.path = f"{self.api_base} (project {project!r})"
        self.where = self.path

    # --- the protocol ----------------------------------------------------------------------------

    def _exchange(self, endpoint: str, payload: Mapping[str, Any]) -> bytes:
        """POST ``payload`` to ``endpoint``; the body of a 2xx answer, within the deadline
        (:func:`budgetctl.store.http.exchange`: no redirect followed, a size limit, proxies).

        Raises :class:`_NoAnswer` when no complete answer came (with ``sent`` telling whether the
        request may have reached the server), StorageIOError for a redirect or an HTTP error.
        """
        url = f"{self.api_base}/{endpoint}"
        body = json.dumps(payload).encode("utf-8")
        answer = http.exchange(
            "POST", url, body, self.headers, timeout=self.timeout, max_answer=self.max_answer
        )
        if not 200 <= answer.status < 300:
            raise StorageIOError(url, f"the budget server answered HTTP {answer.status}")
        return answer.body

    def _post(self, endpoint: str, payload: Mapping[str, Any]) -> Any:
        """The JSON answer of ``endpoint`` (floats read as the decimal text the server sent)."""
        data = self._exchange(endpoint, payload)
        try:
            return jsontext.loads(data, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise CorruptStateError(
                f"{self.api_base}/{endpoint}", "the budget server's answer is not JSON"
            ) from None

    def fetch(self) -> dict[str, Any]:
        """The project's ``user_dict`` as the server holds it ({} when it has none)."""
        answer = self._post("get_budget", {"project_name": self.project})
        if not isinstance(answer, dict):
            raise CorruptStateError(self.path, "get_budget did not answer an object")
        data = answer.get("data") if answer.get("status") != "error" else None
        if data is None:
            # LiteLLM's server says "error" for a project it has nothing for. For a project seen
            # with users it is an outage: taken as empty, the next write would wipe the project.
            if self._seen():
                message = str(answer.get("message") or answer.get("error") or "no data")[:200]
                raise StorageIOError(
                    self.path,
                    f"get_budget answered an error ({message}) for a project that has users",
                    "nothing was changed; retry when the budget server is back",
                )
            return {}
        if not isinstance(data, dict):
            raise CorruptStateError(self.path, "get_budget's 'data' is not an object of users")
        if data:
            self._see()
        return data

    def store(self, user_dict: Mapping[str, Any]) -> None:
        """``set_budget``; when its answer is lost or unreadable, settled by reading back."""
        write_id = secrets.token_hex(12)
        meta = {**user_dict.get(META_KEY, {}), WRITE_KEY: write_id}
        payload = {"project_name": self.project, "user_dict": {**user_dict, META_KEY: meta}}
        try:
            data = self._exchange("set_budget", payload)
        except _NoAnswer as exc:
            if not exc.sent:
                raise
            self._settle(write_id, exc.reason)
            return
        try:
            answer = jsontext.loads(data, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if isinstance(answer, dict) and answer.get("status") == "error":
            message = str(answer.get("message") or answer)[:200]
            raise StorageIOError(self.path, f"set_budget failed: {message}")
        if not (isinstance(answer, dict) and answer.get("status") == "success"):
            self._settle(write_id, "set_budget's answer was empty or unreadable")
            return
        self._see()

    def _settle(self, write_id: str, what_happened: str) -> None:
        """Whether the write ``write_id`` was stored, read back from the server."""
        try:
            held = self.fetch().get(META_KEY)
        except BudgetctlError as exc:
            raise StorageIOError(
                self.path,
                f"{what_happened}, and reading the project back failed too ({exc.message})",
                "the change may or may not be stored: check before retrying (a charge with a "
                "request id is safe to retry)",
            ) from None
        if isinstance(held, dict) and held.get(WRITE_KEY) == write_id:
            self._see()
            return  # stored: reporting a failure would make a retry charge twice
        raise StorageIOError(
            self.path, f"{what_happened}; the server does not hold the change", "safe to retry"
        )

    def _seen(self) -> bool:
        with _seen_lock:
            return (self.api_base, self.project) in _seen_with_users

    def _see(self) -> None:
        with _seen_lock:
            _seen_with_users.add((self.api_base, self.project))

    # --- user_dict <-> the JSON store's document --------------------------------------------------

    def _to_doc(self, user_dict: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        doc = self.empty_document()
        meta = user_dict.get(META_KEY)
        if isinstance(meta, dict):
            doc["cap"] = meta.get("cap")
            doc["request_ids"] = dict(meta.get("request_ids") or {})
            if meta.get("holds"):
                doc["holds"] = dict(meta["holds"])
            for key in ("carried", "hooks", "pending"):
                if meta.get(key):
                    doc[key] = dict(meta[key])
        for user, raw in user_dict.items():
            if user == META_KEY:
                continue
            exact = raw.get(RECORD_KEY) if isinstance(raw, dict) else None
            if exact is not None and mirrors(raw, self.decode(user, exact)):
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
            user_dict[user] = {**litellm_record(self.decode(user, raw)), RECORD_KEY: raw}
        user_dict[META_KEY] = {
            "format": FORMAT,
            "version": VERSION,
            "cap": doc.get("cap"),
            "request_ids": doc.get("request_ids", {}),
        }
        for key in ("holds", "carried", "hooks", "pending"):
            if doc.get(key):
                user_dict[META_KEY][key] = doc[key]
        return user_dict

    # --- the JSON store's reading and writing, over the protocol ---------------------------------

    def exists(self) -> bool:
        return bool(self.fetch())

    def load(self, must_exist: bool) -> dict[str, Any] | None:
        user_dict = self.fetch()
        if not user_dict:
            if must_exist:
                raise UnknownProjectError(self.project, self.api_base)
            return None
        return self._to_doc(user_dict, datetime.now(UTC))

    def commit(self, state: DocumentState) -> None:
        _note_carried(state)
        ids = state.doc["request_ids"]
        request_ids.inline_prune(ids, rules.request_id_horizon(state.now, request_ids.wall_clock()))
        self.store(self._to_user_dict(state.doc))

    def empty_document(self) -> dict[str, Any]:
        # No history to index here: the ids, with what each was charged for, are in the document.
        return {**new_document(self.project), "request_ids": {}}

    def remembered(self, state: DocumentState, key: str) -> RememberedCharge | None:
        horizon = rules.request_id_horizon(state.now, request_ids.wall_clock())
        return request_ids.inline_find(state.doc.setdefault("request_ids", {}), key, horizon)

    def remember(self, state: DocumentState, key: str, charge: RememberedCharge) -> None:
        state.doc.setdefault("request_ids", {})[key] = request_ids.inline_entry(charge, state.now)

    def spent_since(self, state: DocumentState, start: datetime) -> Decimal:
        """No history here: the spend of the users whose current period began at or after
        ``start`` (all of it falls in the cap's period), except those whose settings changed in
        that period (a new grid keeps the spend so far, some of which may be older). A lower
        bound: what users spent before their own period began is no longer known."""
        carried = state.doc.get("carried") or {}
        total = ZERO
        for user in list(state.users()):
            budget = rules.roll_over(_stored_budget(state, user), state.now)[0]
            if budget.period_start < start:
                continue
            if carried.get(user) == format_utc(budget.period_start):
                continue
            total = add(total, budget.current_cost)
        return total

    def history(
        self,
        user: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[events.Event]:
        raise NotSupportedError(
            "the hosted budget protocol keeps no history; use a local project for history"
        )

    def export(self) -> Snapshot:
        raise NotSupportedError(
            "the hosted budget protocol keeps no history, so a dump of it could not be restored "
            "as it is (no history, no request ids); 'budgetctl import-litellm' takes over its "
            "budgets from LiteLLM's user_cost.json"
        )

    def restore(
        self, snapshot: Snapshot, now: datetime, *, replace: bool = False, dry_run: bool = False
    ) -> bool:
        raise NotSupportedError(
            "the hosted budget protocol keeps no history, so a dump cannot be restored into it; "
            "restore into a local data dir or a database (--database-url)"
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
    return http.check_base_url(api_base)


def _stored_budget(state: DocumentState, user: str) -> Budget:
    budget = state.budget(user)
    assert budget is not None
    return budget


def _note_carried(state: DocumentState) -> None:
    """Keep, for each user whose settings changed, the period that change happened in: a new grid
    keeps the spend so far, so that period's spend may predate it (see spent_since)."""
    carried: dict[str, str] = state.doc.get("carried") or {}
    for event in state.events:
        if isinstance(event, events.Set):
            budget = state.budget(event.user)
            if budget is not None:
                carried[event.user] = format_utc(budget.period_start)
        elif (
            isinstance(event, (events.Create, events.Delete, events.PeriodClosed))
            and event.user is not None
        ):
            carried.pop(event.user, None)
    if carried:
        state.doc["carried"] = carried
    else:
        state.doc.pop("carried", None)
