"""Usage read from responses: every format, SDK-style objects, and malformed input."""

from __future__ import annotations

import contextlib
import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetctl.costing import Price, Usage, cost_of, load_costing, usage_from_response
from budgetctl.errors import ResponseParseError

FIXTURES = Path(__file__).parent / "fixtures" / "responses"

# fixture -> (model, prompt, completion, cached, cache creation, request id)
EXPECTED = {
    "openai_chat_cached.json": (
        "gpt-4o-2024-08-06",
        1117,
        46,
        1024,
        0,
        "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    ),
    "openai_responses.json": (
        "gpt-4.1-2025-04-14",
        328,
        52,
        256,
        0,
        "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
    ),
    # Anthropic's input_tokens (21) excludes cache reads (1024) and writes (188086).
    "anthropic_messages_cache.json": (
        "claude-3-5-sonnet-20240620",
        21 + 1024 + 188086,
        393,
        1024,
        188086,
        "msg_01XFDUDYJgAACzvnptvVoYEL",
    ),
    "litellm_model_response_anthropic.json": (
        "claude-3-5-sonnet-20240620",
        3214,
        120,
        2048,
        1150,
        "chatcmpl-0f2a8c7e-4d3b-4e1a-9a57-2c6d4b1e8f90",
    ),
    "openai_embeddings.json": ("text-embedding-3-small", 5, 0, 0, 0, None),
    # Gemini: thoughts (876) are billed as output, beside the candidates (214); the cached
    # content (4096) is part of promptTokenCount.
    "gemini_generate_content.json": (
        "gemini-2.5-flash",
        4312,
        214 + 876,
        4096,
        0,
        "Xc0raKTgBdHXz7IP4eSJ8Qk",
    ),
    # A grounded streamed chunk: the tool-use prompt (the search results, 98) is prompt input.
    "gemini_stream_chunk_grounded.json": (
        "gemini-2.5-flash",
        12 + 98,
        21 + 62,
        0,
        0,
        "b-0raNWkLI6Fz7IPxq_N-QM",
    ),
}

# Bedrock Converse names no model: it comes from ``model=`` (``--model``). Its inputTokens, like
# Anthropic's input_tokens, excludes the tokens read from and written to the prompt cache.
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
BEDROCK = {
    "bedrock_converse_boto3.json": (
        BEDROCK_MODEL,
        25 + 0 + 2048,
        118,
        0,
        2048,
        "7d2e5c1a-3b4f-4e8a-9c6d-0f1e2a3b4c5d",  # boto3's ResponseMetadata.RequestId
    ),
    "bedrock_converse_cli.json": (BEDROCK_MODEL, 30, 628, 0, 0, None),
}
API_ERRORS = {
    "openai_error_insufficient_quota.json": "insufficient_quota",
    "anthropic_error_overloaded.json": "overloaded_error",
    "gemini_error_resource_exhausted.json": "RESOURCE_EXHAUSTED, 429",
}


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def usage_tuple(usage: Usage) -> tuple[Any, ...]:
    return (
        usage.model,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.cache_creation_tokens,
        usage.request_id,
    )


def to_namespace(value: Any) -> Any:
    """A tree of attribute objects, the way an SDK response looks."""
    if isinstance(value, dict):
        return SimpleNamespace(**{key: to_namespace(item) for key, item in value.items()})
    if isinstance(value, list):
        return [to_namespace(item) for item in value]
    return value


class Dumpable:
    """A pydantic-like model: data only through ``model_dump()``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def model_dump(self) -> dict[str, Any]:
        return self._data


class ItemAccess:
    """An object readable only with ``obj[key]`` (like LiteLLM's dict-style access)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = {k: ItemAccess(v) if isinstance(v, dict) else v for k, v in data.items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]


class BrokenDump(SimpleNamespace):
    """A pydantic-like object whose ``model_dump`` fails (as a serialisation warning made error
    would): its attributes are enough, so it is never called."""

    def model_dump(self) -> dict[str, Any]:
        raise AssertionError("model_dump called although the attributes were there")


# --- every format, every input form --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_as_dict(name: str) -> None:
    assert usage_tuple(usage_from_response(fixture(name))) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_as_json_text_and_bytes(name: str) -> None:
    text = (FIXTURES / name).read_text()
    assert usage_tuple(usage_from_response(text)) == EXPECTED[name]
    assert usage_tuple(usage_from_response(text.encode())) == EXPECTED[name]
    assert usage_tuple(usage_from_response(b"\xef\xbb\xbf" + text.encode())) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize(
    "wrap", [to_namespace, Dumpable, ItemAccess], ids=["attrs", "dump", "item"]
)
def test_fixture_as_sdk_object(name: str, wrap: Any) -> None:
    assert usage_tuple(usage_from_response(wrap(fixture(name)))) == EXPECTED[name]


def test_litellm_object_with_usage_attributes_and_no_details() -> None:
    """LiteLLM ModelResponse: usage is an object; prompt_tokens_details may be None."""
    usage = SimpleNamespace(
        prompt_tokens=50, completion_tokens=7, total_tokens=57, prompt_tokens_details=None
    )
    response = SimpleNamespace(
        id="chatcmpl-x", object="chat.completion", model="gpt-4o-mini", usage=usage, choices=[]
    )
    assert usage_tuple(usage_from_response(response)) == ("gpt-4o-mini", 50, 7, 0, 0, "chatcmpl-x")


def test_attributes_are_read_without_dumping_the_whole_object() -> None:
    response = BrokenDump(
        id="msg_1",
        type="message",
        model="claude-3-haiku-20240307",
        usage=SimpleNamespace(input_tokens=10, output_tokens=2, cache_read_input_tokens=None),
    )
    assert usage_tuple(usage_from_response(response)) == (
        "claude-3-haiku-20240307",
        10,
        2,
        0,
        0,
        "msg_1",
    )


def test_an_object_with_neither_attributes_nor_a_working_dump() -> None:
    class Opaque:
        def model_dump(self) -> dict[str, Any]:
            raise RuntimeError("cannot serialise")

    with pytest.raises(ResponseParseError, match=r"not a response budgetctl can read \(an Opaque"):
        usage_from_response(Opaque())


def test_an_attribute_that_raises_is_named() -> None:
    class Exploding:
        model = "gpt-4o"

        @property
        def usage(self) -> Any:
            raise RuntimeError("connection closed")

    with pytest.raises(ResponseParseError, match=r"response\.usage could not be read"):
        usage_from_response(Exploding())


def test_streamed_final_chunk_with_usage() -> None:
    chunk = {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
    assert usage_tuple(usage_from_response(chunk)) == ("gpt-4o", 9, 12, 0, 0, "chatcmpl-abc")


def test_anthropic_without_cache_fields_and_without_type() -> None:
    response = {
        "model": "claude-3-haiku-20240307",
        "usage": {"input_tokens": 8, "output_tokens": 3},
    }
    assert usage_tuple(usage_from_response(response)) == (
        "claude-3-haiku-20240307",
        8,
        3,
        0,
        0,
        None,
    )


def test_response_usage_is_priced_end_to_end() -> None:
    costing = load_costing()
    usage = costing.usage_from_response(fixture("anthropic_messages_cache.json"))
    expected = (
        21 * Decimal("0.000003")
        + 1024 * Decimal("3E-7")
        + 188086 * Decimal("0.00000375")
        + 393 * Decimal("0.000015")
    )
    assert costing.cost(usage) == expected
    assert not usage.estimated


# --- Gemini, Bedrock, the model fallback ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BEDROCK))
@pytest.mark.parametrize(
    "wrap", [dict, json.dumps, to_namespace, Dumpable], ids=["dict", "text", "attrs", "dump"]
)
def test_bedrock_converse_takes_its_model_from_the_caller(name: str, wrap: Any) -> None:
    response = wrap(fixture(name))
    assert usage_tuple(usage_from_response(response, model=BEDROCK_MODEL)) == BEDROCK[name]


@pytest.mark.parametrize("name", sorted(BEDROCK))
def test_bedrock_converse_without_a_model_says_to_give_one(name: str) -> None:
    with pytest.raises(
        ResponseParseError, match=r"Bedrock Converse response names no model: give it with --model"
    ) as caught:
        usage_from_response(fixture(name))
    assert caught.value.exit_code == 2


def test_a_model_in_the_response_wins_over_the_fallback() -> None:
    response = fixture("openai_chat_cached.json")
    assert usage_from_response(response, model="gpt-4o-mini").model == "gpt-4o-2024-08-06"
    del response["model"]
    assert usage_from_response(response, model="gpt-4o").model == "gpt-4o"
    gemini = fixture("gemini_generate_content.json")
    del gemini["modelVersion"]
    assert usage_from_response(gemini, model="gemini-2.0-flash").model == "gemini-2.0-flash"
    with pytest.raises(ResponseParseError, match=r"response\.modelVersion is missing"):
        usage_from_response(gemini)


def test_gemini_sdk_objects_are_read_in_snake_case() -> None:
    """google-genai's GenerateContentResponse: attributes (and model_dump) are snake_case."""
    response = {
        "model_version": "gemini-2.5-pro",
        "response_id": "resp-1",
        "usage_metadata": {
            "prompt_token_count": 100,
            "cached_content_token_count": 40,
            "candidates_token_count": 7,
            "thoughts_token_count": 30,
            "tool_use_prompt_token_count": None,
            "total_token_count": 137,
        },
    }
    expected = ("gemini-2.5-pro", 100, 37, 40, 0, "resp-1")
    for wrap in (dict, to_namespace, Dumpable, ItemAccess):
        assert usage_tuple(usage_from_response(wrap(response))) == expected


def test_gemini_thoughts_are_priced_as_completion_tokens() -> None:
    costing = load_costing()
    usage = costing.usage_from_response(fixture("gemini_generate_content.json"))
    price = costing.price("gemini-2.5-flash")
    expected = (
        (4312 - 4096) * price.input_per_token
        + 4096 * (price.cache_read_per_token or price.input_per_token)
        + (214 + 876) * price.output_per_token
    )
    assert costing.cost(usage) == expected


def test_gemini_counts_left_out_are_zero() -> None:
    """Proto3 JSON leaves out zero counts: a blocked prompt has no candidatesTokenCount."""
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.0-flash",
    }
    assert usage_tuple(usage_from_response(blocked)) == ("gemini-2.0-flash", 9, 0, 0, 0, None)


@pytest.mark.parametrize("name", sorted(API_ERRORS))
def test_an_api_error_body_has_nothing_to_charge(name: str) -> None:
    with pytest.raises(ResponseParseError) as caught:
        usage_from_response(fixture(name), model="gpt-4o")
    message = str(caught.value)
    assert message.startswith(f"this is an API error ({API_ERRORS[name]}): nothing to charge")
    assert "the API said: " in message and len(message) < 300
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("response", "label"),
    [
        ({"error": "Unauthorized"}, "Unauthorized"),
        ({"error": {"message": "Invalid API key"}}, "no type given"),
        ({"error": {"type": "server_error", "code": "server_error"}}, "server_error"),
        ({"error": {"message": "Rate limited", "type": "None", "param": "None", "code": "429"}},
         "429"),
        ({"error": {"type": "invalid_request_error", "code": "context_length_exceeded"}},
         "invalid_request_error, context_length_exceeded"),
        ({"message": "The security token included in the request is invalid.",
          "__type": "com.amazon.coral.service#UnrecognizedClientException"},
         "UnrecognizedClientException"),
        ({"object": "response", "model": "gpt-4.1", "status": "failed", "usage": None,
          "error": {"code": "server_error", "message": "The model failed"}}, "server_error"),
    ],
)  # fmt: skip
def test_api_error_shapes(response: Any, label: str) -> None:
    with pytest.raises(ResponseParseError, match=re.escape(f"API error ({label}): nothing")):
        usage_from_response(response)


@pytest.mark.parametrize(
    ("response", "described"),
    [
        ({"choices": [], "created": 1}, "its fields: choices, created"),
        ({"data": [{"embedding": [0.1]}]}, "its fields: data"),
        ({f"k{i}": i for i in range(12)}, "its fields: k0, k1, k2, k3, k4, k5, k6, k7, ..."),
    ],
)
def test_an_unrecognised_shape_lists_the_shapes_understood(response: Any, described: str) -> None:
    with pytest.raises(ResponseParseError) as caught:
        usage_from_response(response)
    message = str(caught.value)
    assert f"not a response budgetctl can read ({described})" in message
    for shape in ("OpenAI", "Anthropic Messages", "LiteLLM", "Gemini", "Bedrock Converse"):
        assert shape in message


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (
            {"modelVersion": "gemini-2.5-flash", "usageMetadata": {"candidatesTokenCount": 3}},
            r"response\.usageMetadata\.promptTokenCount is missing",
        ),
        (
            {"modelVersion": "gemini-2.5-flash",
             "usageMetadata": {"promptTokenCount": 3, "cachedContentTokenCount": 4}},
            r"usageMetadata\.promptTokenCount \(3\) is less than its cached content \(4\)",
        ),
        (
            {"modelVersion": "gemini-2.5-flash",
             "usageMetadata": {"promptTokenCount": 3, "thoughtsTokenCount": -1}},
            r"usageMetadata\.thoughtsTokenCount must be between 0",
        ),
        (
            {"modelVersion": "gemini-2.5-flash",
             "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 10**9,
                               "thoughtsTokenCount": 10**9}},
            r"candidates and thoughts tokens add up to 2000000000",
        ),
        (
            {"modelVersion": 7, "usageMetadata": {"promptTokenCount": 3}},
            r"response\.modelVersion must be a string",
        ),
        (
            {"modelVersion": "gemini-2.5-flash", "usageMetadata": [3]},
            r"response\.usageMetadata must be an object, got list",
        ),
        (
            {"usage": {"inputTokens": 3}, "stopReason": "end_turn"},
            r"response\.usage\.outputTokens is missing",
        ),
        (
            {"usage": {"inputTokens": 3, "outputTokens": 1, "cacheWriteInputTokens": 1.5}},
            r"usage\.cacheWriteInputTokens must be a whole number",
        ),
        (
            {"usage": {"inputTokens": 3, "outputTokens": 1},
             "ResponseMetadata": {"RequestId": 5}},
            r"response\.ResponseMetadata\.RequestId must be a string",
        ),
    ],
)  # fmt: skip
def test_malformed_gemini_and_bedrock_name_the_field(response: Any, match: str) -> None:
    with pytest.raises(ResponseParseError, match=match):
        usage_from_response(response, model="m")


