"""budgetctl's atomic API under ``/v1/``: one route per ledger operation (docs/server.md).

Each route is a row of :data:`ROUTES`: its method and path, the fields it takes, and a handler
that calls one :class:`~budgetctl.ledger.Ledger` method and returns what the matching CLI command
prints with ``--json`` (the same view builders, so the keys are the same). Handlers block; the
app runs them in its threadpool. This module imports no web framework either.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from budgetctl.cli.views import backup as backup_views
from budgetctl.cli.views import budgets as budget_views
from budgetctl.cli.views import catalog as catalog_views
from budgetctl.cli.views import charges as charge_views
from budgetctl.cli.views import resets as reset_views
from budgetctl.core import rules
from budgetctl.core.record import Record
from budgetctl.errors import UsageError
from budgetctl.ledger import KEEP, Ledger
from budgetctl.server.fields import Field
from budgetctl.server.stores import Backend


class Call(Record):
    """One request, parsed: the path's parameters, the query's and the body's fields (or, for a
    route that takes a document, its bytes in ``data``)."""

    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Mapping[str, Any]
    data: bytes = b""

    @property
    def project(self) -> str:
        return self.path["project"]


Handler = Callable[[Backend, Call], "tuple[int, object]"]

JSON = "application/json"
JSON_LINES = "application/x-ndjson"


class Route(Record):
    method: str
    path: str
    handler: Handler
    summary: str
    body: tuple[Field, ...] | None = None  # None: the route takes no body
    query: tuple[Field, ...] = ()
    status: int = 200
    document: str | None = None  # the media type of a whole document taken as the body
    answers: str = JSON  # the media type of the answer (a handler gives bytes when not JSON)


DRY_RUN = Field("dry_run", "boolean", "Only say what would be done; change nothing.")
DRY_RUN_QUERY = Field("dry_run", "boolean", "true: only say what would be done.")


def _data(report: Any) -> object:
    return report.data


def _created(ledger: Ledger, report: Any, new: bool, dry_run: bool) -> object:
    return catalog_views.new_project(report, ledger, new, dry_run).data


def _is_new(ledger: Ledger) -> bool:
    return not ledger.exists() and not ledger.store.prices()


# --- projects and budgets ----------------------------------------------------------------------


def list_projects(backend: Backend, call: Call) -> tuple[int, object]:
    return 200, {"projects": list(backend.projects().projects)}


def show(backend: Backend, call: Call) -> tuple[int, object]:
    ledger = backend.ledger(call.project)
    view = ledger.view()
    data = _data(budget_views.show_all(view, ledger.now()))
    assert isinstance(data, dict)
    # beyond `show --json`: the holds themselves, so a client rebuilds the same ProjectView
    data["holds"] = [charge_views.hold_data(hold) for hold in view.holds]
    return 200, data


def create(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, body, user = backend.ledger(call.project), call.body, call.path["user"]
    new = _is_new(ledger)
    dry_run = body.get("dry_run", False)
    created = ledger.create(
        user,
        body["total_budget"],
        duration=body["duration"] if body["duration"] is not None else "none",
        start=body.get("start"),
        timezone=body.get("timezone") or "UTC",
        alert_at=body.get("alert_at"),
        replace=body.get("replace", False),
        dry_run=dry_run,
    )
    report = budget_views.saved(created, "create", ledger.now(), dry_run)
    return 201, _created(ledger, report, new, dry_run)


def change(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, body, user = backend.ledger(call.project), call.body, call.path["user"]
    settings = {"total_budget", "duration", "timezone", "start", "alert_at"}
    if not settings & set(body):
        raise UsageError(
            "nothing to change: give total_budget, duration, timezone, start or alert_at"
        )
    dry_run = body.get("dry_run", False)
    changed = ledger.set(
        user,
        budget=body.get("total_budget"),
        duration=body.get("duration", KEEP),
        timezone=body.get("timezone"),
        start=body.get("start", KEEP),
        alert_at=body.get("alert_at", KEEP),
        dry_run=dry_run,
    )
    return 200, _data(budget_views.saved(changed, "update", ledger.now(), dry_run))


def standing(backend: Backend, call: Call) -> tuple[int, object]:
    ledger = backend.ledger(call.project)
    found = ledger.standing(call.path["user"])
    return 200, _data(
        budget_views.show_user(found.budget, ledger.now(), ledger.project, found.reserved)
    )


def delete(backend: Backend, call: Call) -> tuple[int, object]:
    ledger = backend.ledger(call.project)
    dry_run = call.query.get("dry_run", False)
    done = ledger.delete([call.path["user"]], dry_run=dry_run)
    return 200, _data(budget_views.deleted(done, dry_run))


# --- charges, checks, holds --------------------------------------------------------------------

CHARGE_FORMS = {
    "input_text/output_text": ("input_text", "output_text"),
    "prompt_tokens/completion_tokens": (
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_creation_tokens",
    ),
    "response": ("response",),
    "cost": ("cost",),
}


def charge(backend: Backend, call: Call) -> tuple[int, object]:
    body = call.body
    given = [name for name, keys in CHARGE_FORMS.items() if any(k in body for k in keys)]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of input_text/output_text, prompt_tokens/completion_tokens, "
            "response or cost" + (f" (got {' and '.join(given)})" if given else "")
        )
    ledger = backend.ledger(call.project)
    user, model = body["user"], body.get("model")
    dry_run, enforce = body.get("dry_run", False), body.get("enforce", False)
    common = {
        "request_id": body.get("request_id"),
        "hold": body.get("hold_id"),
        "enforce": enforce,
        "dry_run": dry_run,
    }
    if given == ["response"]:
        result = ledger.charge_response(user, body["response"], model=model, **common)
    elif given == ["cost"]:
        result = ledger.charge_cost(user, body["cost"], model=model, **common)
    elif model is None:
        raise UsageError(f"{given[0]} needs model to price the call")
    elif given == ["input_text/output_text"]:
        result = ledger.charge_text(
            user, model, body.get("input_text") or "", body.get("output_text") or "", **common
        )
    else:
        result = ledger.charge_tokens(
            user,
            model,
            body.get("prompt_tokens") or 0,
            body.get("completion_tokens") or 0,
            cached_tokens=body.get("cached_tokens") or 0,
            cache_creation_tokens=body.get("cache_creation_tokens") or 0,
            **common,
        )
    data = _data(charge_views.charge(result, dry_run))
    assert isinstance(data, dict)
    # beyond `update-cost --json`: the user's whole budget as this charge left it (the same
    # atomic step), so a client's warnings (alert crossed, resets when) need no second read
    data["budget"] = budget_views.budget_data(result.budget)
    return 200, data


def check(backend: Backend, call: Call) -> tuple[int, object]:
    body = call.body
    user, model = body["user"], body.get("model")
    reserve, ttl = body.get("reserve", False), body.get("ttl")
    dry_run = body.get("dry_run", False)
    prompt, messages, max_tokens = body.get("prompt"), body.get("messages"), body.get("max_tokens")
    if prompt is not None and messages is not None:
        raise UsageError("give prompt or messages, not both")
    if ttl is not None and not reserve:
        raise UsageError("ttl is how long a hold lasts: give it with reserve")
    ledger = backend.ledger(call.project)
    if "cost" in body:
        if prompt is not None or messages is not None or max_tokens is not None:
            raise UsageError(
                "cost is the call's whole cost: it cannot be combined with prompt, messages "
                "or max_tokens"
            )
        result = ledger.check_cost(
            user, body["cost"], model=model, reserve=reserve, ttl=ttl, dry_run=dry_run
        )
    else:
        if prompt is None and messages is None:
            raise UsageError("nothing to price: give prompt, messages or cost")
        chat = None
        if messages is not None:
            from budgetctl.costing.request_body import parse_chat_request

            request = parse_chat_request(messages, option="messages")
            chat, model = request.messages, model or request.model
            if max_tokens is None:
                max_tokens = request.max_tokens
        if model is None:
            raise UsageError("give model (or messages as a request body with a 'model')")
        result = ledger.check(
            user,
            model,
            prompt=prompt,
            messages=chat,
            max_tokens=max_tokens or 0,
            reserve=reserve,
            ttl=ttl,
            dry_run=dry_run,
        )
    data = _data(charge_views.check(result, ledger.now()))
    assert isinstance(data, dict)
    # beyond `check --json`: the user's whole budget, what open holds reserve of the cap, and
    # the hold placed, so a client rebuilds the same CheckResult
    data["budget"] = budget_views.budget_data(result.budget)
    data["cap_reserved"] = result.cap_reserved
    data["hold"] = None if result.hold is None else charge_views.hold_data(result.hold)
    return 200, data


def holds(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, user = backend.ledger(call.project), call.query.get("user")
    found = ledger.holds(user)
    return 200, _data(charge_views.holds(found, user, ledger.project, ledger.now()))


def release(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, dry_run = backend.ledger(call.project), call.body.get("dry_run", False)
    done = ledger.release(call.body["hold_ids"], dry_run=dry_run)
    return 200, _data(charge_views.released(done, dry_run))


# --- resets ------------------------------------------------------------------------------------


def reset(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, dry_run = backend.ledger(call.project), call.body.get("dry_run", False)
    done = ledger.reset(call.body["users"], dry_run=dry_run)
    return 200, _data(reset_views.reset(done, dry_run))


def reset_due(backend: Backend, call: Call) -> tuple[int, object]:
    from budgetctl.core.periods import parse_datetime
    from budgetctl.maintenance import refuse_future

    body = call.body
    ledger, dry_run, users = backend.ledger(call.project), body.get("dry_run", False), None
    moment: datetime | None = None
    if body.get("now") is not None:
        moment = parse_datetime(body["now"])
        if not dry_run:  # a backfill (an earlier time) is written; a later one only previewed
            refuse_future(moment, ledger.now(), "now", "dry_run: true")
    if body.get("users") is not None:
        if moment is not None:
            raise UsageError("now is for the whole project: give it without users")
        users = body["users"]
        result = ledger.roll_over(users, dry_run=dry_run)
    else:
        result = ledger.reset_due(now=moment, dry_run=dry_run)
    data = _data(reset_views.reset_due([result], [], dry_run, all_projects=False))
    assert isinstance(data, dict)
    # beyond `reset-due --json`: the holds this run archived (expired), as a ledger returns them
    data["expired"] = [charge_views.hold_data(hold) for hold in result.expired]
    return 200, data


# --- backups and imports -----------------------------------------------------------------------


def _document(call: Call) -> io.BytesIO:
    """The request's body as a stream named as messages name it."""
    stream = io.BytesIO(call.data)
    stream.name = "the request body"  # how errors name the source
    return stream


