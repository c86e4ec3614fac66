"""The wire format of bench/differential.py: Python values as tagged JSON, both ways.

Shared by the harness (budgetctl's interpreter) and ``litellm_driver.py`` (LiteLLM's venv), so a
value keeps its exact type across the pipe: ``0`` and ``0.0`` stay apart, an ``int`` user key
stays an int, a float keeps its ``repr`` (``nan`` and ``inf`` included).
"""

from __future__ import annotations

from typing import Any


def enc(value: Any) -> Any:
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, dict):
        return ["dict", [[enc(k), enc(v)] for k, v in value.items()]]
    if isinstance(value, (list, tuple)):
        return ["list", [enc(v) for v in value]]
    return ["other", type(value).__name__, repr(value)]


def dec(tagged: Any) -> Any:
    tag = tagged[0]
    if tag == "none":
        return None
    if tag in ("bool", "int", "str"):
        return tagged[1]
    if tag == "float":
        return float(tagged[1])
    if tag == "dict":
        return {dec(k): dec(v) for k, v in tagged[1]}
    if tag == "list":
        return [dec(v) for v in tagged[1]]
    raise ValueError(f"cannot decode {tagged!r}")


def outcome(call: Any) -> Any:
    """``["ok", value]`` or ``["exc", [class names of the exception's MRO], message]``."""
    try:
        return ["ok", enc(call())]
    except Exception as exc:
        return ["exc", [cls.__name__ for cls in type(exc).__mro__], str(exc)[:300]]
