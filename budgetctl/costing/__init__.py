"""Costing: token counts (bundled tiktoken encodings), prices (bundled LiteLLM map), usage parsing.

Importing this package is cheap: tiktoken is imported on the first token count and the price table
is read on the first price, so the public names below load their modules on first access.

- :func:`load_costing` -> :class:`DefaultCosting`, the :class:`Costing` the ledger uses
- :func:`cost_of` (exact Decimal), :func:`read_price_file`, :func:`list_prices`
- :func:`get_encoding`, :func:`encoding_for_model` (tiktoken ``Encoding`` objects, offline)
- :func:`usage_from_response` (OpenAI chat / Responses, Anthropic, LiteLLM, Gemini, Bedrock)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from budgetctl.costing.interface import Costing, Price, TokenCount, Usage

if TYPE_CHECKING:
    from budgetctl.costing.default import DefaultCosting, list_prices, load_costing
    from budgetctl.costing.encodings import encoding_for_model, get_encoding
    from budgetctl.costing.litellm_map import read_price_file
    from budgetctl.costing.prices import cost_of
    from budgetctl.costing.responses import usage_from_response

__all__ = [
    "Costing",
    "DefaultCosting",
    "Price",
    "TokenCount",
    "Usage",
    "cost_of",
    "encoding_for_model",
    "get_encoding",
    "list_prices",
    "load_costing",
    "read_price_file",
    "usage_from_response",
]

_LAZY = {
    "DefaultCosting": "budgetctl.costing.default",
    "load_costing": "budgetctl.costing.default",
    "encoding_for_model": "budgetctl.costing.encodings",
    "get_encoding": "budgetctl.costing.encodings",
    "cost_of": "budgetctl.costing.prices",
    "list_prices": "budgetctl.costing.default",
    "read_price_file": "budgetctl.costing.litellm_map",
    "usage_from_response": "budgetctl.costing.responses",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'budgetctl.costing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
