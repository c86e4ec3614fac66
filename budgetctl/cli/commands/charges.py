"""Charge commands: update-cost, check, history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from budgetctl.cli.options import (
    AsJson,
    CachedTokens,
    CompletionTokens,
    Cost,
    DataDir,
    DryRun,
    MaxTokens,
    Messages,
    Model,
    OptionalUser,
    OutText,
    Prices,
    Project,
    Prompt,
    PromptTokens,
    Quiet,
    RequestId,
    Response,
    Text,
    User,
    open_ledger,
    read_input,
)
from budgetctl.cli.output import Output
from budgetctl.cli.views import charges as views
from budgetctl.core import jsontext
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    from budgetctl.ledger import CheckResult, Ledger


def update_cost(
    user: User,
    model: Model = None,
    input_text: Text = None,
    output_text: OutText = None,
    prompt_tokens: PromptTokens = None,
    completion_tokens: CompletionTokens = None,
    cached_tokens: CachedTokens = None,
    response: Response = None,
    cost: Cost = None,
    request_id: RequestId = None,
    prices: Prices = None,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Record the cost of a call: from text, token counts, a response (file or stdin) or a cost.

    Example: budgetctl update-cost alice --model gpt-4o --prompt-tokens 1200 --completion-tokens 300
    """
    forms = {
        "--input-text/--output-text": input_text is not None or output_text is not None,
        "--prompt-tokens/--completion-tokens": prompt_tokens is not None
        or completion_tokens is not None
        or cached_tokens is not None,
        "--response": response is not None,
        "--cost": cost is not None,
    }
    given = [name for name, used in forms.items() if used]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of --input-text/--output-text, --prompt-tokens/--completion-tokens, "
            "--response FILE or --cost USD" + (f" (got {' and '.join(given)})" if given else "")
        )
    ledger = open_ledger(project, data_dir, prices)
    if response is not None:
        result = ledger.charge_response(
            user,
            read_input(response, "response"),
            model=model,
            request_id=request_id,
            dry_run=dry_run,
        )
    elif cost is not None:
        result = ledger.charge_cost(user, cost, model=model, request_id=request_id, dry_run=dry_run)
    elif model is None:
        raise UsageError(f"{given[0]} needs --model MODEL to price the call")
    elif input_text is not None or output_text is not None:
        result = ledger.charge_text(
            user,
            model,
            input_text or "",
            output_text or "",
            request_id=request_id,
            dry_run=dry_run,
        )
    else:
        result = ledger.charge_tokens(
            user,
            model,
            prompt_tokens or 0,
            completion_tokens or 0,
            cached_tokens=cached_tokens or 0,
            request_id=request_id,
            dry_run=dry_run,
        )
    out = Output(as_json=as_json, quiet=quiet)
    out.show(views.charge(result, dry_run))
    for warning in views.charge_warnings(result, ledger.project, ledger.now(), dry_run):
        out.warn(warning)


def _messages(text: str) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """Chat messages from a JSON list, or from a request body with ``messages`` (and its body)."""
    try:
        document = jsontext.loads(text)
    except ValueError as exc:
        raise UsageError(f"the messages are not valid JSON ({exc})") from None
    body: Mapping[str, Any] = {}
    if isinstance(document, dict):
        body, document = document, document.get("messages")
    if not isinstance(document, list) or not all(isinstance(m, dict) for m in document):
        raise UsageError(
            "--messages expects a JSON list of chat messages, or a request body with 'messages'"
        )
    return document, body


def check(
    user: User,
    model: Model = None,
    prompt: Prompt = None,
    messages: Messages = None,
    max_tokens: MaxTokens = None,
    cost: Cost = None,
    prices: Prices = None,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Would a call fit? Exit 0 if it fits USER's (and the project's) budget, 3 if it does not.

    Example: budgetctl check alice --model gpt-4o --prompt "Summarise this" --max-tokens 500
    """
    if prompt is not None and messages is not None:
        raise UsageError("give --prompt TEXT or --messages FILE, not both")
    out = Output(as_json=as_json, quiet=quiet)
    if cost is not None:
        if prompt is not None or messages is not None or max_tokens is not None:
            raise UsageError(
                "--cost is the call's whole cost: it cannot be combined with --prompt, "
                "--messages or --max-tokens"
            )
        ledger = open_ledger(project, data_dir, prices)
        _answer(ledger, ledger.check_cost(user, cost, model=model), out)
        return
    if prompt is None and messages is None:
        raise UsageError(
            "nothing to price: give --prompt TEXT, --messages FILE ('-' for stdin) or --cost USD"
        )
    chat: list[Mapping[str, Any]] | None = None
    if messages is not None:
        chat, body = _messages(read_input(messages, "messages"))
        model = model or (body.get("model") if isinstance(body.get("model"), str) else None)
        if max_tokens is None:
            for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
                if isinstance(body.get(key), int) and not isinstance(body.get(key), bool):
                    max_tokens = body[key]
                    break
    if model is None:
        raise UsageError("give --model MODEL (or a request body with a 'model')")
    ledger = open_ledger(project, data_dir, prices)
    result = ledger.check(user, model, prompt=prompt, messages=chat, max_tokens=max_tokens or 0)
    if max_tokens is None:
        out.warn(
            "the completion is not counted (only the prompt is priced): give --max-tokens N, "
            "or max_tokens in the request body"
        )
    _answer(ledger, result, out)


def _answer(ledger: Ledger, result: CheckResult, out: Output) -> None:
    """Print a check's answer; exit 3 (the error says which budget blocks) if it does not fit."""
    now = ledger.now()
    out.show(views.check(result, now))
    if not result.allowed:
        raise views.blocked(result, now, ledger.project)


def history(
    user: OptionalUser = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="Show at most N events.")
    ] = 50,
    project: Project = "default",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Charges, resets and closed periods, newest first (of USER, or of the whole project).

    Example: budgetctl history alice --limit 20
    """
    ledger = open_ledger(project, data_dir)
    events = [event.to_json() for event in ledger.history(user, limit)]
    zone = ledger.get(user).timezone if user is not None and not as_json else None
    Output(as_json=as_json).show(views.history(events, user, ledger.project, zone))