def dump(backend: Backend, call: Call) -> tuple[int, object]:
    from budgetctl import dump as dumping

    out = io.BytesIO()
    dumping.dump(backend.ledger(call.project), out)
    return 200, out.getvalue()


def restore(backend: Backend, call: Call) -> tuple[int, object]:
    from budgetctl import dump as dumping

    ledger, query = backend.ledger(call.project), call.query
    dry_run = query.get("dry_run", False)
    result = dumping.restore(
        ledger, _document(call), replace=query.get("replace", False), dry_run=dry_run
    )
    report = backup_views.restored("-", result, dry_run)
    return 200, _created(ledger, report, not result.replaced, dry_run)


def import_litellm(backend: Backend, call: Call) -> tuple[int, object]:
    from budgetctl.importer import import_litellm as run_import

    ledger, query = backend.ledger(call.project), call.query
    dry_run, new = query.get("dry_run", False), _is_new(ledger)
    result = run_import(
        ledger, _document(call), replace=query.get("replace", False), dry_run=dry_run
    )
    report = catalog_views.imported("-", result, dry_run)
    return 200, _created(ledger, report, new and bool(result.imported), dry_run)


# --- the project cap ---------------------------------------------------------------------------


def get_cap(backend: Backend, call: Call) -> tuple[int, object]:
    ledger = backend.ledger(call.project)
    return 200, _data(budget_views.cap(ledger.project, ledger.cap(), ledger.now()))