# --- malformed -----------------------------------------------------------------------------------


def chat(**usage: Any) -> dict[str, Any]:
    base = {"prompt_tokens": 10, "completion_tokens": 5}
    base.update(usage)
    return {"id": "c1", "object": "chat.completion", "model": "gpt-4o", "usage": base}


TRUNCATED = (FIXTURES / "openai_chat_cached.json").read_text()[:300]


@pytest.mark.parametrize(
    ("response", "match"),
    [
        ("not json at all", "not valid JSON: Expecting value at line 1 column 1"),
        (TRUNCATED, r"not valid JSON: .*truncated"),
        ('{"model": "gpt-4o", "usage": {"prompt_tokens": 3', r"truncated"),
        ("", "response is empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("[" * 100_000, "not valid JSON"),
        ("[]", "response must be an object, got list"),
        ("42", "response must be an object, got int"),
        (None, "response must be an object, got null"),
        ({}, r"not a response budgetctl can read \(an empty object\)"),
        ({"usage": {"prompt_tokens": 1, "completion_tokens": 1}}, r"response\.model is missing"),
        ({"model": "gpt-4o"}, r"response\.usage is missing"),
        ({"model": "gpt-4o", "usage": None}, r"response\.usage is missing"),
        ({"model": "gpt-4o", "usage": "lots"}, r"response\.usage must be an object, got str"),
        ({"model": "gpt-4o", "usage": {}}, r"response\.usage\.prompt_tokens is missing"),
        ({"model": 4, "usage": {}}, r"response\.model must be a string, got 4"),
        ({**chat(), "id": 123}, r"response\.id must be a string, got 123"),
        (chat(completion_tokens=None), r"response\.usage\.completion_tokens is missing"),
        (chat(prompt_tokens=-1), r"usage\.prompt_tokens must be between 0 and 1000000000, got -1"),
        (chat(prompt_tokens=10**9 + 1), r"usage\.prompt_tokens must be between 0 and 1000000000"),
        (
            chat(prompt_tokens=12.5),
            r"usage\.prompt_tokens must be a whole number of tokens, got 12.5",
        ),
        (chat(prompt_tokens=12.0), r"usage\.prompt_tokens must be a whole number of tokens"),
        (
            chat(prompt_tokens="12"),
            r"usage\.prompt_tokens must be a whole number of tokens, got '12'",
        ),
        (chat(completion_tokens=True), r"usage\.completion_tokens must be a whole number.*True"),
        (
            chat(prompt_tokens_details={"cached_tokens": 11}),
            r"usage\.prompt_tokens \(10\) is less than its cached \(11\)",
        ),
        (
            chat(prompt_tokens_details={"cached_tokens": "x"}),
            r"usage\.prompt_tokens_details\.cached_tokens must be a whole number",
        ),
        (
            chat(prompt_tokens_details=[1]),
            r"usage\.prompt_tokens_details must be an object, got list",
        ),
        (
            {"object": "response", "model": "gpt-4.1", "usage": {"input_tokens": 3}},
            r"response\.usage\.output_tokens is missing",
        ),
        (
            {
                "object": "response",
                "model": "gpt-4.1",
                "usage": {
                    "input_tokens": 3,
                    "output_tokens": 1,
                    "input_tokens_details": {"cached_tokens": 4},
                },
            },
            r"usage\.input_tokens \(3\) is less than its cached tokens \(4\)",
        ),
        (
            {"object": "response", "model": "gpt-4.1", "usage": None},
            r"response\.usage is missing",
        ),
        (
            {
                "type": "message",
                "model": "claude-3-5-sonnet-20240620",
                "usage": {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": -5},
            },
            r"usage\.cache_read_input_tokens must be between 0",
        ),
        (
            {
                "type": "message",
                "model": "claude-3-5-sonnet-20240620",
                "usage": {
                    "input_tokens": 10**9,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 10**9,
                },
            },
            r"add up to 2000000000",
        ),
        (
            {
                "type": "message",
                "model": "claude-3-5-sonnet-20240620",
                "usage": {"output_tokens": 1},
            },
            r"response\.usage\.input_tokens is missing",
        ),
    ],
)
def test_malformed_response_names_the_field(response: Any, match: str) -> None:
    with pytest.raises(ResponseParseError, match=match) as caught:
        usage_from_response(response)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (chat(prompt_tokens=10**5000), "got a number of more than 40 digits"),
        ({"error": {"code": 10**5000, "message": "x"}}, r"API error \(no type given\)"),
        ({10**5000: 1}, "its fields: a number of more than 40 digits"),
    ],
)
def test_huge_integers_are_refused_quickly(response: Any, match: str) -> None:
    """Python refuses to print an int of more than 4,300 digits: never let it try."""
    with pytest.raises(ResponseParseError, match=match):
        usage_from_response(response)


def test_embeddings_need_no_completion_tokens_but_chat_does() -> None:
    embedding = {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 4}}
    assert usage_from_response(embedding).completion_tokens == 0
    with pytest.raises(ResponseParseError, match="completion_tokens is missing"):
        usage_from_response({**embedding, "object": "chat.completion"})


