"""Token counts: bundled encodings equal tiktoken's own, message rules, encoding choice, safety."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.model
import tiktoken_ext.openai_public as openai_public  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetctl.costing import encoding_for_model, get_encoding, load_costing
from budgetctl.costing.encodings import (
    DATA_DIR,
    RANK_FILES,
    SPECS,
    build_encoding,
    encoding_name_for,
    load_ranks,
)
from budgetctl.costing.tokens import message_tokens
from budgetctl.errors import StateError, UsageError

CORPUS = [
    "",
    "hello world",
    "Hello, World! How's it going? I'd say we'll be fine, they're sure.",
    "The quick brown fox jumps over the lazy dog. " * 20,
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\tfib(30)",
    '{"model": "gpt-4o", "usage": {"prompt_tokens": 1117, "cached_tokens": 1024}}',
    "SELECT id, SUM(cost) FROM charges WHERE user = 'alice@example.com' GROUP BY id;",
    "日本語のテキストを数えます。漢字、ひらがな、カタカナ。",
    "中文分词测试：预算控制工具。",  # noqa: RUF001 - full-width punctuation on purpose
    "한국어 문장도 셉니다.",
    "مرحبا بالعالم",
    "Ελληνικά και кириллица вместе",
    "emoji 🎉🚀👍🏽 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "text with <|endoftext|> inside, and <|endofprompt|> and <|fim_prefix|> too",
    "<|endoftext|>",
    "numbers 1234567890 3.14159 -42 1e-06 0x1F",
    "   leading and trailing spaces   \n\n\r\n\t multiple\r\nline\nendings  ",
    "e\u0301 combining marks a\u0308o\u0308u\u0308",
    "a" * 5000,
    "lone surrogate \ud800 here",
]
HELLO_WORLD = {
    "o200k_base": [24912, 2375],
    "cl100k_base": [15339, 1917],
    "p50k_base": [31373, 995],
    "r50k_base": [31373, 995],
}


# --- a reference built independently, the way tiktoken itself builds it --------------------------


class Reference:
    """tiktoken's own definition of an encoding, with its rank file read from our bundle."""

    def __init__(self, name: str, cache_dir: Path) -> None:
        self.calls: list[tuple[str, str | None]] = []

        def local_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
            self.calls.append((url, expected_hash))
            bundled = DATA_DIR / url.rsplit("/", 1)[-1]
            return tiktoken.load.load_tiktoken_bpe(str(bundled), expected_hash=expected_hash)

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))  # never the shared tmp cache
            patch.setattr(openai_public, "load_tiktoken_bpe", local_bpe)
            self.definition: dict[str, Any] = openai_public.ENCODING_CONSTRUCTORS[name]()
        self.encoding = tiktoken.Encoding(**self.definition)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Reference]]:
    cache_dir = tmp_path_factory.mktemp("reference-tiktoken-cache")
    built: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in built:
            built[name] = Reference(name, cache_dir)
        return built[name]

    yield get


# --- the definitions match tiktoken's ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_definition_matches_tiktoken_openai_public(
    name: str, reference: Callable[[str], Reference]
) -> None:
    """A tiktoken upgrade that changes a pattern, special token or hash fails here."""
    spec, ref = SPECS[name], reference(name)
    assert ref.definition["name"] == name
    assert spec.pat_str == ref.definition["pat_str"]
    assert dict(spec.special_tokens) == ref.definition["special_tokens"]
    assert spec.explicit_n_vocab == ref.definition.get("explicit_n_vocab")
    [(url, expected_hash)] = ref.calls
    assert url.rsplit("/", 1)[-1] == spec.ranks.name
    assert expected_hash == spec.ranks.sha256


def test_every_encoding_of_tiktokens_model_table_is_bundled_or_a_known_exception() -> None:
    """A new encoding in tiktoken's model table must be bundled (or knowingly left out)."""
    named = set(tiktoken.model.MODEL_TO_ENCODING.values())
    named |= set(tiktoken.model.MODEL_PREFIX_TO_ENCODING.values())
    assert named - set(SPECS) == {"gpt2"}  # gpt2's data-gym files are not bundled: estimated


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bundled_encoding_equals_tiktokens(
    name: str, reference: Callable[[str], Reference]
) -> None:
    ours, ref = get_encoding(name), reference(name).encoding
    assert ours.name == ref.name
    assert ours._mergeable_ranks == ref._mergeable_ranks
    assert ours._special_tokens == ref._special_tokens
    assert ours.n_vocab == ref.n_vocab
    for text in CORPUS:
        assert ours.encode_ordinary(text) == ref.encode_ordinary(text), text


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_counts_equal_tiktokens_for_any_text(
    name: str, text: str, reference: Callable[[str], Reference]
) -> None:
    assert get_encoding(name).encode_ordinary(text) == reference(name).encoding.encode_ordinary(
        text
    )


