"""A :class:`~budgetctl.ledger.Ledger` whose every operation is one request to a budget server's
``/v1`` API (``budgetctl serve``): the server runs it atomically on its store, with its own clock,
prices and token counts, and answers with the values a local ledger returns.

``Ledger(project)`` is one of these when ``BUDGETCTL_SERVER`` is set (or ``server=URL`` is
given); ``server=""`` keeps a ledger local whatever the environment says (the server itself).

What cannot be asked of a server is refused with :class:`~budgetctl.errors.NotSupportedError`
rather than done locally: nothing in client mode touches a local data dir or database.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from budgetctl.client import decode
from budgetctl.client.api import Client, segment
from budgetctl.core import events, periods, rules
from budgetctl.core.money import parse_amount
from budgetctl.core.operations import ProjectView, ResetDue, Standing
from budgetctl.core.periods import UTC, Duration, format_utc
from budgetctl.core.rules import KEEP, Budget, ClosedPeriod, Hold, Keep
from budgetctl.errors import NotSupportedError, UnknownProjectError, UsageError
from budgetctl.ledger import (
    AlertArg,
    ChargeResult,
    CheckResult,
    Clock,
    Ledger,
    _each_once,
    _rid,
    parse_alerts,
    parse_duration_arg,
    parse_time_arg,
    parse_ttl,
    system_clock,
)

if TYPE_CHECKING:
    from budgetctl.costing.interface import Price, Usage
    from budgetctl.importer import ImportResult
    from budgetctl.store.snapshot import Snapshot

JSON_LINES = "application/x-ndjson"

T = TypeVar("T")

CHARGE_UNSURE = (
    "the charge may or may not be recorded (the outcome is unknown): a retry with the same "
    "request id (--request-id, request_id=) is safe; without one, look at 'budgetctl history' "
    "before retrying"
)
WRITE_UNSURE = "the change may or may not be done: look before retrying"


_FLAGS = frozenset({"dry_run", "replace", "enforce", "reserve"})


class RemoteLedger(Ledger):
    """One project's budgets on a budget server (client mode)."""

    def __init__(
        self,
        project: str = "default",
        data_dir: str | os.PathLike[str] | None = None,
        *,
        prices_file: str | os.PathLike[str] | None = None,
        clock: Clock = system_clock,
        lock_timeout: float | None = None,
        store: Any = None,
        database_url: str | None = None,
        server: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> None:
        from budgetctl.client import configured_server

        url = configured_server(server)
        if url is None:
            raise UsageError("a remote ledger needs a server URL (BUDGETCTL_SERVER)")
        if store is not None or database_url is not None:
            raise UsageError("a ledger on a budget server takes no store and no database URL")
        self.project = rules.check_project_name(project)
        self.client = Client(url, token, timeout)
        self.server = self.client.where
        self.data_dir = None  # type: ignore[assignment]  # no local state in client mode
        self.database_url = None
        if prices_file is None:
            prices_file = os.environ.get("BUDGETCTL_PRICES") or None
        self.prices_file = prices_file
        self.clock = clock  # for what is shown ("resets in 3 days"); the server's clock decides
        self._costing = None
        self.store = _NoLocalStore(self)

    def __repr__(self) -> str:
        return f"RemoteLedger({self.project!r}, server={self.server!r})"

    # --- plumbing --------------------------------------------------------------------------------

    def _path(self, tail: str = "") -> str:
        return f"/v1/projects/{segment(self.project)}{tail}"

    def _call(
        self,
        method: str,
        tail: str = "",
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        unsure: str = "",
    ) -> Any:
        if body is not None:  # a flag left false, and a value left out, are not sent
            body = {k: v for k, v in body.items() if not (k in _FLAGS and v is False)}
        return self.client.call(method, self._path(tail), body, query=query, unsure=unsure)

    def _read(self, decoder: Callable[[Any], T], answer: Any) -> T:
        try:
            return decoder(answer)
        except (decode.BadAnswer, KeyError, TypeError) as exc:
            raise decode.bad(self.server, str(exc)) from None

    def custom_prices(self) -> dict[str, Price]:
        """The project's own prices, as the server keeps them."""
        answer = self._call("GET", "/prices")

        def read(found: Any) -> dict[str, Price]:
            listed = decode.items(decode.obj(found, "prices").get("models"), "models")
            return {p.model: p for p in (decode.price(item) for item in listed)}

        return self._read(read, answer)

    def exists(self) -> bool:
        try:
            self._call("GET")
        except UnknownProjectError:
            return False
        return True

    # --- budgets ---------------------------------------------------------------------------------

    def create(
        self,
        user: str,
        budget: Decimal | str | float | int,
        *,
        duration: Duration | str | None = None,
        start: datetime | str | float | None = None,
        timezone: str = "UTC",
        alert_at: AlertArg = None,
        replace: bool = False,
        dry_run: bool = False,
    ) -> Budget:
        rules.check_user_name(user)
        body: dict[str, Any] = {
            "total_budget": parse_amount(budget, "budget"),
            "duration": _duration_text(parse_duration_arg(duration)),
            "timezone": timezone,
            "start": _start(start, timezone),
            "alert_at": _alerts(alert_at),
            "replace": replace,
            "dry_run": dry_run,
        }
        answer = self._call("PUT", f"/budgets/{segment(user)}", body, unsure=WRITE_UNSURE)
        return self._read(decode.budget, answer)

    def set(
        self,
        user: str,
        *,
        budget: Decimal | str | float | int | None = None,
        duration: Duration | str | Keep | None = KEEP,
        timezone: str | None = None,
        start: datetime | str | float | Keep | None = KEEP,
        alert_at: AlertArg | Keep = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        body: dict[str, Any] = {"dry_run": dry_run}
        if budget is not None:
            body["total_budget"] = parse_amount(budget, "budget")
        if duration is not KEEP:
            body["duration"] = _duration_text(parse_duration_arg(duration))
        if timezone is not None:
            periods.parse_timezone(timezone)
            body["timezone"] = timezone
        if start is not KEEP:
            body["start"] = _start(start, timezone or "UTC")
        if alert_at is not KEEP:
            body["alert_at"] = _alerts(alert_at)
        answer = self._call("PATCH", f"/budgets/{segment(user)}", body, unsure=WRITE_UNSURE)
        return self._read(decode.budget, answer)

    def get(self, user: str) -> Budget:
        return self.standing(user).budget

    def standing(self, user: str) -> Standing:
        """The user's budget and what its open holds reserve. (The cap is not part of this
        answer: ``cap_reserved`` is 0 and ``cap`` is :meth:`cap`'s.)"""
        rules.check_user_name(user)
        answer = self._call("GET", f"/budgets/{segment(user)}")

        def read(found: Any) -> Standing:
            data = decode.obj(found, "a budget")
            return Standing(
                decode.budget(data),
                decode.cap(data["cap"]) if data.get("cap") is not None else None,
                decode.money(data.get("reserved", 0), "reserved"),
                decode.money(data.get("cap_reserved", 0), "cap_reserved"),
            )

        return self._read(read, answer)

    def view(self) -> ProjectView:
        answer = self._call("GET")

        def read(found: Any) -> ProjectView:
            data = decode.obj(found, "a project")
            users = tuple(decode.budget(u) for u in decode.items(data.get("users"), "users"))
            holds = tuple(decode.hold(h) for h in decode.items(data.get("holds"), "holds"))
            return ProjectView(self.project, users, decode.cap(data.get("cap")), holds)

        return self._read(read, answer)

    def users(self) -> list[str]:
        return [budget.user for budget in self.view().users]

    def delete(self, users: Sequence[str], *, dry_run: bool = False) -> list[str]:
        chosen = _each_once(users)
        for user in chosen:  # every one is known before any is deleted
            self._call("DELETE", f"/budgets/{segment(user)}", query={"dry_run": "true"})
        if dry_run:
            return chosen
        for user in chosen:
            self._call("DELETE", f"/budgets/{segment(user)}", unsure=WRITE_UNSURE)
        return chosen

    # --- charges ---------------------------------------------------------------------------------

    def charge_cost(
        self,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        body = {"cost": parse_amount(cost, "cost"), "model": model}
        return self._send_charge(user, body, request_id, hold, enforce, dry_run)

    def charge_tokens(
        self,
        user: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        for value, what in (
            (prompt_tokens, "prompt tokens"),
            (completion_tokens, "completion tokens"),
            (cached_tokens, "cached tokens"),
            (cache_creation_tokens, "cache creation tokens"),
        ):
            rules.check_tokens(value, what)
        if cached_tokens + cache_creation_tokens > prompt_tokens:
            raise UsageError("cached tokens are part of the prompt: they cannot exceed it")
        body: dict[str, Any] = {
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached_tokens,
        }
        if cache_creation_tokens:
            body["cache_creation_tokens"] = cache_creation_tokens
        return self._send_charge(user, body, request_id, hold, enforce, dry_run)

    def charge_text(
        self,
        user: str,
        model: str,
        input_text: str,
        output_text: str,
        *,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        body = {"model": model, "input_text": input_text, "output_text": output_text}
        return self._send_charge(user, body, request_id, hold, enforce, dry_run)

    def charge_response(
        self,
        user: str,
        response: Any,
        *,
        model: str | None = None,
        request_id: str | None = None,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        """A response as text or a JSON object goes to the server as it is (read there as a
        local ledger reads it); any other object (LiteLLM's ``ModelResponse``) is read here, and
        its usage sent."""
        if isinstance(response, (str, Mapping)):
            body = {"response": response, "model": model}
            return self._send_charge(user, body, request_id, hold, enforce, dry_run)
        from budgetctl.costing.responses import usage_from_response

        usage = usage_from_response(response, model)
        if request_id is not None:
            usage = usage._replace(request_id=request_id)
        return self.charge_usage(user, usage, hold=hold, enforce=enforce, dry_run=dry_run)

    def charge_usage(
        self,
        user: str,
        usage: Usage,
        *,
        hold: str | None = None,
        enforce: bool = False,
        dry_run: bool = False,
    ) -> ChargeResult:
        return self.charge_tokens(
            user,
            usage.model,
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            request_id=usage.request_id,
            hold=hold,
            enforce=enforce,
            dry_run=dry_run,
        )

    def _send_charge(
        self,
        user: str,
        form: dict[str, Any],
        request_id: str | None,
        hold: str | None,
        enforce: bool,
        dry_run: bool,
    ) -> ChargeResult:
        rules.check_user_name(user)
        if hold is not None:
            if enforce:
                raise UsageError("a commit is never refused (the money is spent): drop --enforce")
            rules.check_hold_id(hold)
        given = {**form, "request_id": _rid(request_id), "hold_id": hold}
        body = {"user": user, **{k: v for k, v in given.items() if v is not None}}
        body.update(enforce=enforce, dry_run=dry_run)
        answer = self._call("POST", "/charges", body, unsure=CHARGE_UNSURE)

        def read(found: Any) -> ChargeResult:
            data = decode.obj(found, "a charge")
            budget = decode.budget(data.get("budget"))  # as this charge left it, same step
            model = data.get("model")
            rid, held_id = data.get("request_id"), data.get("hold_id")
            return ChargeResult(
                user=user,
                model=None if model is None else decode.text(model, "model"),
                prompt_tokens=decode.count(data.get("prompt_tokens", 0), "prompt_tokens"),
                completion_tokens=decode.count(data.get("completion_tokens", 0), "tokens"),
                cached_tokens=decode.count(data.get("cached_tokens", 0), "cached_tokens"),
                cost=decode.money(data.get("cost"), "cost"),
                budget=budget,
                cap=decode.cap(data.get("cap")),
                duplicate=data.get("duplicate") is True,
                estimated=data.get("estimated") is True,
                request_id=None if rid is None else decode.text(rid, "request_id"),
                hold_id=None if held_id is None else decode.text(held_id, "hold_id"),
                held=decode.opt_money(data.get("held"), "held"),
                alerts=_recorded_alerts(data.get("alerts")),
            )

        return self._read(read, answer)

    # --- checks ----------------------------------------------------------------------------------

    def check(
        self,
        user: str,
        model: str,
        *,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 0,
        reserve: bool = False,
        ttl: timedelta | str | float | None = None,
        dry_run: bool = False,
    ) -> CheckResult:
        rules.check_tokens(max_tokens, "max tokens")
        body: dict[str, Any] = {"user": user, "model": model, "max_tokens": max_tokens}
        if messages is not None:
            body["messages"] = list(messages)
        else:
            body["prompt"] = prompt or ""
        return self._send_check(body, reserve, ttl, dry_run)

    def check_cost(
        self,
        user: str,
        cost: Decimal | str | float | int,
        *,
        model: str | None = None,
        reserve: bool = False,
        ttl: timedelta | str | float | None = None,
        dry_run: bool = False,
    ) -> CheckResult:
        body: dict[str, Any] = {"user": user, "cost": parse_amount(cost, "cost")}
        if model is not None:
            body["model"] = model
        return self._send_check(body, reserve, ttl, dry_run)

    def _send_check(
        self,
        body: dict[str, Any],
        reserve: bool,
        ttl: timedelta | str | float | None,
        dry_run: bool,
    ) -> CheckResult:
        if not reserve and ttl is not None:
            raise UsageError("a time to live is for a hold: give it with reserve")
        rules.check_user_name(body["user"])
        if reserve:
            body["reserve"] = True
            if ttl is not None:
                body["ttl"] = f"{parse_ttl(ttl).total_seconds()!r}s"
        if dry_run:
            body["dry_run"] = True
        answer = self._call("POST", "/checks", body, unsure=WRITE_UNSURE if reserve else "")
        user = body["user"]

        def read(found: Any) -> CheckResult:
            data = decode.obj(found, "a check")
            model = data.get("model")
            if "hold" not in data:
                raise decode.BadAnswer("a check without 'hold'")
            hold = None if data["hold"] is None else decode.hold(data["hold"])
            blocked = data.get("blocked_by")
            return CheckResult(
                user=user,
                model=None if model is None else decode.text(model, "model"),
                prompt_tokens=decode.count(data.get("prompt_tokens", 0), "prompt_tokens"),
                max_tokens=decode.count(data.get("max_tokens", 0), "max_tokens"),
                projected_cost=decode.money(data.get("projected_cost"), "projected_cost"),
                budget=decode.budget(data.get("budget")),
                cap=decode.cap(data.get("cap")),
                allowed=data.get("allowed") is True,
                blocked_by=None if blocked is None else decode.text(blocked, "blocked_by"),
                estimated=data.get("estimated") is True,
                reserved=decode.money(data.get("reserved", 0), "reserved"),
                cap_reserved=decode.money(data.get("cap_reserved"), "cap_reserved"),
                hold=hold,
            )

        result = self._read(read, answer)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("allowed"), bool):
            raise decode.bad(self.server, "a check without 'allowed'")  # never taken as a yes
        return result

    def release(self, hold_ids: Sequence[str], *, dry_run: bool = False) -> list[Hold]:
        if isinstance(hold_ids, str):
            hold_ids = [hold_ids]
        ids = [rules.check_hold_id(hold_id) for hold_id in _each_once(hold_ids, "hold")]
        body = {"hold_ids": ids, "dry_run": dry_run}
        answer = self._call("POST", "/holds/release", body, unsure=WRITE_UNSURE)
        return self._read(
            lambda found: [
                decode.hold(h) for h in decode.items(decode.obj(found, "")["released"], "holds")
            ],
            answer,
        )

    def holds(self, user: str | None = None) -> list[Hold]:
        if user is not None:
            rules.check_user_name(user)
        answer = self._call("GET", "/holds", query={"user": user})
        return self._read(
            lambda found: [
                decode.hold(h) for h in decode.items(decode.obj(found, "")["holds"], "holds")
            ],
            answer,
        )

    # --- resets ----------------------------------------------------------------------------------

    def reset(
        self, users: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> list[tuple[str, ClosedPeriod]]:
        chosen = None if users is None else _each_once(users)
        body = {"users": chosen, "dry_run": dry_run}
        answer = self._call("POST", "/reset", body, unsure=WRITE_UNSURE)
        return self._read(
            lambda found: [
                (decode.text(e["user"], "user"), decode.period(e, "reset"))
                for e in decode.items(decode.obj(found, "")["reset"], "reset")
            ],
            answer,
        )

    def reset_due(self, *, now: datetime | None = None, dry_run: bool = False) -> ResetDue:
        """As a local ledger's; a ``now`` later than the server's clock is refused unless
        ``dry_run`` (written, it would close periods that have not ended)."""
        body: dict[str, Any] = {"dry_run": dry_run}
        if now is not None:
            body["now"] = format_utc(now.astimezone(UTC))
        return self._reset_due(body)

    def _reset_due(self, body: dict[str, Any]) -> ResetDue:
        answer = self._call("POST", "/reset-due", body, unsure=WRITE_UNSURE)

        def read(found: Any) -> ResetDue:
            data = decode.obj(found, "a reset-due")
            caps = decode.items(data.get("cap_reset", []), "cap_reset")
            expired = data.get("expired")
            return ResetDue(
                self.project,
                decode.count(data.get("checked"), "checked"),
                tuple(
                    (decode.text(e["user"], "user"), decode.period(e, "rollover"))
                    for e in decode.items(data.get("reset"), "reset")
                ),
                decode.period(caps[0], "rollover") if caps else None,
                tuple(decode.hold(h) for h in decode.items(expired, "expired")),
            )

        return self._read(read, answer)

    def roll_over(self, users: Sequence[str], *, dry_run: bool = False) -> ResetDue:
        """Archive and reset the given users' budgets if their period ended (one request; the
        server does it as a local ledger does)."""
        return self._reset_due({"users": list(users), "dry_run": dry_run})

    # --- project cap -----------------------------------------------------------------------------

    def cap(self) -> Budget | None:
        answer = self._call("GET")
        return self._read(lambda found: decode.cap(decode.obj(found, "")["cap"]), answer)

    def set_cap(
        self,
        budget: Decimal | str | float | int | None = None,
        *,
        duration: Duration | str | Keep | None = KEEP,
        timezone: str | None = None,
        alert_at: AlertArg | Keep = KEEP,
        dry_run: bool = False,
    ) -> Budget:
        if alert_at is not KEEP:
            raise UsageError("a budget server does not take the cap's alert thresholds yet")
        body: dict[str, Any] = {"dry_run": dry_run}
        if budget is not None:
            body["total_budget"] = parse_amount(budget, "cap")
        if duration is not KEEP:
            body["duration"] = _duration_text(parse_duration_arg(duration))
        if timezone is not None:
            periods.parse_timezone(timezone)
            body["timezone"] = timezone
        answer = self._call("PUT", "/cap", body, unsure=WRITE_UNSURE)

        def read(found: Any) -> Budget:
            made = decode.cap(decode.obj(found, "a cap")["cap"])
            if made is None:
                raise decode.BadAnswer("no cap in the answer")
            return made

        return self._read(read, answer)

    def clear_cap(self, *, dry_run: bool = False) -> bool:
        answer = self._call(
            "DELETE", "/cap", query={"dry_run": "true"} if dry_run else None, unsure=WRITE_UNSURE
        )
        return self._read(lambda found: decode.obj(found, "")["cleared"] is True, answer)

    # --- prices ----------------------------------------------------------------------------------

    def set_price(
        self,
        model: str,
        input_per_token: Decimal | str,
        output_per_token: Decimal | str,
        *,
        cache_read_per_token: Decimal | str | None = None,
        cache_creation_per_token: Decimal | str | None = None,
        dry_run: bool = False,
    ) -> Price:
        def per_million(value: Decimal | str | None, what: str) -> Decimal | None:
            return None if value is None else parse_amount(value, what).scaleb(6)

        return self._set_price(
            model,
            per_million(input_per_token, "input price"),
            per_million(output_per_token, "output price"),
            per_million(cache_read_per_token, "cache read price"),
            per_million(cache_creation_per_token, "cache creation price"),
            dry_run,
        )

    def set_price_per_million(
        self,
        model: str,
        input_per_million: Decimal | str,
        output_per_million: Decimal | str,
        *,
        cache_read: Decimal | str | None = None,
        cache_creation: Decimal | str | None = None,
        dry_run: bool = False,
    ) -> Price:
        def rate(value: Decimal | str | None, what: str) -> Decimal | None:
            return None if value is None else parse_amount(value, what)

        return self._set_price(
            model,
            rate(input_per_million, "input price"),
            rate(output_per_million, "output price"),
            rate(cache_read, "cache read price"),
            rate(cache_creation, "cache creation price"),
            dry_run,
        )

    def _set_price(
        self,
        model: str,
        given: Decimal | None,
        out: Decimal | None,
        cache_read: Decimal | None,
        cache_creation: Decimal | None,
        dry_run: bool,
    ) -> Price:
        from budgetctl.costing.interface import Price

        if not model or len(model) > 256:
            raise UsageError("a model name must be 1-256 characters")
        rules.check_text(model, "model")
        assert given is not None and out is not None
        body = {
            "input_per_million": given,
            "output_per_million": out,
            "cache_read": cache_read,
            "cache_creation": cache_creation,
            "dry_run": dry_run,
        }
        self._call("PUT", f"/prices/{segment(model)}", body, unsure=WRITE_UNSURE)
        self._costing = None

        def per_token(rate: Decimal | None) -> Decimal | None:
            return None if rate is None else rate.scaleb(-6)

        return Price(
            model=model,
            input_per_token=given.scaleb(-6),
            output_per_token=out.scaleb(-6),
            cache_read_per_token=per_token(cache_read),
            cache_creation_per_token=per_token(cache_creation),
            provider="custom",
            source="project",
        )

    def prices(self, filter: str | None = None) -> list[Price]:
        from budgetctl.costing import list_prices

        return list_prices(filter, self.prices_file, self.custom_prices())

    def remove_price(self, model: str, *, dry_run: bool = False) -> None:
        query = {"dry_run": "true"} if dry_run else None
        self._call("DELETE", f"/prices/{segment(model)}", query=query, unsure=WRITE_UNSURE)
        self._costing = None

    # --- history ---------------------------------------------------------------------------------

    def history(self, user: str | None = None, limit: int | None = None) -> list[events.Event]:
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        answer = self._call("GET", "/history", query={"user": user, "limit": limit})
        return self._read(
            lambda found: [
                decode.event(e) for e in decode.items(decode.obj(found, "")["events"], "events")
            ],
            answer,
        )

    # --- backups and imports ---------------------------------------------------------------------

    def export(self) -> Snapshot:
        """The whole project, from the server's dump (one consistent read there), every line
        checked as ``restore`` checks a dump (a cut or garbled answer is refused)."""
        from budgetctl import dump as dumping

        data = self.client.call("GET", self._path("/dump"), raw=True)
        source = io.BytesIO(data if isinstance(data, bytes) else b"")
        source.name = self.server + " (dump)"
        return dumping.read(source).snapshot

    def restore_snapshot(
        self, snapshot: Snapshot, now: datetime, *, replace: bool = False, dry_run: bool = False
    ) -> bool:
        """Send ``snapshot`` to the server as a dump; it writes it in one transaction. True when
        it replaced a project that existed (ProjectExistsError unless ``replace``)."""
        from budgetctl import dump as dumping

        document = b"".join(dumping.encode(snapshot, now))
        answer = self.client.call(
            "POST",
            self._path("/restore"),
            query=_flags(replace=replace, dry_run=dry_run),
            document=(JSON_LINES, document),
            unsure=WRITE_UNSURE,
        )
        return self._read(lambda found: decode.obj(found, "")["replaced"] is True, answer)

    def import_litellm_document(
        self, document: bytes, *, replace: bool = False, dry_run: bool = False
    ) -> ImportResult:
        """Send a LiteLLM ``user_cost.json`` (its bytes, so amounts arrive exactly as written)
        to the server, which imports it atomically as a local ledger would."""
        from budgetctl.importer import ImportResult

        answer = self.client.call(
            "POST",
            self._path("/import-litellm"),
            query=_flags(replace=replace, dry_run=dry_run),
            document=("application/json", document),
            unsure=WRITE_UNSURE,
        )

        def read(found: Any) -> ImportResult:
            data = decode.obj(found, "an import")
            names = [
                [decode.text(user, key) for user in decode.items(data.get(key), key)]
                for key in ("imported", "skipped", "replaced")
            ]
            return ImportResult(*names)

        return self._read(read, answer)


def _flags(**given: bool) -> dict[str, str] | None:
    """The query of the flags that are true (``replace=true&dry_run=true``)."""
    return {name: "true" for name, value in given.items() if value} or None


class _NoLocalStore:
    """Where a local ledger keeps its store: in client mode, the project's custom prices, whether
    it exists, its dump (``export``) and a restore come from or go to the server, and anything
    else is refused (nothing is done on a local data dir behind the server's back)."""

    def __init__(self, ledger: RemoteLedger) -> None:
        self._ledger = ledger
        self.project = ledger.project
        self.where = ledger.server

    def exists(self) -> bool:
        return self._ledger.exists()

    def prices(self) -> dict[str, Price]:
        return self._ledger.custom_prices()

    def export(self) -> Snapshot:
        return self._ledger.export()

    def restore(
        self, snapshot: Snapshot, now: datetime, *, replace: bool = False, dry_run: bool = False
    ) -> bool:
        return self._ledger.restore_snapshot(snapshot, now, replace=replace, dry_run=dry_run)

    def __getattr__(self, name: str) -> NoReturn:
        raise NotSupportedError(
            f"{name!r} is not offered by the budget server's API ({self.where}); run it where "
            "the server's store is (unset BUDGETCTL_SERVER there)"
        )


def _duration_text(duration: Duration | None) -> str | None:
    return None if duration is None else duration.text


def _alerts(value: AlertArg) -> Decimal | list[Decimal] | None:
    """Alert thresholds as the server takes them: one as an amount, several as a list."""
    found = parse_alerts(value)
    if not found:
        return None
    return found[0] if len(found) == 1 else list(found)


def _start(start: datetime | str | float | None, timezone: str) -> str | None:
    """A start as the server reads it: text as given (read in the budget's zone there), else an
    exact UTC time."""
    if start is None or isinstance(start, str):
        return start
    moment = parse_time_arg(start, timezone)
    return None if moment is None else format_utc(moment)


__all__ = ["RemoteLedger"]


def _recorded_alerts(raw: Any) -> tuple[events.Alert | events.Over, ...]:
    """The alert and over events a charge recorded, as the server's answer lists them."""
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        event = events.from_json(item)
        if isinstance(event, (events.Alert, events.Over)):
            found.append(event)
    return tuple(found)
