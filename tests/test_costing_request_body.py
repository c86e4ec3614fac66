"""Chat requests read from a request body or a list of messages (what `check --messages` reads)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from budgetctl import Ledger
from budgetctl.costing.request_body import ChatRequest, parse_chat_request
from budgetctl.errors import UsageError

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_a_list_of_messages() -> None:
    assert parse_chat_request(json.dumps(MESSAGES)) == ChatRequest(MESSAGES, None, None)
    assert parse_chat_request(MESSAGES) == ChatRequest(MESSAGES, None, None)  # already decoded
    assert parse_chat_request(tuple(MESSAGES)).messages == MESSAGES
    assert parse_chat_request(b"[]") == ChatRequest([], None, None)


def test_a_request_body() -> None:
    body = {"model": "gpt-4o", "max_tokens": 200, "messages": MESSAGES, "temperature": 0}
    expected = ChatRequest(MESSAGES, "gpt-4o", 200)
    assert parse_chat_request(json.dumps(body)) == expected
    assert parse_chat_request(json.dumps(body).encode("utf-8")) == expected
    assert parse_chat_request(body) == expected


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_completion_tokens": 10, "max_tokens": 20, "max_output_tokens": 30}, 10),
        ({"max_tokens": 20, "max_output_tokens": 30}, 20),
        ({"max_output_tokens": 30}, 30),  # the Responses API's name
        ({"max_completion_tokens": "10", "max_tokens": 20}, 20),  # not a whole number: skipped
        ({"max_tokens": True}, None),  # a bool is no token count
        ({"max_tokens": 2.5}, None),
        ({"max_tokens": 0}, 0),
        ({}, None),
    ],
)
def test_the_completion_limit(limits: dict[str, Any], expected: int | None) -> None:
    assert parse_chat_request({"messages": [], **limits}).max_tokens == expected


@pytest.mark.parametrize("model", [None, 42, ["gpt-4o"], {"name": "gpt-4o"}])
def test_a_model_that_is_not_a_string_is_absent(model: Any) -> None:
    assert parse_chat_request({"model": model, "messages": []}).model is None


@pytest.mark.parametrize(
    "document",
    [
        '{"messages": "hi"}',
        '{"model": "gpt-4o"}',  # a body without messages
        '"hi"',
        "42",
        "null",
        '[{"role": "user"}, "hi"]',
        '[["user", "hi"]]',
    ],
)
def test_not_a_chat_request(document: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_chat_request(document)
    assert raised.value.message == (
        "expected a JSON list of chat messages, or a request body with 'messages'"
    )
    with pytest.raises(UsageError, match=r"^--messages expects a JSON list of chat messages"):
        parse_chat_request(document, option="--messages")


@pytest.mark.parametrize("document", ["[{", "", b"\xff", "[" * 100_000])
def test_not_json(document: str | bytes) -> None:
    with pytest.raises(UsageError, match=r"^the messages are not valid JSON \("):
        parse_chat_request(document)


def test_what_it_reads_prices_a_check(data_dir: object) -> None:
    ledger = Ledger("team")
    ledger.create("alice", "10", duration="monthly")
    body = {"model": "gpt-4o", "max_completion_tokens": 100, "messages": MESSAGES}
    request = parse_chat_request(json.dumps(body))
    assert request.model is not None
    checked = ledger.check(
        "alice", request.model, messages=request.messages, max_tokens=request.max_tokens or 0
    )
    same = ledger.check("alice", "gpt-4o", messages=MESSAGES, max_tokens=100)
    assert checked == same and checked.max_tokens == 100
