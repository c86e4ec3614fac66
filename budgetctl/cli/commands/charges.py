"""Charge commands: update-cost, check, history."""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from budgetctl.cli import complete
from budgetctl.cli.options import (
    CommonOptions,
    OptionalUser,
    User,
    arg,
    flag,
    opt,
    read_input,
    shared_options,
)
from budgetctl.cli.output import stdout_is_terminal
from budgetctl.cli.views import charges as views
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    from budgetctl.cli.output import Output
    from budgetctl.ledger import CheckResult, Ledger


# --- options that only this module's commands take (budgetctl.cli.options: the shared ones) --
Model = Annotated[
    str | None,
    opt(
        "--model",
        "-m",
        metavar="MODEL",
        help="Model, e.g. gpt-4o; with --response, used when the response names none.",
        completion=complete.models,
    ),
]
Text = Annotated[str | None, opt("--input-text", metavar="TEXT", help="Prompt text to count.")]
OutText = Annotated[
    str | None, opt("--output-text", metavar="TEXT", help="Completion text to count.")
]
PromptTokens = Annotated[
    int | None, opt("--prompt-tokens", metavar="N", help="Prompt tokens (cached ones included).")
]
CompletionTokens = Annotated[
    int | None, opt("--completion-tokens", metavar="N", help="Completion tokens.")
]
CachedTokens = Annotated[
    int | None, opt("--cached-tokens", metavar="N", help="Prompt tokens read from the cache.")
]
Response = Annotated[
    str | None,
    opt(
        "--response",
        "-r",
        metavar="FILE",
        help="A completion response (OpenAI, Anthropic, LiteLLM, Gemini, Bedrock JSON); '-' reads "
        "stdin.",
    ),
]
Cost = Annotated[str | None, opt("--cost", metavar="USD", help="A cost known in advance.")]
RequestId = Annotated[
    str | None,
    opt(
        "--request-id",
        metavar="ID",
        help="Charge this id once per project (default: the response's own id).",
    ),
]
HoldId = Annotated[
    str | None,
    opt(
        "--hold",
        metavar="ID",
        help="The hold placed for this call (check --reserve): freed in the same step.",
    ),
]
HoldIds = Annotated[list[str], arg("ID", "One or more hold ids (from check --reserve).")]
Reserve = Annotated[
    bool,
    flag(
        "--reserve",
        help="If it fits, hold the projected cost until update-cost --hold or release "
        "(prints the hold id).",
    ),
]
Ttl = Annotated[
    str | None,
    opt(
        "--ttl",
        metavar="DURATION",
        help="How long a hold lasts: seconds, or N followed by s, m or h (default 15m).",
    ),
]
Prompt = Annotated[
    str | None, opt("--prompt", metavar="TEXT", help="The prompt, as one user message.")
]
Messages = Annotated[
    str | None,
    opt(
        "--messages",
        metavar="FILE",
        help="Chat messages as JSON (a list, or a request body); '-' reads stdin.",
    ),
]
MaxTokens = Annotated[
    int | None,
    opt(
        "--max-tokens",
        metavar="N",
        help="Completion tokens to allow for (default: the body's max_tokens, else 0).",
    ),
]
Limit = Annotated[int, typer.Option("--limit", "-n", metavar="N", help="Show at most N events.")]


