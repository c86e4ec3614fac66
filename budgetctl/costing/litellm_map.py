"""LiteLLM's model price map: its entries, its aliases, and a user's price file in its format.

One reader for both places that read the map: a ``--prices FILE`` / ``BUDGETCTL_PRICES`` file (read
with ``parse_float=Decimal`` by :func:`read_price_file`) and ``tools/build_prices.py``, which builds
the bundled table (:mod:`budgetctl.costing.bundled`) from LiteLLM's published maps with
:func:`parse_price_map`. No binary float ever enters a price.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from budgetctl.core import jsontext
from budgetctl.core.money import check_amount, shown
from budgetctl.core.record import Record
from budgetctl.costing.interface import Price
from budgetctl.errors import UsageError

# The field of a row that names the model it is an alias of.
ALIAS_FIELD = "alias_of"
# Modes whose calls produce no output tokens: a missing output rate there means 0.
NO_OUTPUT_MODES = frozenset({"embedding"})
# LiteLLM's map documents its fields under this name; it is not a model.
SAMPLE_SPEC = "sample_spec"
# A user's price file larger than this is refused unread (LiteLLM's whole map is about 1 MiB).
MAX_PRICE_FILE = 32 * 2**20


# --- one entry -----------------------------------------------------------------------------------


def _rate(entry: Mapping[str, Any], field: str) -> Decimal | None:
    """A USD-per-token rate: an amount (finite, >= 0, at most $1e15, at most 40 places), or None
    when the entry has none. Bounded so that no rate can make a cost overflow or round."""
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, (bool, float)):
        # Our readers parse with parse_float=Decimal; a float here would have been rounded.
        raise ValueError(f"{field} must be an exact decimal number, got {shown(value)}")
    if isinstance(value, (int, str)):
        try:
            value = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{field} must be a number, got {shown(value)}") from None
    if not isinstance(value, Decimal):
        raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    check_amount(value, field)  # an InvalidAmountError is a ValueError
    return abs(value) if value == 0 else value  # the map's own digits ("0.0" stays 0.0), never -0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def price_from_entry(name: str, entry: Any, source: str) -> Price | None:
    """The :class:`Price` of one LiteLLM map entry, or None when it has no per-token price.

    An entry is priced when it has both ``input_cost_per_token`` and ``output_cost_per_token``;
    an embedding model with only an input rate is priced with an output rate of 0. Metadata
    (provider, mode, context window) that is not of the expected type is dropped, not an error.
    Raises ``ValueError`` for a rate that is present but not a finite decimal >= 0.
    """
    if not isinstance(entry, Mapping):
        raise ValueError(f"expected an object of prices, got {type(entry).__name__}")
    input_rate = _rate(entry, "input_cost_per_token")
    output_rate = _rate(entry, "output_cost_per_token")
    mode = _text(entry.get("mode"))
    if output_rate is None and input_rate is not None and mode in NO_OUTPUT_MODES:
        output_rate = Decimal(0)
    if input_rate is None or output_rate is None:
        return None
    return Price(
        model=name,
        input_per_token=input_rate,
        output_per_token=output_rate,
        cache_read_per_token=_rate(entry, "cache_read_input_token_cost"),
        cache_creation_per_token=_rate(entry, "cache_creation_input_token_cost"),
        provider=_text(entry.get("litellm_provider")),
        mode=mode,
        source=source,
        max_input_tokens=_count(entry.get("max_input_tokens")),
        max_output_tokens=_count(entry.get("max_output_tokens")),
    )


# --- aliases -------------------------------------------------------------------------------------


def alias_targets(document: Mapping[str, Any]) -> dict[str, str]:
    """The aliases of a LiteLLM price map: alias name -> the model it is priced as.

    LiteLLM's rules (``_expand_model_aliases`` in its ``get_model_cost_map``): a row's ``alias_of``
    names the model row it is served as; a model row's ``aliases`` list adds names for it. An
    ``aliases`` name that is a model row of its own or already claimed, and an ``alias_of`` that
    names nothing, names another alias or a name already claimed, are dropped.
    """
    pointers = {
        name: entry[ALIAS_FIELD]
        for name, entry in document.items()
        if isinstance(entry, Mapping) and isinstance(entry.get(ALIAS_FIELD), str)
    }
    owners: dict[str, str] = {}
    for name, entry in document.items():
        if not isinstance(entry, Mapping) or name in pointers:
            continue
        aliases = entry.get("aliases")
        for alias in aliases if isinstance(aliases, list) else ():
            canonical = alias in document and alias not in pointers
            if isinstance(alias, str) and not canonical and alias not in owners:
                owners[alias] = name
    for alias, target in pointers.items():
        if target in document and target not in pointers and alias not in owners:
            owners[alias] = target
    return owners


def priced_aliases(prices: Mapping[str, Price], targets: Mapping[str, str]) -> dict[str, Price]:
    """Each alias whose target has a price, priced as its target (and named as the alias)."""
    return {
        alias: prices[target]._replace(model=alias, alias_of=target)
        for alias, target in targets.items()
        if target in prices
    }


# --- a whole map ---------------------------------------------------------------------------------


class EntryError(ValueError):
    """A model entry of a price map with a rate that is not a price (``model``: its name)."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(reason)
        self.model = model


