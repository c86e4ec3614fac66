"""The bundled price table, ``data/prices.json``: its format, writing it and reading it lazily.

``tools/build_prices.py`` generates the table from LiteLLM's public price map (read by
:mod:`budgetctl.costing.litellm_map`) with :func:`price_to_row` and :func:`render_table`. It holds
only what costing needs, as exact decimal text, one model a line, so that a lookup by name parses a
single line (:class:`BundledTable`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from budgetctl.costing.interface import Price
from budgetctl.errors import StateError

DATA_DIR = Path(__file__).with_name("data")
BUNDLED_PRICES = DATA_DIR / "prices.json"
TABLE_FORMAT = 2
# The columns of a row in prices.json, in order. An alias's row is its target's row followed by
# the target's name (the ``alias_of`` column).
ROW_FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
)
_HINT = "reinstall budgetctl"

Row = list[Any]


# --- rows ----------------------------------------------------------------------------------------


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def price_to_row(price: Price) -> Row:
    """The compact row of ``price`` in prices.json (rates as exact decimal text)."""
    row: Row = [
        str(price.input_per_token),
        str(price.output_per_token),
        _decimal_text(price.cache_read_per_token),
        _decimal_text(price.cache_creation_per_token),
        price.provider,
        price.mode,
        price.max_input_tokens,
        price.max_output_tokens,
    ]
    if price.alias_of is not None:
        row.append(price.alias_of)
    return row


def price_from_row(name: str, row: Row) -> Price:
    """The :class:`Price` of one prices.json row."""
    read, creation = row[2], row[3]
    return Price(
        model=name,
        input_per_token=Decimal(row[0]),
        output_per_token=Decimal(row[1]),
        cache_read_per_token=None if read is None else Decimal(read),
        cache_creation_per_token=None if creation is None else Decimal(creation),
        provider=row[4],
        mode=row[5],
        source="bundled",
        max_input_tokens=row[6],
        max_output_tokens=row[7],
        alias_of=row[8] if len(row) > len(ROW_FIELDS) else None,
    )


# --- the file ------------------------------------------------------------------------------------


def render_table(rows: Mapping[str, Row], generated_by: str) -> bytes:
    """prices.json: a header line, then one model a line, sorted, so that a regenerated table
    diffs well and :class:`BundledTable` finds a model's line with one search."""
    head = {"format": TABLE_FORMAT, "generated_by": generated_by, "fields": list(ROW_FIELDS)}
    lines = [json.dumps(head, separators=(",", ":"))[:-1] + ',"models":{']
    models = sorted(rows.items())
    for index, (name, row) in enumerate(models):
        comma = "," if index < len(models) - 1 else ""
        lines.append(
            json.dumps(name, ensure_ascii=False)
            + ":"
            + json.dumps(row, separators=(",", ":"), ensure_ascii=False)
            + comma
        )
    lines.append("}}")
    return ("\n".join(lines) + "\n").encode()


class BundledTable(Mapping[str, Price]):
    """The bundled rows, turned into :class:`Price` objects only when asked for.

    ``prices.json`` holds one model a line (``"name":[row],``), so a lookup by name finds its line
    with one ``bytes.find`` and parses just that line: a one-shot command that prices one model
    never parses the other 4,000 rows (0.1 ms instead of ~4 ms). Iterating, ``len`` and the
    closest-name search parse the whole table once.
    """

    def __init__(self, data: bytes, path: Path = BUNDLED_PRICES) -> None:
        self._data = data
        self._path = path
        self._all: dict[str, Row] | None = None

    def _rows(self) -> dict[str, Row]:
        if self._all is None:
            self._all = _parse_table(self._data, self._path)
        return self._all

    def _row(self, name: str) -> Row | None:
        if self._all is not None:
            return self._all.get(name)
        try:
            key = b"\n" + json.dumps(name, ensure_ascii=False).encode() + b":["
        except UnicodeEncodeError:  # a lone surrogate: no model has such a name
            return None
        start = self._data.find(key)
        if start < 0:
            return None
        end = self._data.find(b"\n", start + 1)
        line = self._data[start + len(key) - 1 : end].rstrip(b",")
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, list) or len(row) not in (len(ROW_FIELDS), len(ROW_FIELDS) + 1):
            raise StateError(self._path, f"the row of {name!r} is malformed", _HINT)
        return row

    def __getitem__(self, name: str) -> Price:
        row = self._row(name)
        if row is None:
            raise KeyError(name)
        return price_from_row(name, row)

    def get(self, name: str, default: Any = None) -> Any:  # one lookup, not __contains__ + [...]
        row = self._row(name)
        return default if row is None else price_from_row(name, row)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._row(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())


def _parse_table(data: bytes, path: Path) -> dict[str, Row]:
    try:
        document = json.loads(data)
    except ValueError as error:
        reason = f"the bundled price table is not valid JSON ({error})"
        raise StateError(path, reason, _HINT) from None
    rows = document.get("models") if isinstance(document, dict) else None
    if not isinstance(rows, dict):
        raise StateError(path, "the bundled price table has no models", _HINT)
    return rows


def load_bundled_table(path: Path = BUNDLED_PRICES) -> BundledTable:
    """Read the bundled table (uncached; :func:`bundled_table` caches it per process).

    Only the header line is checked here; rows are parsed when they are looked up.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = f"cannot read the bundled price table ({error.strerror})"
        raise StateError(path, reason, _HINT) from None
    head, _, _ = data.partition(b"\n")
    try:
        header = json.loads(head.removesuffix(b'"models":{').rstrip(b",") + b"}")
    except ValueError:
        header = None
    if (
        not isinstance(header, dict)
        or header.get("format") != TABLE_FORMAT
        or not head.endswith(b'"models":{')
        or not data.rstrip().endswith(b"}}")
    ):
        raise StateError(path, f"not a budgetctl price table of format {TABLE_FORMAT}", _HINT)
    return BundledTable(data, path)


@functools.cache
def bundled_table() -> BundledTable:
    """The bundled table, loaded once per process on first use."""
    return load_bundled_table()
