"""Per-project custom prices: ``<project>+prices.json``, a small file beside the state.

Kept apart from the state so a charge reads them without parsing a (possibly large) state file.
Rates are USD per token, as exact decimal text, in LiteLLM's field names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from budgetctl.core import jsontext
from budgetctl.core.money import check_amount, shown, to_text
from budgetctl.costing.interface import Price
from budgetctl.errors import (
    CorruptStateError,
    FutureVersionError,
    InvalidAmountError,
    StorageIOError,
)
from budgetctl.store import files

FORMAT = "budgetctl-prices"
VERSION = 1


def load(path: Path, legacy: Path | None = None) -> dict[str, Any]:
    """The raw ``{model: rates}`` of the file at ``path`` ({} when there is none).

    Without one, ``legacy`` (the name budgetctl 0.1 used) is read if it is a prices file: under
    that name it may also be the state file of another project, which is not an error here.
    """
    try:
        fd, found = files.open_first([path] if legacy is None else [path, legacy], os.O_RDONLY)
        data = files.read_all(fd)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageIOError(path, f"cannot read ({exc.strerror})") from None
    if found != path and not is_prices_file(data):
        return {}  # the state of a project named '<project>.prices'
    path = found
    try:
        doc = jsontext.loads(data, parse_float=Decimal)  # exact, as written (to_text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptStateError(path, "not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorruptStateError(path, "not a budgetctl prices file")
    if isinstance(doc.get("version"), int) and doc["version"] > VERSION:
        raise FutureVersionError(path, doc["version"], VERSION)
    prices = doc.get("prices")
    if not isinstance(prices, dict):
        raise CorruptStateError(path, "no 'prices' object")
    return prices


def is_prices_file(data: bytes) -> bool:
    """Whether ``data`` (a file's content, or its first bytes) is a prices file, not a state."""
    head = data[:200].replace(b" ", b"").replace(b"\n", b"")
    return head.startswith(b'{"format":"' + FORMAT.encode() + b'"')


def read(path: Path, legacy: Path | None = None) -> dict[str, Price]:
    """The custom prices in the file at ``path`` (or ``legacy``), as :class:`Price` objects."""
    out = {}
    for model, raw in load(path, legacy).items():
        try:
            out[model] = decode_price(model, raw)
        except (KeyError, TypeError, ArithmeticError, ValueError) as error:
            reason = f"the custom price of {shown(model)} is malformed"
            if isinstance(error, InvalidAmountError):
                reason += f" ({error})"
            raise CorruptStateError(path, reason) from None
    return out


def dump(raw: Mapping[str, Any]) -> bytes:
    """The file's bytes for ``raw`` prices."""
    doc = {"format": FORMAT, "version": VERSION, "prices": raw}
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def encode_price(price: Price) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "input_cost_per_token": to_text(price.input_per_token),
        "output_cost_per_token": to_text(price.output_per_token),
    }
    if price.cache_read_per_token is not None:
        raw["cache_read_input_token_cost"] = to_text(price.cache_read_per_token)
    if price.cache_creation_per_token is not None:
        raw["cache_creation_input_token_cost"] = to_text(price.cache_creation_per_token)
    return raw


def decode_price(model: str, raw: Mapping[str, Any]) -> Price:
    """The :class:`Price` of a file entry; rates are bounded as amounts (InvalidAmountError)."""

    def rate(key: str) -> Decimal | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise TypeError(f"{key} is not a decimal number")
        return check_amount(Decimal(value), key)

    read = rate("cache_read_input_token_cost")
    creation = rate("cache_creation_input_token_cost")
    input_rate, output_rate = rate("input_cost_per_token"), rate("output_cost_per_token")
    if input_rate is None or output_rate is None:
        raise KeyError("input_cost_per_token" if input_rate is None else "output_cost_per_token")
    return Price(
        model=model,
        input_per_token=input_rate,
        output_per_token=output_rate,
        cache_read_per_token=read,
        cache_creation_per_token=creation,
        provider="custom",
        source="project",
    )