class PriceMap(Record):
    """What a LiteLLM price map prices.

    ``models``: every model row with a per-token price; ``aliases``: alias -> target, as
    :func:`alias_targets` reads them; ``skipped``: how many model rows have no per-token price.
    """

    models: dict[str, Price]
    aliases: dict[str, str]
    skipped: int

    def prices(self) -> dict[str, Price]:
        """The models, then each alias whose target is priced, priced as its target."""
        return {**self.models, **priced_aliases(self.models, self.aliases)}


def parse_price_map(document: Mapping[str, Any], source: str) -> PriceMap:
    """Read a parsed LiteLLM map (numbers as ``Decimal``): its priced models and its aliases.

    ``sample_spec`` is not a model, and a row with ``alias_of`` is an alias: it is priced as the
    model it names (see :func:`alias_targets`) or dropped, never by rates of its own. Raises
    :class:`EntryError` for a model row with a rate that is not a finite decimal >= 0.
    """
    models: dict[str, Price] = {}
    skipped = 0
    for name, entry in document.items():
        if name == SAMPLE_SPEC or (isinstance(entry, Mapping) and ALIAS_FIELD in entry):
            continue
        try:
            price = price_from_entry(name, entry, source)
        except ValueError as error:
            raise EntryError(name, str(error)) from None
        if price is None:
            skipped += 1
        else:
            models[name] = price
    return PriceMap(models, alias_targets(document), skipped)


# --- a user's price file -------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")


def read_price_file(path: str | os.PathLike[str]) -> dict[str, Price]:
    """The per-token prices of a LiteLLM-format map (``{model: {input_cost_per_token: ...}}``).

    Numbers are parsed exactly (``Decimal``); entries without per-token prices (image models,
    ``sample_spec``) are skipped; aliases (``alias_of``, ``aliases``) are priced as the model of
    the file they name (see :func:`parse_price_map`). A file that cannot be read, is not such a
    map, holds a bad rate or has no per-token price at all is a :class:`UsageError` naming the
    file and the problem.
    """
    where = f"price file {os.fspath(path)}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PRICE_FILE + 1)
    except FileNotFoundError:
        raise UsageError(f"{where} does not exist; pass a LiteLLM-format price map") from None
    except OSError as error:
        raise UsageError(f"{where} cannot be read: {error.strerror}") from None
    if len(data) > MAX_PRICE_FILE:
        raise UsageError(
            f"{where} is larger than {MAX_PRICE_FILE // 2**20} MiB; LiteLLM's whole map is about "
            "1 MiB: is it the right file?"
        )
    try:
        document = jsontext.loads(data, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as error:
        raise UsageError(
            f"{where} is not valid JSON ({error}); expected a LiteLLM model price map"
        ) from None
    if not isinstance(document, dict):
        raise UsageError(
            f"{where} holds a JSON {type(document).__name__}; expected an object mapping model "
            "names to prices (LiteLLM's model_prices_and_context_window.json format)"
        )
    try:
        prices = parse_price_map(document, "prices-file").prices()
    except EntryError as error:
        raise UsageError(f"{where}: model {shown(error.model)}: {error}") from None
    if not prices:
        raise UsageError(
            f"{where} has no model with both input_cost_per_token and output_cost_per_token; "
            "expected a LiteLLM model price map"
        )
    return prices
