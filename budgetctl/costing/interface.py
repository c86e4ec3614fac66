"""What the ledger needs from costing: token counts, prices, and usage read from responses.

The ledger and the ``BudgetManager`` facade only talk to a :class:`Costing`; the real
implementation (bundled tiktoken encodings, the bundled LiteLLM price table, response parsers)
lives beside this module, so a one-shot command that needs no tokenizer never imports one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from budgetctl.core.record import Record


class Price(Record):
    """USD per token for one model. ``None`` rates fall back to the input rate."""

    model: str
    input_per_token: Decimal
    output_per_token: Decimal
    cache_read_per_token: Decimal | None = None
    cache_creation_per_token: Decimal | None = None
    provider: str | None = None
    mode: str | None = None
    source: str = "bundled"  # "bundled", "prices-file" or "project"
    max_input_tokens: int | None = None  # context window, where the price map gives it
    max_output_tokens: int | None = None
    alias_of: str | None = None  # a LiteLLM alias (``claude-opus-latest``): the model it prices as


class TokenCount(Record):
    """A token count and how it was made."""

    tokens: int
    encoding: str
    estimated: bool  # True when the model is not one tiktoken knows (non-OpenAI, unknown)


class Usage(Record):
    """Token usage of one call, normalised across providers.

    ``prompt_tokens`` is every prompt token, *including* ``cached_tokens`` (read from a prompt
    cache) and ``cache_creation_tokens`` (written to it). That is OpenAI's convention; the Anthropic
    parser adds its separate counters together to match it.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    request_id: str | None = None
    estimated: bool = False


class Costing(Protocol):
    """Prices and token counts. Implementations must work with no network."""

    def price(self, model: str) -> Price:
        """The price of ``model``: exact name, then without a provider prefix.

        Raises ``UnknownModelError`` (with the closest names) when there is none.
        """
        ...

    def cost(self, usage: Usage) -> Decimal:
        """The exact USD cost of ``usage`` at ``price(usage.model)``."""
        ...

    def count_text(self, model: str, text: str) -> TokenCount:
        """Tokens in plain ``text`` for ``model`` (no chat framing added)."""
        ...

    def count_messages(self, model: str, messages: Sequence[Mapping[str, Any]]) -> TokenCount:
        """Tokens of a chat prompt as OpenAI documents it (3 per message, +1 per name, +3)."""
        ...

    def usage_from_response(self, response: Any, model: str | None = None) -> Usage:
        """Model, token usage and id read from a completion response (object or dict).

        ``model`` is used when the response names none (Bedrock Converse). Raises
        ``ResponseParseError`` naming the missing field, or saying the body is an API error.
        """
        ...
