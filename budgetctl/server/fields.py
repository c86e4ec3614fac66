"""The fields a route takes (query and JSON body): checked on the way in, and described in the
OpenAPI document from the same table, so the document cannot drift from what is accepted.

A body is one JSON object; numbers are read exactly (``parse_float=Decimal``); a field the route
does not know is refused (a misspelt ``dry_run`` must not write).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from budgetctl.core.record import Record
from budgetctl.errors import UsageError


class BadBody(UsageError):
    """A body that is not JSON, or not a JSON object (422)."""


class Field(Record):
    name: str
    kind: str  # string | amount | integer | boolean | strings | time | ttl | json
    help: str
    required: bool = False
    nullable: bool = False


# kind -> JSON Schema
SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "amount": {
        "oneOf": [
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": r"^\s*\+?[0-9]*\.?[0-9]+\s*$"},
        ]
    },
    "integer": {"type": "integer", "minimum": 0},
    "alerts": {
        "oneOf": [
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": r"^[0-9.,%\s]+$"},
            {
                "type": "array",
                "items": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]},
            },
        ]
    },
    "boolean": {"type": "boolean"},
    "strings": {"type": "array", "items": {"type": "string"}},
    "time": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    "ttl": {"oneOf": [{"type": "string"}, {"type": "number", "minimum": 0}]},
    "json": {},
}


def schema(field: Field) -> dict[str, Any]:
    found = dict(SCHEMAS[field.kind])
    if field.nullable:
        found = {"oneOf": [found, {"type": "null"}]} if found else found
    found["description"] = field.help
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(data: bytes) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); BadBody otherwise."""
    if not data.strip():
        return {}
    try:
        value = json.loads(data, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError, oversized integers
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise BadBody(f"the request body is not valid JSON ({reason})") from None
    if not isinstance(value, dict):
        raise BadBody("the request body must be a JSON object")
    return value


def _check(field: Field, value: Any) -> Any:
    if value is None:
        if field.nullable:
            return None
        raise UsageError(f"{field.name} cannot be null")
    kind = field.kind
    ok = {
        "string": isinstance(value, str),
        "amount": isinstance(value, (int, Decimal, str)) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "alerts": (isinstance(value, (int, Decimal, str)) and not isinstance(value, bool))
        or (
            isinstance(value, list)
            and all(isinstance(v, (int, Decimal, str)) and not isinstance(v, bool) for v in value)
        ),
        "boolean": isinstance(value, bool),
        "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "time": isinstance(value, (str, int, Decimal)) and not isinstance(value, bool),
        "ttl": isinstance(value, (str, int, Decimal)) and not isinstance(value, bool),
        "json": True,
    }[kind]
    if not ok:
        wanted = {
            "string": "a string",
            "amount": "a decimal number (or a string of one)",
            "integer": "a whole number",
            "alerts": "a percentage, a list of them, or a string such as '50,80,100'",
            "boolean": "true or false",
            "strings": "a list of strings",
            "time": "an ISO 8601 time (or epoch seconds)",
            "ttl": "a duration such as '15m' (or seconds)",
        }[kind]
        raise UsageError(f"{field.name} must be {wanted}, not {json_repr(value)}")
    if kind in ("time", "ttl") and isinstance(value, Decimal):
        return float(value)  # epoch seconds / a number of seconds: no money here
    return value


def json_repr(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def take(body: Mapping[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """The known fields of ``body``, checked; absent ones are left out."""
    known = {field.name: field for field in fields}
    unknown = sorted(set(body) - set(known))
    if unknown:
        names = ", ".join(unknown)
        raise UsageError(f"unknown field{'s' if len(unknown) > 1 else ''}: {names}")
    taken: dict[str, Any] = {}
    for field in fields:
        if field.name in body:
            taken[field.name] = _check(field, body[field.name])
        elif field.required:
            raise UsageError(f"missing field: {field.name}")
    return taken


def take_query(query: Mapping[str, str], fields: tuple[Field, ...]) -> dict[str, Any]:
    """Query parameters as typed values (booleans are ``true``/``false``)."""
    known = {field.name: field for field in fields}
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise UsageError(f"unknown query parameter: {', '.join(unknown)}")
    taken: dict[str, Any] = {}
    for name, text in query.items():
        field = known[name]
        if field.kind == "boolean":
            if text not in ("true", "false"):
                raise UsageError(f"{name} must be true or false, not {text!r}")
            taken[name] = text == "true"
        elif field.kind == "integer":
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                raise UsageError(f"{name} must be a whole number, not {text!r}")
            taken[name] = int(text)
        else:
            taken[name] = text
    return taken