def set_cap(backend: Backend, call: Call) -> tuple[int, object]:
    body = call.body
    if not {"total_budget", "duration", "timezone"} & set(body):
        raise UsageError("nothing to change: give total_budget, duration or timezone")
    ledger, dry_run = backend.ledger(call.project), body.get("dry_run", False)
    new = _is_new(ledger)
    result = ledger.set_cap(
        body.get("total_budget"),
        duration=body.get("duration", KEEP),
        timezone=body.get("timezone"),
        dry_run=dry_run,
    )
    report = budget_views.cap(ledger.project, result, ledger.now(), changed=True, dry_run=dry_run)
    return 200, _created(ledger, report, new, dry_run)


def clear_cap(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, dry_run = backend.ledger(call.project), call.query.get("dry_run", False)
    cleared = ledger.clear_cap(dry_run=dry_run)
    return 200, _data(budget_views.cap_cleared(ledger.project, cleared, dry_run))


# --- prices ------------------------------------------------------------------------------------


def prices(backend: Backend, call: Call) -> tuple[int, object]:
    ledger = backend.ledger(call.project)
    custom = sorted(ledger.store.prices().values(), key=lambda price: price.model)
    return 200, {"models": [catalog_views.price_data(price) for price in custom]}


def set_price(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, body, model = backend.ledger(call.project), call.body, call.path["model"]
    new, dry_run = _is_new(ledger), body.get("dry_run", False)
    price = ledger.set_price_per_million(
        model,
        body["input_per_million"],
        body["output_per_million"],
        cache_read=body.get("cache_read"),
        cache_creation=body.get("cache_creation"),
        dry_run=dry_run,
    )
    report = catalog_views.price_set(price, ledger.project, dry_run)
    return 200, _created(ledger, report, new, dry_run)


def remove_price(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, model = backend.ledger(call.project), call.path["model"]
    dry_run = call.query.get("dry_run", False)
    ledger.remove_price(model, dry_run=dry_run)
    return 200, _data(catalog_views.price_removed(model, ledger.project, dry_run))


def history(backend: Backend, call: Call) -> tuple[int, object]:
    ledger, user = backend.ledger(call.project), call.query.get("user")
    limit = call.query.get("limit", 50)
    if user is not None:
        rules.check_user_name(user)
    found = [event.to_json() for event in ledger.history(user, limit)]
    return 200, _data(charge_views.history(found, user, ledger.project))


# --- the table ---------------------------------------------------------------------------------

P = "/v1/projects/{project}"
AMOUNT_HELP = "USD, a JSON number or a decimal string (read exactly)."

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/projects", list_projects, "The projects the server holds."),
    Route("GET", P, show, "Every budget of the project and its cap (as `show --json`)."),
    Route(
        "PUT",
        P + "/budgets/{user}",
        create,
        "Create USER's budget (as `create --json`).",
        body=(
            Field("total_budget", "amount", "The budget. " + AMOUNT_HELP, required=True),
            Field(
                "duration",
                "string",
                "daily, weekly, monthly, yearly, <N>h, <N>d, <N>w, <N>mo, <N>y; null or 'none': "
                "a lifetime budget.",
                required=True,
                nullable=True,
            ),
            Field("timezone", "string", "IANA time zone of the periods (default UTC)."),
            Field("start", "time", "Anchor of the periods (ISO 8601).", nullable=True),
            Field("alert_at", "alerts", "Alert thresholds, percent of the budget.", nullable=True),
            Field("replace", "boolean", "Replace an existing budget (its spend starts afresh)."),
            DRY_RUN,
        ),
        status=201,
    ),
    Route(
        "PATCH",
        P + "/budgets/{user}",
        change,
        "Change USER's budget settings; the spend is kept (as `set --json`). Absent: kept; "
        "null: none.",
        body=(
            Field("total_budget", "amount", "The budget. " + AMOUNT_HELP),
            Field("duration", "string", "A new duration; null: lifetime.", nullable=True),
            Field("timezone", "string", "IANA time zone of the periods."),
            Field("start", "time", "Anchor of the periods; null: none.", nullable=True),
            Field("alert_at", "alerts", "Alert thresholds in percent; null: none.", nullable=True),
            DRY_RUN,
        ),
    ),
    Route("GET", P + "/budgets/{user}", standing, "USER's budget (as `show USER --json`)."),
    Route(
        "DELETE",
        P + "/budgets/{user}",
        delete,
        "Delete USER's budget (as `delete --json`).",
        query=(DRY_RUN_QUERY,),
    ),
    Route(
        "POST",
        P + "/charges",
        charge,
        "Record a call's cost: exactly one of cost, token counts, texts or a response "
        "(as `update-cost --json`).",
        body=(
            Field("user", "string", "Whose budget.", required=True),
            Field("cost", "amount", "The call's cost. " + AMOUNT_HELP),
            Field("model", "string", "The model (prices tokens and texts; a label with cost)."),
            Field("prompt_tokens", "integer", "Prompt tokens."),
            Field("completion_tokens", "integer", "Completion tokens."),
            Field("cached_tokens", "integer", "Cached prompt tokens (part of prompt_tokens)."),
            Field(
                "cache_creation_tokens",
                "integer",
                "Prompt tokens written to the cache (part of prompt_tokens; Anthropic).",
            ),
            Field("input_text", "string", "The prompt text (counted with the model's tokenizer)."),
            Field("output_text", "string", "The completion text."),
            Field("response", "json", "A completion response (object or JSON text)."),
            Field("request_id", "string", "Idempotency key: a retry is a duplicate."),
            Field("hold_id", "string", "Commit this hold (placed by a check with reserve)."),
            Field("enforce", "boolean", "Refuse (402) a charge that would go over budget."),
            DRY_RUN,
        ),
    ),
    Route(
        "POST",
        P + "/checks",
        check,
        "Would a call fit? 200 with allowed true or false; with reserve, hold it "
        "(as `check --json`).",
        body=(
            Field("user", "string", "Whose budget.", required=True),
            Field("cost", "amount", "The call's whole cost. " + AMOUNT_HELP),
            Field("model", "string", "The model that prices the prompt."),
            Field("prompt", "string", "The prompt, as one user message."),
            Field("messages", "json", "Chat messages, or a request body with messages."),
            Field("max_tokens", "integer", "The completion allowance."),
            Field("reserve", "boolean", "Hold the projected cost when it fits."),
            Field("ttl", "ttl", "How long the hold lasts (default 15m)."),
            Field("dry_run", "boolean", "With reserve: say whether it would hold; hold nothing."),
        ),
    ),
    Route(
        "GET",
        P + "/holds",
        holds,
        "The open holds, oldest first (as `holds --json`).",
        query=(Field("user", "string", "Only this user's."),),
    ),
    Route(
        "POST",
        P + "/holds/release",
        release,
        "Free holds whose calls were not made (as `release --json`).",
        body=(Field("hold_ids", "strings", "The holds to free.", required=True), DRY_RUN),
    ),
    Route(
        "POST",
        P + "/reset",
        reset,
        "Zero the spend of users now (as `reset --json`).",
        body=(
            Field("users", "strings", "The users; null: all.", required=True, nullable=True),
            DRY_RUN,
        ),
    ),
    Route(
        "POST",
        P + "/reset-due",
        reset_due,
        "Archive and reset every budget whose period ended (as `reset-due --json`).",
        body=(
            DRY_RUN,
            Field(
                "now",
                "string",
                "Act as at this earlier time (a backfill); a later time only with dry_run.",
                nullable=True,
            ),
            Field(
                "users",
                "strings",
                "Only these users' budgets (the cap and expired holds as always); null: all.",
                nullable=True,
            ),
        ),
    ),
    Route(
        "GET",
        P + "/dump",
        dump,
        "The whole project as a dump, JSON Lines (as `budgetctl dump`; docs/dump-format.md).",
        answers=JSON_LINES,
    ),
    Route(
        "POST",
        P + "/restore",
        restore,
        "Load a dump (the body, JSON Lines) into the project in one transaction; refused if it "
        "exists unless replace (as `restore --json`).",
        query=(
            Field("replace", "boolean", "true: replace the project if it exists."),
            DRY_RUN_QUERY,
        ),
        document=JSON_LINES,
    ),
    Route(
        "POST",
        P + "/import-litellm",
        import_litellm,
        "Take over a LiteLLM user_cost.json (the body) atomically (as `import-litellm --json`).",
        query=(
            Field("replace", "boolean", "true: overwrite users that already have a budget."),
            DRY_RUN_QUERY,
        ),
        document=JSON,
    ),
    Route("GET", P + "/cap", get_cap, "The project cap (as `cap --json`)."),
    Route(
        "PUT",
        P + "/cap",
        set_cap,
        "Set the project cap (as `cap --budget ... --json`).",
        body=(
            Field("total_budget", "amount", "The cap. " + AMOUNT_HELP),
            Field("duration", "string", "Its duration; null: lifetime.", nullable=True),
            Field("timezone", "string", "IANA time zone of its periods."),
            DRY_RUN,
        ),
    ),
    Route(
        "DELETE",
        P + "/cap",
        clear_cap,
        "Clear the project cap (as `cap --clear --json`).",
        query=(DRY_RUN_QUERY,),
    ),
    Route("GET", P + "/prices", prices, "The project's custom prices (as `models --json`)."),
    Route(
        "PUT",
        P + "/prices/{model}",
        set_price,
        "Set MODEL's price in the project (as `price set --json`).",
        body=(
            Field("input_per_million", "amount", "USD per 1M input tokens.", required=True),
            Field("output_per_million", "amount", "USD per 1M output tokens.", required=True),
            Field("cache_read", "amount", "USD per 1M cached input tokens.", nullable=True),
            Field("cache_creation", "amount", "USD per 1M cache-write tokens.", nullable=True),
            DRY_RUN,
        ),
    ),
    Route(
        "DELETE",
        P + "/prices/{model}",
        remove_price,
        "Remove MODEL's custom price (as `price remove --json`).",
        query=(DRY_RUN_QUERY,),
    ),
    Route(
        "GET",
        P + "/history",
        history,
        "Charges, resets and closed periods, newest first (as `history --json`).",
        query=(
            Field("user", "string", "Only this user's."),
            Field("limit", "integer", "At most this many events (default 50)."),
        ),
    ),
)
