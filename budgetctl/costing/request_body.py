"""Chat requests before they are sent: the messages, model and completion allowance of an
OpenAI-style request body, to price a call before it is made (``Ledger.check``, ``budgetctl check
--messages``).

A document is either a JSON list of chat messages, or a request body (a JSON object) with
``messages`` and, optionally, ``model`` and a completion limit: ``max_completion_tokens`` (OpenAI's
current name), ``max_tokens`` (Chat Completions and Anthropic) or ``max_output_tokens`` (the
Responses API), taken in that order. Other keys are ignored. A value of the wrong type (a model
that is not a string, a limit that is not a whole number) is taken as absent, as a caller would
pass it to the API as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from budgetctl.core import jsontext
from budgetctl.core.record import Record
from budgetctl.errors import UsageError

MAX_TOKENS_KEYS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


class ChatRequest(Record):
    """What a request body says about the call: its ``messages``, and its ``model`` and
    ``max_tokens`` (None where the document gives none, or gives a value of the wrong type)."""

    messages: list[Mapping[str, Any]]
    model: str | None
    max_tokens: int | None


def parse_chat_request(
    document: str | bytes | bytearray | Sequence[Any] | Mapping[str, Any],
    *,
    option: str | None = None,
) -> ChatRequest:
    """The chat request in ``document``: JSON text, or a list or dict already decoded.

    A document that is not JSON, or neither a list of message objects nor an object whose
    ``messages`` is one, is a :class:`~budgetctl.errors.UsageError`; ``option`` (e.g.
    ``"--messages"``) names where the document came from in that message. The messages themselves
    are checked when they are counted (``Costing.count_messages``).
    """
    if isinstance(document, (str, bytes, bytearray)):
        try:
            document = jsontext.loads(document)
        except ValueError as exc:
            raise UsageError(f"the messages are not valid JSON ({exc})") from None
    body: Mapping[str, Any] = {}
    messages: Any = document
    if isinstance(document, Mapping):
        body, messages = document, document.get("messages")
    if not isinstance(messages, (list, tuple)) or not all(
        isinstance(message, Mapping) for message in messages
    ):
        expects = f"{option} expects" if option else "expected"
        raise UsageError(
            f"{expects} a JSON list of chat messages, or a request body with 'messages'"
        )
    model = body.get("model")
    return ChatRequest(list(messages), model if isinstance(model, str) else None, _max_tokens(body))


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in MAX_TOKENS_KEYS:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