@pytest.mark.parametrize(("name", "tokens"), sorted(HELLO_WORLD.items()))
def test_hello_world(name: str, tokens: list[int]) -> None:
    assert get_encoding(name).encode("hello world") == tokens


@pytest.mark.parametrize("rank_file", RANK_FILES, ids=lambda rank_file: rank_file.name)
def test_sequential_flag_is_true_to_the_file(rank_file: Any) -> None:
    ranks = list(load_ranks(rank_file).values())
    assert (ranks == list(range(len(ranks)))) is rank_file.sequential


def test_encodings_are_built_once_per_process() -> None:
    assert get_encoding("cl100k_base") is get_encoding("cl100k_base")


def test_unknown_encoding_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown encoding 'gpt9_base'.*o200k_base"):
        get_encoding("gpt9_base")


# --- tampering -----------------------------------------------------------------------------------


def test_a_tampered_rank_file_is_refused(tmp_path: Path) -> None:
    spec = SPECS["r50k_base"]
    copy = tmp_path / spec.ranks.name
    shutil.copyfile(DATA_DIR / spec.ranks.name, copy)
    data = bytearray(copy.read_bytes())
    data[100] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(StateError) as caught:
        build_encoding("r50k_base", data_dir=tmp_path)
    message = str(caught.value)
    assert str(copy) in message
    assert "sha256" in message and spec.ranks.sha256 in message
    assert "reinstall budgetctl" in message
    assert caught.value.exit_code == 1


def test_a_missing_rank_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"o200k_base\.tiktoken: cannot read the tokenizer file"):
        build_encoding("o200k_base", data_dir=tmp_path)


def test_the_untampered_copy_loads(tmp_path: Path) -> None:
    shutil.copyfile(DATA_DIR / "r50k_base.tiktoken", tmp_path / "r50k_base.tiktoken")
    assert build_encoding("r50k_base", data_dir=tmp_path).encode("hello world") == [31373, 995]


# --- which encoding a model gets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding", "estimated"),
    [
        ("gpt-4o", "o200k_base", False),
        ("gpt-4o-mini", "o200k_base", False),
        ("gpt-4o-2024-08-06", "o200k_base", False),
        ("gpt-4.1", "o200k_base", False),
        ("o1", "o200k_base", False),
        ("o3-mini", "o200k_base", False),
        ("gpt-5", "o200k_base", False),
        ("gpt-5-mini", "o200k_base", False),
        ("gpt-4", "cl100k_base", False),
        ("gpt-4-0613", "cl100k_base", False),
        ("gpt-3.5-turbo", "cl100k_base", False),
        ("text-embedding-3-small", "cl100k_base", False),
        ("text-davinci-003", "p50k_base", False),
        ("text-davinci-edit-001", "p50k_edit", False),
        ("davinci", "r50k_base", False),
        ("gpt-oss-120b", "o200k_harmony", False),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base", False),
        ("openai/gpt-4o", "o200k_base", False),
        ("azure/gpt-35-turbo", "cl100k_base", False),
        ("openrouter/openai/gpt-4", "cl100k_base", False),
        ("claude-3-5-sonnet-20240620", "o200k_base", True),
        ("anthropic/claude-3-5-sonnet-20240620", "o200k_base", True),
        ("gemini-1.5-pro", "o200k_base", True),
        ("my-private-model", "o200k_base", True),
        ("gpt2", "o200k_base", True),
        ("", "o200k_base", True),
    ],
)
def test_encoding_choice(model: str, encoding: str, estimated: bool) -> None:
    assert encoding_name_for(model) == (encoding, estimated)


@pytest.mark.parametrize("model", sorted(tiktoken.model.MODEL_TO_ENCODING))
def test_encoding_choice_follows_tiktokens_table(model: str) -> None:
    name = tiktoken.model.encoding_name_for_model(model)
    assert encoding_name_for(model) == ((name, False) if name in SPECS else ("o200k_base", True))


def test_encoding_for_model_returns_the_encoding_and_the_estimate_flag() -> None:
    encoding, estimated = encoding_for_model("gpt-4")
    assert (encoding.name, estimated) == ("cl100k_base", False)
    encoding, estimated = encoding_for_model("claude-3-opus-20240229")
    assert (encoding.name, estimated) == ("o200k_base", True)


