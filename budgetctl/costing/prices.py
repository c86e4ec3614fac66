"""The price book: where budgetctl looks a model's price up, and the exact cost of a call.

Layers are searched in order (per-project prices from the ledger, a ``--prices FILE`` /
``BUDGETCTL_PRICES`` file, the bundled table), each by exact name then without provider prefixes.
Reading a LiteLLM-format price file is :mod:`budgetctl.costing.litellm_map`'s job and the bundled
table is :mod:`budgetctl.costing.bundled`'s; this module only searches them. No binary float ever
enters a price or a cost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import TYPE_CHECKING, Any

# The names of the table and of the map reader stay importable from here, where they were before
# this module was split by reason to change; new code imports them from their own modules.
from budgetctl.costing.bundled import (
    BUNDLED_PRICES,
    DATA_DIR,
    ROW_FIELDS,
    TABLE_FORMAT,
    BundledTable,
    Row,
    bundled_table,
    load_bundled_table,
    price_from_row,
    price_to_row,
)
from budgetctl.costing.interface import Price, Usage
from budgetctl.costing.names import base_name, name_candidates
from budgetctl.errors import UnknownModelError, UsageError

if TYPE_CHECKING:
    from budgetctl.costing.litellm_map import (
        ALIAS_FIELD,
        MAX_PRICE_FILE,
        NO_OUTPUT_MODES,
        SAMPLE_SPEC,
        alias_targets,
        price_from_entry,
        priced_aliases,
        read_price_file,
    )

# The map reader's names load with it, on first use: a call priced from the bundled table (most
# one-shot commands) never reads a price file.
_MAP_NAMES = frozenset(
    {
        "ALIAS_FIELD",
        "MAX_PRICE_FILE",
        "NO_OUTPUT_MODES",
        "SAMPLE_SPEC",
        "alias_targets",
        "price_from_entry",
        "priced_aliases",
        "read_price_file",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MAP_NAMES:
        from budgetctl.costing import litellm_map

        return getattr(litellm_map, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALIAS_FIELD",
    "BUNDLED_PRICES",
    "DATA_DIR",
    "MAX_PRICE_FILE",
    "NO_OUTPUT_MODES",
    "ROW_FIELDS",
    "SAMPLE_SPEC",
    "TABLE_FORMAT",
    "BundledTable",
    "PriceBook",
    "Row",
    "alias_targets",
    "bundled_table",
    "cost_of",
    "load_bundled_table",
    "price_book",
    "price_file_table",
    "price_from_entry",
    "price_from_row",
    "price_to_row",
    "priced_aliases",
    "project_layer",
    "read_price_file",
]


# --- the layers ----------------------------------------------------------------------------------

# Per process: a price file's table by real path, with the (mtime, size) it was read at.
_file_tables: dict[str, tuple[tuple[int, int], dict[str, Price]]] = {}
_file_tables_lock = threading.Lock()


def price_file_table(path: str | os.PathLike[str]) -> dict[str, Price]:
    """:func:`read_price_file`, cached per process while the file's size and mtime stay the same."""
    from budgetctl.costing.litellm_map import read_price_file

    try:
        stat = os.stat(path)
    except OSError:
        return read_price_file(path)  # raises the UsageError that explains it
    key, version = os.path.realpath(path), (stat.st_mtime_ns, stat.st_size)
    with _file_tables_lock:
        cached = _file_tables.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    table = read_price_file(path)
    with _file_tables_lock:
        _file_tables[key] = (version, table)
    return table


def project_layer(prices: Mapping[str, Price]) -> dict[str, Price]:
    """Per-project prices as a layer: keyed by the name the project gave, marked ``project``."""
    return {
        name: price
        if (price.model, price.source) == (name, "project")
        else price._replace(model=name, source="project")
        for name, price in prices.items()
    }


class PriceBook:
    """Prices from layers searched in order; the first layer that knows a name wins."""

    def __init__(self, layers: Sequence[Mapping[str, Price]]) -> None:
        self._layers = tuple(layers)

    def price(self, model: str) -> Price:
        """The price of ``model``: in each layer, the exact name, then without provider prefixes.

        Raises :class:`UnknownModelError` with the closest known names.
        """
        for layer in self._layers:
            for name in name_candidates(model):
                found = layer.get(name)
                if found is not None:
                    return found
        raise UnknownModelError(model, self.closest(model))

    def closest(self, model: str, n: int = 3) -> list[str]:
        """Up to ``n`` known names closest to ``model`` (compared without provider prefixes)."""
        import difflib  # only on the error path

        by_base: dict[str, list[str]] = {}
        for layer in self._layers:
            for name in layer:
                by_base.setdefault(base_name(name), []).append(name)
        wanted = base_name(model)
        same = [base for base in by_base if base.casefold() == wanted.casefold()]  # GPT-4o
        matches = same + [
            base
            for base in difflib.get_close_matches(wanted, list(by_base), n=n, cutoff=0.6)
            if base not in same
        ]
        matches = matches[:n]
        # For each close base name, the shortest full name that carries it (prefix-free first).
        return [min(by_base[base], key=lambda name: (len(name), name)) for base in matches]

    def all(self) -> dict[str, Price]:
        """Every known price by name, earlier layers winning."""
        merged: dict[str, Price] = {}
        for layer in reversed(self._layers):
            merged.update(layer.items())
        return merged

    def matching(self, substring: str | None = None) -> list[Price]:
        """Prices whose name contains ``substring`` (case-insensitive), sorted by name."""
        needle = (substring or "").casefold()
        return [price for name, price in sorted(self.all().items()) if needle in name.casefold()]


def price_book(
    prices_file: str | os.PathLike[str] | None = None,
    project_prices: Mapping[str, Price] | None = None,
) -> PriceBook:
    """The layers budgetctl prices from: project prices, then the price file, then the bundle."""
    layers: list[Mapping[str, Price]] = []
    if project_prices:
        layers.append(project_layer(project_prices))
    if prices_file is not None:
        layers.append(price_file_table(prices_file))
    layers.append(bundled_table())
    return PriceBook(layers)


# --- cost ----------------------------------------------------------------------------------------

# Products and sums of decimals are exact at this precision; Inexact would raise, never round.
_EXACT = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Inexact, Overflow]
)


def _check_usage(usage: Usage) -> None:
    counts = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_creation_tokens": usage.cache_creation_tokens,
    }
    for field, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{field} must be a whole number >= 0, got {value!r}")
    if usage.cached_tokens + usage.cache_creation_tokens > usage.prompt_tokens:
        raise UsageError(
            f"cached_tokens ({usage.cached_tokens}) + cache_creation_tokens "
            f"({usage.cache_creation_tokens}) exceed prompt_tokens ({usage.prompt_tokens}), "
            "which must include them"
        )


def cost_of(price: Price, usage: Usage) -> Decimal:
    """The exact USD cost of ``usage`` at ``price``; no rounding.

    ``(prompt - cached - creation) * input + cached * (cache_read or input)
    + creation * (cache_creation or input) + completion * output``.
    """
    _check_usage(usage)
    read_rate = price.cache_read_per_token
    creation_rate = price.cache_creation_per_token
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    with localcontext(_EXACT):
        return (
            uncached * price.input_per_token
            + usage.cached_tokens * (price.input_per_token if read_rate is None else read_rate)
            + usage.cache_creation_tokens
            * (price.input_per_token if creation_rate is None else creation_rate)
            + usage.completion_tokens * price.output_per_token
        )