@shared_options(prices=True, writes=True)
def update_cost(
    opts: CommonOptions,
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
    hold: HoldId = None,
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
    ledger = opts.ledger()
    if response is not None:
        result = ledger.charge_response(
            user,
            read_input(response, "response"),
            model=model,
            request_id=request_id,
            hold=hold,
            dry_run=opts.dry_run,
        )
    elif cost is not None:
        result = ledger.charge_cost(
            user, cost, model=model, request_id=request_id, hold=hold, dry_run=opts.dry_run
        )
    elif model is None:
        raise UsageError(f"{given[0]} needs --model MODEL to price the call")
    elif input_text is not None or output_text is not None:
        result = ledger.charge_text(
            user,
            model,
            input_text or "",
            output_text or "",
            request_id=request_id,
            hold=hold,
            dry_run=opts.dry_run,
        )
    else:
        result = ledger.charge_tokens(
            user,
            model,
            prompt_tokens or 0,
            completion_tokens or 0,
            cached_tokens=cached_tokens or 0,
            request_id=request_id,
            hold=hold,
            dry_run=opts.dry_run,
        )
    out = opts.output()
    out.show(views.charge(result, opts.dry_run))
    for warning in views.charge_warnings(result, ledger.project, ledger.now(), opts.dry_run):
        out.warn(warning)


@shared_options(prices=True, quiet=True)
def check(
    opts: CommonOptions,
    user: User,
    model: Model = None,
    prompt: Prompt = None,
    messages: Messages = None,
    max_tokens: MaxTokens = None,
    cost: Cost = None,
    reserve: Reserve = False,
    ttl: Ttl = None,
) -> None:
    """Would a call fit? Exit 0 if it fits USER's (and the project's) budget, 3 if it does not.

    With --reserve, a call that fits is also held (its projected cost counts until update-cost
    --hold ID or release ID); the hold id is printed alone when stdout is not a terminal.

    Example: budgetctl check alice --model gpt-4o --prompt "Summarise this" --max-tokens 500
    """
    if prompt is not None and messages is not None:
        raise UsageError("give --prompt TEXT or --messages FILE, not both")
    if ttl is not None and not reserve:
        raise UsageError("--ttl is how long a hold lasts: give it with --reserve")
    out = opts.output()
    if cost is not None:
        if prompt is not None or messages is not None or max_tokens is not None:
            raise UsageError(
                "--cost is the call's whole cost: it cannot be combined with --prompt, "
                "--messages or --max-tokens"
            )
        ledger = opts.ledger()
        result = ledger.check_cost(user, cost, model=model, reserve=reserve, ttl=ttl)
        _answer(ledger, result, out, opts.quiet)
        return
    if prompt is None and messages is None:
        raise UsageError(
            "nothing to price: give --prompt TEXT, --messages FILE ('-' for stdin) or --cost USD"
        )
    chat: list[Mapping[str, Any]] | None = None
    if messages is not None:
        from budgetctl.costing.request_body import parse_chat_request

        request = parse_chat_request(read_input(messages, "messages"), option="--messages")
        chat, model = request.messages, model or request.model
        if max_tokens is None:
            max_tokens = request.max_tokens
    if model is None:
        raise UsageError("give --model MODEL (or a request body with a 'model')")
    ledger = opts.ledger()
    result = ledger.check(
        user,
        model,
        prompt=prompt,
        messages=chat,
        max_tokens=max_tokens or 0,
        reserve=reserve,
        ttl=ttl,
    )
    if max_tokens is None:
        out.warn(
            "the completion is not counted (only the prompt is priced): give --max-tokens N, "
            "or max_tokens in the request body"
        )
    _answer(ledger, result, out, opts.quiet)


def _answer(ledger: "Ledger", result: "CheckResult", out: "Output", quiet: bool) -> None:
    """Print a check's answer; exit 3 (the error says which budget blocks) if it does not fit.

    A hold placed (``--reserve``) when stdout is not a terminal: its id alone on stdout, for
    ``hold=$(budgetctl check ... --reserve)``, and the sentence on stderr (not with ``-q``)."""
    now = ledger.now()
    report = views.check(result, now)
    if result.hold is not None and not out.as_json and not stdout_is_terminal():
        if not quiet:
            out.to_stderr(report)
        out.raw(result.hold.hold_id + "\n")
    else:
        out.show(report)
    if not result.allowed:
        raise views.blocked(result, now, ledger.project)


@shared_options(writes=True)
def release(opts: CommonOptions, holds: HoldIds) -> None:
    """Free holds whose calls were not made (exit 4 for an id with no open hold).

    Example: budgetctl release h_5f0c8e1d9a7b3c2e4f6a8b0c
    """
    ledger = opts.ledger()
    done = ledger.release(holds, dry_run=opts.dry_run)
    opts.output().show(views.released(done, opts.dry_run))


@shared_options()
def holds(opts: CommonOptions, user: OptionalUser = None) -> None:
    """The open holds (of USER, or of the whole project), oldest first.

    Example: budgetctl holds alice
    """
    ledger = opts.ledger()
    found = ledger.holds(user)
    opts.output().show(views.holds(found, user, ledger.project, ledger.now()))


@shared_options()
def history(
    opts: CommonOptions,
    user: OptionalUser = None,
    limit: Limit = 50,
) -> None:
    """Charges, resets and closed periods, newest first (of USER, or of the whole project).

    Example: budgetctl history alice --limit 20
    """
    ledger = opts.ledger()
    events = [event.to_json() for event in ledger.history(user, limit)]
    zone = ledger.get(user).timezone if user is not None and not opts.as_json else None
    opts.output().show(views.history(events, user, ledger.project, zone))
