"""Counting rules: plain text as plain text, chat prompts as OpenAI documents them.

Text is counted with ``encode_ordinary``: exactly the tokens of the text, nothing added, and a
literal ``<|endoftext|>`` in it is ordinary text (tiktoken's ``encode`` would raise). A chat prompt
follows OpenAI's cookbook (``num_tokens_from_messages``): 3 tokens per message, the tokens of every
string value of the message (role, name, content, ...), 1 more per ``name``, and 3 that prime the
reply. Content given as a list of parts counts its text parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from budgetctl.costing.interface import TokenCount
from budgetctl.errors import UsageError

if TYPE_CHECKING:
    import tiktoken

TOKENS_PER_MESSAGE = 3  # <|start|>{role}<|message|> ... <|end|>
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
# Part types whose "text" is prompt text (Chat Completions and Responses API spellings).
TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})


def _value_tokens(encoding: tiktoken.Encoding, value: Any) -> int:
    """Tokens of one message value: a string, or a list of content parts (text parts count)."""
    if isinstance(value, str):
        return len(encoding.encode_ordinary(value))
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        total = 0
        for part in value:
            if isinstance(part, str):
                total += len(encoding.encode_ordinary(part))
            elif isinstance(part, Mapping) and part.get("type") in TEXT_PART_TYPES:
                text = part.get("text")
                if isinstance(text, str):
                    total += len(encoding.encode_ordinary(text))
        return total
    return 0  # None (an assistant message with only tool calls), numbers, objects


def message_tokens(encoding: tiktoken.Encoding, messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of a chat prompt under OpenAI's rules (3 per message, +1 per name, +3)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise UsageError(
            f"messages must be a list of message objects, got {type(messages).__name__}"
        )
    total = REPLY_PRIMING
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise UsageError(
                f'message {index} must be an object like {{"role": "user", "content": '
                f'"..."}}, got {type(message).__name__}'
            )
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += _value_tokens(encoding, value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise UsageError(f"text to count must be a string, got {type(text).__name__}")
    return text


def count_text(model: str, text: str) -> TokenCount:
    """Tokens in plain ``text`` for ``model``; no chat framing is added."""
    from budgetctl.costing.encodings import encoding_for_model

    encoding, estimated = encoding_for_model(model)
    tokens = len(encoding.encode_ordinary(_check_text(text)))
    return TokenCount(tokens=tokens, encoding=encoding.name, estimated=estimated)


def count_messages(model: str, messages: Sequence[Mapping[str, Any]]) -> TokenCount:
    """Tokens of a chat prompt for ``model`` (see :func:`message_tokens`)."""
    from budgetctl.costing.encodings import encoding_for_model

    encoding, estimated = encoding_for_model(model)
    tokens = message_tokens(encoding, messages)
    return TokenCount(tokens=tokens, encoding=encoding.name, estimated=estimated)
