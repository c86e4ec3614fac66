"""The :class:`Costing` budgetctl uses: bundled tokenizers and prices, loaded on first use.

Constructing one reads nothing. The price layers (per-project prices, a ``--prices`` file, the
bundled table) are assembled on the first price asked for, tiktoken is imported on the first count,
and both are cached per process, so a command that needs neither pays for neither.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from budgetctl.costing.interface import Price, TokenCount, Usage
from budgetctl.costing.prices import PriceBook, cost_of, price_book

PRICES_ENV = "BUDGETCTL_PRICES"


class DefaultCosting:
    """Prices, token counts and response usage with everything from the package (no network)."""

    def __init__(
        self,
        prices_file: str | os.PathLike[str] | None = None,
        project_prices: Mapping[str, Price] | None = None,
    ) -> None:
        self.prices_file = prices_file
        self.project_prices: Mapping[str, Price] = dict(project_prices or {})
        self._book: PriceBook | None = None

    @property
    def book(self) -> PriceBook:
        """The price layers, assembled (and the price file read) on first use."""
        if self._book is None:
            self._book = price_book(self.prices_file, self.project_prices)
        return self._book

    def price(self, model: str) -> Price:
        return self.book.price(model)

    def cost(self, usage: Usage) -> Decimal:
        return cost_of(self.price(usage.model), usage)

    def list_prices(self, filter: str | None = None) -> list[Price]:
        """Known prices whose name contains ``filter`` (case-insensitive), sorted by name."""
        return self.book.matching(filter)

    def count_text(self, model: str, text: str) -> TokenCount:
        from budgetctl.costing.tokens import count_text

        return count_text(model, text)

    def count_messages(self, model: str, messages: Sequence[Mapping[str, Any]]) -> TokenCount:
        from budgetctl.costing.tokens import count_messages

        return count_messages(model, messages)

    def usage_from_response(self, response: Any, model: str | None = None) -> Usage:
        from budgetctl.costing.responses import usage_from_response

        return usage_from_response(response, model)


def load_costing(
    prices_file: str | os.PathLike[str] | None = None,
    project_prices: Mapping[str, Price] | None = None,
) -> DefaultCosting:
    """The default :class:`Costing`.

    ``prices_file`` is a LiteLLM-format price map whose entries win over the bundled table
    (default: ``$BUDGETCTL_PRICES`` when set and not empty); ``project_prices`` win over both.
    Nothing is read until a price is asked for.
    """
    if prices_file is None:
        prices_file = os.environ.get(PRICES_ENV) or None
    return DefaultCosting(prices_file, project_prices)


def list_prices(
    filter: str | None = None,
    prices_file: str | os.PathLike[str] | None = None,
    project_prices: Mapping[str, Price] | None = None,
) -> list[Price]:
    """The prices a ``models [FILTER]`` command shows: names containing ``filter``, sorted.

    The price file defaults to ``$BUDGETCTL_PRICES`` as in :func:`load_costing`.
    """
    return load_costing(prices_file, project_prices).list_prices(filter)