# --- plain text ----------------------------------------------------------------------------------


def test_count_text_is_plain_text_with_no_framing(reference: Callable[[str], Reference]) -> None:
    costing = load_costing()
    for text in CORPUS:
        expected = len(reference("o200k_base").encoding.encode_ordinary(text))
        count = costing.count_text("gpt-4o", text)
        assert (count.tokens, count.encoding, count.estimated) == (expected, "o200k_base", False)


def test_text_with_special_token_strings_counts_and_does_not_raise() -> None:
    count = load_costing().count_text("gpt-4", "before <|endoftext|> after")
    encoding = get_encoding("cl100k_base")
    assert count.tokens == len(encoding.encode_ordinary("before <|endoftext|> after"))
    assert count.tokens > 3  # the special-token string is spelled out, not one special token


def test_non_openai_model_count_is_marked_estimate() -> None:
    count = load_costing().count_text("claude-3-5-sonnet-20240620", "hello world")
    assert (count.tokens, count.encoding, count.estimated) == (2, "o200k_base", True)


def test_count_text_refuses_non_text() -> None:
    with pytest.raises(UsageError, match="must be a string, got bytes"):
        load_costing().count_text("gpt-4o", b"hello")  # type: ignore[arg-type]


# --- chat messages -------------------------------------------------------------------------------

# OpenAI cookbook, "How to count tokens with tiktoken", num_tokens_from_messages example.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "tokens"),
    [("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_cookbook_example(model: str, tokens: int) -> None:
    """The numbers the cookbook prints (and says the API reported) for this prompt."""
    assert load_costing().count_messages(model, COOKBOOK_MESSAGES).tokens == tokens


def test_messages_by_hand(reference: Callable[[str], Reference]) -> None:
    encoding = reference("o200k_base").encoding

    def n(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "alice", "content": "Price of 1M tokens?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
    ]
    expected = (
        (3 + n("system") + n("You are terse."))
        + (3 + n("user") + n("alice") + 1 + n("Price of 1M tokens?"))
        + (3 + n("assistant"))  # None content and tool_calls carry no text
        + 3
    )
    count = load_costing().count_messages("gpt-4o", messages)
    assert (count.tokens, count.encoding, count.estimated) == (expected, "o200k_base", False)


def test_list_content_counts_text_parts_only(reference: Callable[[str], Reference]) -> None:
    encoding = reference("cl100k_base").encoding

    def n(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    content = [
        {"type": "text", "text": "Describe this image"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "input_text", "text": "in one line <|endoftext|>"},
        "a bare string part",
    ]
    expected = 3 + n("user") + n("Describe this image") + n("in one line <|endoftext|>")
    expected += n("a bare string part") + 3
    assert message_tokens(get_encoding("cl100k_base"), [{"role": "user", "content": content}]) == (
        expected
    )


def test_no_messages_is_the_reply_priming_only() -> None:
    assert load_costing().count_messages("gpt-4o", []).tokens == 3


def test_messages_of_a_non_openai_model_are_an_estimate() -> None:
    count = load_costing().count_messages("claude-3-haiku-20240307", [{"role": "user"}])
    assert count.estimated and count.encoding == "o200k_base"


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("hello", "must be a list of message objects, got str"),
        ({"role": "user"}, "must be a list of message objects, got dict"),
        ([{"role": "user"}, "hi"], "message 1 must be an object"),
    ],
)
def test_malformed_messages_are_usage_errors(messages: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        load_costing().count_messages("gpt-4o", messages)


# --- import cost: nothing heavy until asked ------------------------------------------------------

LAZY_PROBE = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network used")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from budgetctl.costing import load_costing
from budgetctl.costing import bundled
costing = load_costing()
assert "tiktoken" not in sys.modules, "imported tiktoken before counting"
assert bundled.bundled_table.cache_info().currsize == 0, "read the price table before a price"
costing.price("gpt-4o")
assert bundled.bundled_table.cache_info().currsize == 1
assert "tiktoken" not in sys.modules, "imported tiktoken for a price"
print(costing.count_text("gpt-4o", "hello world").tokens)
assert "tiktoken" in sys.modules
"""


def test_tiktoken_and_prices_load_only_when_asked_and_offline() -> None:
    """A fresh process, with an empty tiktoken cache and no network, counts from the bundle."""
    result = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
