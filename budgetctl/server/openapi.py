"""The OpenAPI 3.1 document of the server, built from the route tables (so it cannot drift)."""

from __future__ import annotations

import re
from typing import Any

from budgetctl._version import __version__
from budgetctl.server.api import JSON, JSON_LINES, ROUTES, Route
from budgetctl.server.fields import Field, schema

LITELLM_BODIES = {
    "/get_budget": (Field("project_name", "string", "The project.", required=True),),
    "/set_budget": (
        Field("project_name", "string", "The project.", required=True),
        Field("user_dict", "json", "Every user's LiteLLM record (the whole dict).", required=True),
    ),
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
PARAMETERS = {
    "project": "The project: 1-64 of letters, digits, '.', '_', '-', not starting with '.'.",
    "user": "The user (any text up to 256 characters, percent-encoded).",
    "model": "The model name (percent-encoded; may contain '/').",
}


def _body(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {f.name: schema(f) for f in fields},
                    "required": [f.name for f in fields if f.required],
                    "additionalProperties": False,
                }
            }
        },
    }


def _document(media_type: str) -> dict[str, Any]:
    """A body that is one whole document: a dump (JSON Lines) or a user_cost.json (an object)."""
    if media_type == JSON_LINES:
        # The same lines as text/plain too: the server reads the body whatever its type, and a
        # client (schemathesis, for one) may know no JSON Lines serializer.
        text = {"schema": {"type": "string"}}
        return {"required": True, "content": {JSON_LINES: text, "text/plain": text}}
    return {"required": True, "content": {media_type: {"schema": {"type": "object"}}}}


def _answers(status: int, description: str, media_type: str = JSON) -> dict[str, Any]:
    shape = {"type": "string"} if media_type == JSON_LINES else {"type": "object"}
    json_object = {media_type: {"schema": shape}}
    errors = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    answers: dict[str, Any] = {str(status): {"description": description, "content": json_object}}
    for code, what in (
        ("400", "Bad input (usage)"),
        ("401", "No or wrong token"),
        ("402", "Over budget (enforce)"),
        ("404", "Unknown project, user, model or hold"),
        ("409", "Conflict"),
        ("413", "Body over the limit (1 MiB; 64 MiB for restore and import-litellm)"),
        ("422", "Body not a JSON object"),
        ("503", "Store busy or unreachable"),
    ):
        answers[code] = {"description": what, "content": errors}
    return answers


def _operation(route: Route) -> dict[str, Any]:
    names = re.findall(r"{(\w+)}", route.path)
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__ + "_" + route.method.lower(),
        "summary": route.summary,
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": PARAMETERS[name],
                "schema": {"type": "string", "minLength": 1},
            }
            for name in names
        ]
        + [
            {
                "name": field.name,
                "in": "query",
                "required": False,
                "description": field.help,
                "schema": {"type": "boolean"}
                if field.kind == "boolean"
                else {"type": "integer", "minimum": 0}
                if field.kind == "integer"
                else {"type": "string"},
            }
            for field in route.query
        ],
        "responses": _answers(route.status, route.summary, route.answers),
    }
    if route.document is not None:
        operation["requestBody"] = _document(route.document)
    elif route.body is not None:
        operation["requestBody"] = _body(route.body)
    return operation


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness (no token needed).",
                "security": [],
                "responses": {"200": {"description": "Up"}},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {"200": {"description": "The OpenAPI document"}},
            }
        },
    }
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, fields in LITELLM_BODIES.items():
        paths[path] = {
            "post": {
                "operationId": path.strip("/"),
                "summary": "LiteLLM's hosted budget protocol (whole dicts, last writer wins).",
                "requestBody": _body(fields),
                "responses": _answers(200, "status success or error"),
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "budgetctl", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