# --- fuzz: nothing but ResponseParseError, whatever comes in --------------------------------------

KEYS = [
    "id", "model", "object", "type", "usage", "prompt_tokens", "completion_tokens", "input_tokens",
    "output_tokens", "prompt_tokens_details", "input_tokens_details", "cached_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation_tokens",
    "error", "message", "code", "status", "__type", "usageMetadata", "usage_metadata",
    "modelVersion", "responseId", "promptTokenCount", "candidatesTokenCount",
    "cachedContentTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount", "inputTokens",
    "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens", "ResponseMetadata",
    "RequestId",
]  # fmt: skip
TAGS = ["response", "message", "chat.completion", "list", "chat.completion.chunk", "error"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(TAGS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=25,
)


def check_usage(usage: Usage) -> None:
    assert isinstance(usage.model, str) and usage.model
    assert 0 <= usage.cached_tokens + usage.cache_creation_tokens <= usage.prompt_tokens
    cost_of(Price("m", Decimal(1), Decimal(1)), usage)  # a parsed usage is always costable


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=json_values)
def test_fuzz_dicts_only_raise_response_parse_error(response: Any) -> None:
    with contextlib.suppress(ResponseParseError):
        check_usage(usage_from_response(response))
    with contextlib.suppress(ResponseParseError):
        check_usage(usage_from_response(response, model="fallback-model"))


@settings(max_examples=300, deadline=None)
@given(response=json_values.map(json.dumps) | st.text() | st.binary())
def test_fuzz_text_only_raises_response_parse_error(response: str | bytes) -> None:
    with contextlib.suppress(ResponseParseError):
        check_usage(usage_from_response(response))


@settings(max_examples=200, deadline=None)
@given(
    model=st.text(min_size=1, max_size=20),
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**6),
    cached=st.integers(0, 10**6),
)
def test_well_formed_chat_round_trips(
    model: str, prompt: int, completion: int, cached: int
) -> None:
    cached = min(cached, prompt)
    response = {
        "model": model,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }
    usage = usage_from_response(json.dumps(response))
    assert usage_tuple(usage) == (model, prompt, completion, cached, 0, None)
