"""Usage read from completion responses, whatever shape they come in.

Formats: OpenAI Chat Completions (and embeddings), the OpenAI Responses API, Anthropic Messages,
LiteLLM's ``ModelResponse`` (OpenAI chat shaped), Google Gemini ``generateContent`` and Amazon
Bedrock Converse. Inputs: dicts, JSON text or bytes, and SDK objects (pydantic models with
``model_dump()``, objects with attributes or ``__getitem__``), read without importing any SDK. The
result follows OpenAI's convention: ``prompt_tokens`` includes cached and cache-creation tokens
(Anthropic and Bedrock report them apart; they are added back), and ``completion_tokens`` includes
reasoning (Gemini reports its thoughts apart; they are added, as Google bills them as output).

Anything malformed (not JSON, truncated, no usage, a token count that is not a whole number in
0..10**9) is a :class:`ResponseParseError` that names the field; an API error body says that it is
one; a shape not listed above is told the shapes that are.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping
from typing import Any

from budgetctl.core.record import Record
from budgetctl.costing.interface import Usage
from budgetctl.errors import ResponseParseError

MAX_TOKENS = 10**9  # more tokens than this in one call is a broken response, not a bill

_MISSING: Any = object()
_SCALARS = (str, bytes, bytearray, int, float, list, tuple)

SHAPES = (
    "OpenAI Chat Completions, Responses or embeddings",
    "Anthropic Messages",
    "a LiteLLM ModelResponse",
    "Google Gemini generateContent",
    "Amazon Bedrock Converse",
)
_API_SAID = 160  # characters of an API error's own message repeated in ours


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
        self.value = value
        self._dumped: Mapping[str, Any] | None = None

    def raw(self, key: str) -> Any:
        """The value of field ``key``, or ``_MISSING``.

        A mapping is read by key. An SDK object is read by attribute (cheap, and what pydantic
        models, OpenAI's, Anthropic's and LiteLLM's objects all offer), then by ``obj[key]``, then
        from its ``model_dump()`` (made once, only if the first two miss).
        """
        value = self.value
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
            raise ResponseParseError(
                f"{where} must be between 0 and {MAX_TOKENS}, got {_show(count)}"
            )
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
    if isinstance(value, int) and not -(10**40) < value < 10**40:
        return "a number of more than 40 digits"  # repr() of a huge int is slow, then refused
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


_ANTHROPIC = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_BEDROCK = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")


def _anthropic(
    usage: _Node, keys: tuple[str, str, str, str] = _ANTHROPIC
) -> tuple[int, int, int, int]:
    """Anthropic Messages, and Bedrock Converse (the same counters in camelCase).

    Their input tokens exclude the tokens read from and written to the prompt cache.
    """
    input_key, output_key, read_key, write_key = keys
    uncached = usage.tokens(input_key, required=True)
    completion = usage.tokens(output_key, required=True)
    cached = usage.tokens(read_key, required=False)
    creation = usage.tokens(write_key, required=False)
    prompt = _within(usage, "input, cache read and cache creation", uncached + cached + creation)
    return prompt, completion, cached, creation


def _within(node: _Node, what: str, total: int) -> int:
    """``total``, a sum of token counts, refused when it is more than one call can be."""
    if total > MAX_TOKENS:
        raise ResponseParseError(
            f"{node.path}: {what} tokens add up to {total}, more than {MAX_TOKENS}"
        )
    return total


def _field(node: _Node, name: str) -> str:
    """``name`` (camelCase, as Google's REST API writes it), or its snake_case twin when only that
    is there (google-genai's SDK objects and their ``model_dump()``)."""
    if node.raw(name) is _MISSING:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        if node.raw(snake) is not _MISSING:
            return snake
    return name


def _gemini(usage: _Node) -> tuple[int, int, int, int]:
    """Gemini ``usageMetadata``.

    ``promptTokenCount`` includes the cached content; the tool-use prompt (search results the model
    read) is prompt input besides it; thoughts are output besides the candidates (Google bills them
    at the output rate). Proto3 JSON leaves zero counts out, so only the prompt count is required.
    """
    counted = usage.tokens(_field(usage, "promptTokenCount"), required=True)
    cached = usage.tokens(_field(usage, "cachedContentTokenCount"), required=False)
    if cached > counted:
        raise ResponseParseError(
            f"{usage.path}.promptTokenCount ({counted}) is less than its cached content "
            f"({cached}), which it must include"
        )
    tool_use = usage.tokens(_field(usage, "toolUsePromptTokenCount"), required=False)
    candidates = usage.tokens(_field(usage, "candidatesTokenCount"), required=False)
    thoughts = usage.tokens(_field(usage, "thoughtsTokenCount"), required=False)
    prompt = _within(usage, "prompt and tool-use prompt", counted + tool_use)
    completion = _within(usage, "candidates and thoughts", candidates + thoughts)
    return prompt, completion, cached, 0


class _ApiError(Record):
    """An API error body: its type (or status and code) and what it said."""

    label: str
    said: str | None

    @property
    def message(self) -> str:
        text = f"this is an API error ({self.label}): nothing to charge"
        if self.said:
            said = self.said if len(self.said) <= _API_SAID else self.said[: _API_SAID - 3] + "..."
            text += f"; the API said: {said}"
        return text


def _api_error(root: _Node) -> _ApiError | None:
    """The API error body ``root`` is (OpenAI, Anthropic, Gemini, AWS), or None.

    Asked only of a response without usage: an OpenAI Responses object carries ``error: null``.
    """
    error = root.raw("error")
    if isinstance(error, str):
        return _api_error_of([error], None)
    if error is not _MISSING and error is not None and not isinstance(error, _SCALARS):
        body = _Node(error, "response.error")
        return _api_error_of([body.raw(key) for key in ("type", "status", "code")], body)
    aws_type = root.raw("__type")  # an AWS JSON error: {"__type": "...#Name", "message": ...}
    if isinstance(aws_type, str):
        return _api_error_of([aws_type.rpartition("#")[2]], root)
    return None


def _api_error_of(labels: list[Any], body: _Node | None) -> _ApiError:
    names: list[str] = []
    for label in labels:
        if isinstance(label, str) or (type(label) is int and -(10**18) < label < 10**18):
            name = " ".join(str(label).split())[:80]
            if name and name not in names and name not in ("None", "null"):  # LiteLLM's proxy
                names.append(name)
    said = body.raw("message") if body is not None else None
    if isinstance(said, str) and said.strip():
        return _ApiError(", ".join(names) or "no type given", " ".join(said.split()))
    return _ApiError(", ".join(names) or "no type given", None)


def _unrecognised(root: _Node) -> ResponseParseError:
    """An object in none of the shapes: say what it has, and which shapes are read."""
    value = root.value
    if isinstance(value, Mapping):
        keys = [_show(key) if not isinstance(key, str) else key[:40] for key in value]
        described = "an empty object"
        if keys:
            described = "its fields: " + ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    else:
        name = type(value).__name__
        described = f"a{'n' if name[:1].lower() in 'aeiou' else ''} {name} object"
    return ResponseParseError(
        f"not a response budgetctl can read ({described}); it reads " + "; ".join(SHAPES)
    )


def _model(root: _Node, key: str, fallback: str | None) -> str:
    """The response's own model (field ``key``), else ``fallback`` (``--model``)."""
    model = root.text(key)
    if model is not None:
        return model
    if fallback:
        return fallback
    if key == "model" and root.has("usage") and root.require("usage").has("inputTokens"):
        raise ResponseParseError(
            "an Amazon Bedrock Converse response names no model: give it with --model MODEL "
            "(model= in the library)"
        )
    raise ResponseParseError(
        f"{root.path}.{key} is missing: budgetctl needs it to price the call (give it with "
        "--model MODEL, model= in the library)"
    )


def usage_from_response(response: Any, model: str | None = None) -> Usage:
    """Model, token usage and id of a completion response (object, dict, JSON text/bytes).

    ``model`` is used when the response names none (a Bedrock Converse response never does); a
    model named in the response wins. Raises :class:`ResponseParseError` naming the missing or bad
    field, saying that an API error body is one, or listing the shapes understood.
    """
    root = _Node(_load(response), "response")
    if not root.has("usage"):
        error = _api_error(root)
        if error is not None:
            raise ResponseParseError(error.message)
        metadata = root.child(_field(root, "usageMetadata"))
        if metadata is not None:
            found = _model(root, _field(root, "modelVersion"), model)
            prompt, completion, cached, creation = _gemini(metadata)
            request_id = root.text(_field(root, "responseId"))
            return Usage(found, prompt, completion, cached, creation, request_id)
        if not root.has("model"):
            raise _unrecognised(root)
    found = _model(root, "model", model)
    request_id = root.text("id")
    usage = root.require("usage", ": the response carries no token usage to charge")
    if usage.has("inputTokens"):
        counts = _anthropic(usage, _BEDROCK)
        metadata = root.child("ResponseMetadata")  # boto3's, when its dict was dumped
        if request_id is None and metadata is not None:
            request_id = metadata.text("RequestId")
    elif root.tag("object") == "response":
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
        model=found,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_creation_tokens=creation,
        request_id=request_id,
    )


def describe(document: Any) -> str | None:
    """What ``document`` is when it is a response or an API error body read here, else None.

    For messages about a file given where something else was expected (``import-litellm``).
    """
    unnamed = "(a model the response does not name)"
    try:
        root = _Node(document, "response")
        if not root.has("usage"):
            error = _api_error(root)
            if error is not None:
                return f"an API error body ({error.label})"
        usage = usage_from_response(document, model=unnamed)
    except ResponseParseError:
        return None
    if usage.model == unnamed:
        return "a completion response (naming no model)"
    return f"a completion response ({usage.model})"
