"""Usage read from completion responses, whatever shape they come in.

Formats: OpenAI Chat Completions (and embeddings), the OpenAI Responses API, Anthropic Messages,
and LiteLLM's ``ModelResponse`` (OpenAI chat shaped). Inputs: dicts, JSON text or bytes, and SDK
objects (pydantic models with ``model_dump()``, objects with attributes or ``__getitem__``), read
without importing any SDK. The result follows OpenAI's convention: ``prompt_tokens`` includes cached
and cache-creation tokens (Anthropic reports them apart; they are added back).

Anything malformed (not JSON, truncated, no usage, a token count that is not a whole number in
0..10**9) is a :class:`ResponseParseError` that names the field.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping
from typing import Any

from budgetctl.costing.interface import Usage
from budgetctl.errors import ResponseParseError

MAX_TOKENS = 10**9  # more tokens than this in one call is a broken response, not a bill

_MISSING: Any = object()
_SCALARS = (str, bytes, bytearray, int, float, list, tuple)


def _load(response: Any) -> Any:
    """``response`` itself, or the JSON document it holds when it is text or bytes."""
    if isinstance(response, (bytes, bytearray, memoryview)):
        try:
            response = bytes(response).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ResponseParseError(f"response is not UTF-8 text ({error.reason})") from None
    if not isinstance(response, str):
        return response
    text = response.lstrip("\ufeff")
    if not text.strip():
        raise ResponseParseError("response is empty: expected a JSON completion response")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        truncated = not text[error.pos :].strip() or error.msg.startswith("Unterminated")
        hint = " (it ends early: is the response truncated?)" if truncated else ""
        raise ResponseParseError(
            f"response is not valid JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno}{hint}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise ResponseParseError(f"response is not valid JSON: {error}") from None


class _Node:
    """One object of a response (mapping, pydantic model or plain object) and its field path."""

    def __init__(self, value: Any, path: str) -> None:
        if value is None or isinstance(value, _SCALARS):
            kind = "null" if value is None else type(value).__name__
            raise ResponseParseError(f"{path} must be an object, got {kind}")
        self.path = path
        self._value = value
        self._dumped: Mapping[str, Any] | None = None

    def raw(self, key: str) -> Any:
        """The value of field ``key``, or ``_MISSING``.

        A mapping is read by key. An SDK object is read by attribute (cheap, and what pydantic
        models, OpenAI's, Anthropic's and LiteLLM's objects all offer), then by ``obj[key]``, then
        from its ``model_dump()`` (made once, only if the first two miss).
        """
        value = self._value
        try:
            if isinstance(value, Mapping):
                return value.get(key, _MISSING)
            found = getattr(value, key, _MISSING)
            if found is _MISSING and hasattr(type(value), "__getitem__"):
                try:
                    found = value[key]
                except (LookupError, TypeError, AttributeError):
                    found = _MISSING
            if found is _MISSING:
                if self._dumped is None:
                    self._dumped = _model_dump(value)
                found = self._dumped.get(key, _MISSING)
            return found
        except Exception as error:  # a broken SDK object: say which field, not a traceback
            raise ResponseParseError(f"{self.path}.{key} could not be read ({error!r})") from None

    def has(self, key: str) -> bool:
        value = self.raw(key)
        return value is not _MISSING and value is not None

    def tag(self, key: str) -> str | None:
        """A string field that tells the format apart (``object``, ``type``), else None."""
        value = self.raw(key)
        return value if isinstance(value, str) else None

    def child(self, key: str) -> _Node | None:
        """The object in field ``key``, or None when it is missing or null."""
        value = self.raw(key)
        if value is _MISSING or value is None:
            return None
        return _Node(value, f"{self.path}.{key}")

    def require(self, key: str, why: str = "") -> _Node:
        node = self.child(key)
        if node is None:
            raise ResponseParseError(f"{self.path}.{key} is missing{why}")
        return node

    def tokens(self, key: str, *, required: bool) -> int:
        """A token count: a whole number in 0..MAX_TOKENS (bool and float are not)."""
        value = self.raw(key)
        where = f"{self.path}.{key}"
        if value is _MISSING or value is None:
            if required:
                raise ResponseParseError(f"{where} is missing")
            return 0
        if isinstance(value, bool):
            raise ResponseParseError(f"{where} must be a whole number of tokens, got {value!r}")
        try:
            count = operator.index(value)
        except TypeError:
            raise ResponseParseError(
                f"{where} must be a whole number of tokens, got {_show(value)}"
            ) from None
        if not 0 <= count <= MAX_TOKENS:
            raise ResponseParseError(f"{where} must be between 0 and {MAX_TOKENS}, got {count}")
        return count

    def text(self, key: str) -> str | None:
        """A string field; None when it is missing, null or empty."""
        value = self.raw(key)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, str):
            raise ResponseParseError(f"{self.path}.{key} must be a string, got {_show(value)}")
        return value or None


def _model_dump(value: Any) -> Mapping[str, Any]:
    """A pydantic model's ``model_dump()`` (or v1 ``dict()``); empty when there is none."""
    for method in ("model_dump", "dict"):
        dump = getattr(type(value), method, None)
        if callable(dump):
            try:
                dumped = dump(value)
            except Exception:  # a dump that fails has nothing more to offer than the attributes
                return {}
            return dumped if isinstance(dumped, Mapping) else {}
    return {}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _cache_counts(usage: _Node, prompt: int) -> tuple[int, int]:
    """Cached and cache-creation tokens of an OpenAI-chat-shaped usage, within ``prompt``.

    OpenAI reports ``prompt_tokens_details.cached_tokens``; LiteLLM also puts Anthropic's
    ``cache_creation_tokens`` there and keeps ``cache_read_input_tokens`` /
    ``cache_creation_input_tokens`` on the usage itself.
    """
    details = usage.child("prompt_tokens_details")
    cached = creation = 0
    if details is not None:
        cached = details.tokens("cached_tokens", required=False)
        creation = details.tokens("cache_creation_tokens", required=False)
    if not cached:
        cached = usage.tokens("cache_read_input_tokens", required=False)
    if not creation:
        creation = usage.tokens("cache_creation_input_tokens", required=False)
    if cached + creation > prompt:
        raise ResponseParseError(
            f"{usage.path}.prompt_tokens ({prompt}) is less than its cached ({cached}) and "
            f"cache-creation ({creation}) tokens, which it must include"
        )
    return cached, creation


def _chat(root: _Node, usage: _Node) -> tuple[int, int, int, int]:
    prompt = usage.tokens("prompt_tokens", required=True)
    # An embeddings response ("object": "list") has no completion tokens.
    completion = usage.tokens("completion_tokens", required=root.tag("object") != "list")
    cached, creation = _cache_counts(usage, prompt)
    return prompt, completion, cached, creation


def _responses_api(usage: _Node) -> tuple[int, int, int, int]:
    prompt = usage.tokens("input_tokens", required=True)
    completion = usage.tokens("output_tokens", required=True)
    details = usage.child("input_tokens_details")
    cached = 0 if details is None else details.tokens("cached_tokens", required=False)
    if cached > prompt:
        raise ResponseParseError(
            f"{usage.path}.input_tokens ({prompt}) is less than its cached tokens ({cached}), "
            "which it must include"
        )
    return prompt, completion, cached, 0


def _anthropic(usage: _Node) -> tuple[int, int, int, int]:
    # Anthropic's input_tokens excludes the tokens read from and written to the prompt cache.
    uncached = usage.tokens("input_tokens", required=True)
    completion = usage.tokens("output_tokens", required=True)
    cached = usage.tokens("cache_read_input_tokens", required=False)
    creation = usage.tokens("cache_creation_input_tokens", required=False)
    prompt = uncached + cached + creation
    if prompt > MAX_TOKENS:
        raise ResponseParseError(
            f"{usage.path}: input, cache read and cache creation tokens add up to {prompt}, "
            f"more than {MAX_TOKENS}"
        )
    return prompt, completion, cached, creation


def usage_from_response(response: Any) -> Usage:
    """Model, token usage and ``id`` of a completion response (object, dict, JSON text/bytes).

    Raises :class:`ResponseParseError` naming the missing or bad field.
    """
    root = _Node(_load(response), "response")
    model = root.text("model")
    if model is None:
        raise ResponseParseError("response.model is missing: budgetctl needs it to price the call")
    request_id = root.text("id")
    usage = root.require("usage", ": the response carries no token usage to charge")
    if root.tag("object") == "response":
        counts = _responses_api(usage)
    elif root.tag("type") == "message":
        counts = _anthropic(usage)
    elif usage.has("prompt_tokens"):
        counts = _chat(root, usage)
    elif usage.has("input_tokens_details"):
        counts = _responses_api(usage)
    elif usage.has("input_tokens"):
        counts = _anthropic(usage)  # equal to the Responses reading when nothing is cached
    else:
        raise ResponseParseError(
            f"{usage.path}.prompt_tokens is missing (nor has it input_tokens): not an OpenAI, "
            "Anthropic or LiteLLM completion response"
        )
    prompt, completion, cached, creation = counts
    return Usage(
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_creation_tokens=creation,
        request_id=request_id,
    )
