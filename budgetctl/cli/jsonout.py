"""JSON output written by hand, so money is a JSON number with the exact Decimal's digits.

``json.dumps`` cannot write a Decimal as a number without going through a binary float
(``0.000123`` would risk ``0.00012300000000000001``); this small writer emits Decimals with
:func:`~budgetctl.core.money.to_text` and refuses floats outright.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from budgetctl.core.money import to_text
from budgetctl.core.periods import format_utc


def dumps(value: object, indent: int = 2) -> str:
    """``value`` as JSON text: dicts, lists, tuples, str, int, bool, None, Decimal, datetime."""
    parts: list[str] = []
    _write(value, parts, 0, indent)
    return "".join(parts)


def _write(value: object, out: list[str], level: int, indent: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as a JSON number")
        out.append(to_text(value) if value >= 0 else "-" + to_text(-value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, datetime):
        out.append(json.dumps(format_utc(value)))
    elif isinstance(value, Mapping):
        _container(
            [(json.dumps(str(k), ensure_ascii=False) + ": ", v) for k, v in value.items()],
            out,
            level,
            indent,
            "{}",
        )
    elif isinstance(value, (list, tuple)):
        _container([("", v) for v in value], out, level, indent, "[]")
    else:  # floats included: money never goes through a binary float
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _container(
    items: list[tuple[str, object]], out: list[str], level: int, indent: int, brackets: str
) -> None:
    if not items:
        out.append(brackets)
        return
    pad = "\n" + " " * (indent * (level + 1))
    out.append(brackets[0])
    for number, (key, item) in enumerate(items):
        out.append(("," if number else "") + pad + key)
        _write(item, out, level + 1, indent)
    out.append("\n" + " " * (indent * level) + brackets[1])
