"""Bad input on every command: a clear one-line error, the documented exit code, and the state
files byte-for-byte unchanged. A corrupt state file fails every command that reads it (exit 1)
and is never rewritten; a data dir that is not a directory is an error too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import RESPONSES, digest, fails

pytest_plugins = ["helpers.cli"]
pytestmark = pytest.mark.usefixtures("cli_env", "frozen")

CHAT = (RESPONSES / "openai_chat_cached.json").read_text()
TOKENS = ("-m", "gpt-4o", "--prompt-tokens", "10", "--completion-tokens", "5")
ONE = ("--completion-tokens", "1")  # with --prompt-tokens N: a token form short of a model
PRICED = ("-m", "gpt-4o", *ONE)

BAD_INPUT = [
    # create
    (("create", "bob", "-b", "-1", "--duration", "none"), 2, "must not be negative"),
    (("create", "bob", "-b", "NaN", "--duration", "none"), 2, "finite"),
    (("create", "bob", "-b", "inf", "--duration", "none"), 2, "finite"),
    (("create", "bob", "-b", "ten", "--duration", "none"), 2, "not a number"),
    (("create", "bob", "-b", "1", "-d", "fortnightly"), 2, "unknown duration 'fortnightly'"),
    (("create", "bob", "-b", "1", "-d", "0d"), 2, "unknown duration"),
    (("create", "bob", "-b", "1", "-d", "none", "--tz", "Mars/Olympus"), 2, "unknown time zone"),
    (("create", "bob", "-b", "1", "-d", "none", "--start", "last tuesday"), 2, "cannot read time"),
    (("create", "bob", "-b", "1", "--duration", "none", "--alert-at", "0"), 2, "alert threshold"),
    (("create", "", "-b", "1", "--duration", "none"), 2, "a user must be a non-empty string"),
    (("create", "bob", "-b", "1", "--duration", "none", "-p", "../etc"), 2, "invalid project name"),
    (("create", "bob", "-b", "1", "--duration", "none", "-p", "a/b"), 2, "invalid project name"),
    (("create", "bob", "-b", "1", "--duration", "none", "-p", ".."), 2, "invalid project name"),
    (("create", "bob"), 2, "Missing option '--budget'"),
    (("create", "bob", "-b", "1", "--duration", "none", "--bogus"), 2, "No such option: --bogus"),
    # set
    (("set", "alice", "-b", "-0.01"), 2, "must not be negative"),
    (("set", "alice", "-b", "nan"), 2, "finite"),
    (("set", "alice", "-b", "1e400"), 2, "too large"),
    (("set", "alice", "-d", "2x"), 2, "unknown duration"),
    (("set", "alice", "--tz", "Nowhere/City"), 2, "unknown time zone"),
    (("set", "zed", "-b", "1"), 4, "no budget for user 'zed'"),
    (("set", "alice", "-b", "1", "-p", "x/../default"), 2, "invalid project name"),
    # show
    (("show", "zed"), 4, "no budget for user 'zed'"),
    (("show", "-p", "nope"), 4, "no project 'nope'"),
    (("show", "-p", "../default"), 2, "invalid project name"),
    # update-cost
    (("update-cost", "alice", "--cost", "-1"), 2, "must not be negative"),
    (("update-cost", "alice", "--cost", "NaN"), 2, "finite"),
    (("update-cost", "alice", "--cost", "-inf"), 2, "finite"),
    (("update-cost", "alice", "--cost", "1,5"), 2, "not a number"),
    (("update-cost", "alice", *PRICED, "--prompt-tokens", "-1"), 2, "prompt tokens must be"),
    (("update-cost", "alice", *PRICED, "--prompt-tokens", "ten"), 2, "is not a valid int"),
    (("update-cost", "alice", *PRICED, "--prompt-tokens", str(10**12)), 2, "between 0 and"),
    (("update-cost", "alice", "-m", "nope-model", *ONE, "--prompt-tokens", "1"), 4, "no price"),
    (("update-cost", "zed", *TOKENS), 4, "no budget for user 'zed'"),
    (("update-cost", "zed", "--cost", "1"), 4, "no budget for user 'zed'"),
    (("update-cost", "alice", "--cost", "1", "-p", "nope"), 4, "no project 'nope'"),
    (("update-cost", "alice", "--cost", "1", "-p", "a/b"), 2, "invalid project name"),
    (("update-cost", "alice", "--cost", "1", "--request-id", " "), 2, "request id"),
    (("update-cost", "alice", "-r", "/nonexistent/response.json"), 2, "cannot read the response"),
    # check
    (("check", "zed", "-m", "gpt-4o", "--prompt", "hi"), 4, "no budget for user 'zed'"),
    (("check", "alice", "-m", "no-such-model-q", "--prompt", "hi"), 4, "no price for model"),
    (("check", "alice", "-m", "gpt-4o", "--max-tokens", "lots"), 2, "is not a valid int"),
    (("check", "alice", "-m", "gpt-4o", "--prompt", "x", "-p", "../x"), 2, "invalid project"),
    (("check", "alice", "-m", "gpt-4o", "--messages", "/nonexistent.json"), 2, "cannot read the"),
    # reset, reset-due
    (("reset", "zed"), 4, "no budget for user 'zed'"),
    (("reset", "alice", "zed"), 4, "no budget for user 'zed'"),
    (("reset", "--all", "-p", "nope"), 4, "no project 'nope'"),
    (("reset-due", "--now", "soon"), 2, "cannot read time"),
    (("reset-due", "--now", "2026-13-01"), 2, "cannot read time"),
    (("reset-due", "-p", "nope"), 4, "no project 'nope'"),
    (("reset-due", "-p", "a/b"), 2, "invalid project name"),
    # delete, history
    (("delete", "zed", "--yes"), 4, "no budget for user 'zed'"),
    (("delete", "alice", "--yes", "-p", ".hidden"), 2, "invalid project name"),
    (("history", "zed"), 4, "no budget for user 'zed'"),
    (("history", "alice", "--limit", "many"), 2, "is not a valid int"),
    (("history", "alice", "--limit", "-3"), 2, "--limit must be at least 1"),
    # cap
    (("cap", "-b", "-5"), 2, "must not be negative"),
    (("cap", "-b", "NaN"), 2, "finite"),
    (("cap", "-b", "infinity"), 2, "finite"),
    (("cap", "-b", "lots"), 2, "not a number"),
    (("cap", "-b", "5", "-d", "quarterly"), 2, "unknown duration"),
    (("cap", "-b", "5", "--tz", "Atlantis/Capital"), 2, "unknown time zone"),
    (("cap", "-d", "daily"), 2, "there is no project cap yet"),
    # models, price
    (("models", "gpt-4o", "--prices", "/nonexistent/prices.json"), 2, "does not exist"),
    (("models", "no-such-model-q"), 4, "no model name contains"),
    (("price", "set", "m", "--input", "-1", "--output", "1"), 2, "must not be negative"),
    (("price", "set", "m", "--input", "1", "--output", "NaN"), 2, "finite"),
    (("price", "set", "m", "--input", "inf", "--output", "1"), 2, "finite"),
    (("price", "set", "m", "--input", "cheap", "--output", "1"), 2, "not a number"),
    (("price", "remove", "never-priced"), 4, "no price for model 'never-priced'"),
    (("price", "set", "m", "--input", "1", "--output", "1", "-p", "a/b"), 2, "invalid project"),
    # import-litellm, projects
    (("import-litellm", "/nonexistent/user_cost.json"), 2, "cannot read"),
    (("import-litellm", "x.json", "-p", "../up"), 2, "invalid project name"),
    (("projects", "--bogus"), 2, "No such option"),
]  # fmt: skip

RESPONSES_BAD = [
    ("{not json", "not valid JSON"),
    (CHAT[: len(CHAT) // 2], "truncated"),
    ('{"id": "x", "model": "gpt-4o"}', "usage is missing"),
    ('{"id": "x", "model": "gpt-4o", "usage": {"prompt_tokens": -3, "completion_tokens": 1}}', ""),
    ("[]", ""),
    ("", "empty"),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUT, ids=lambda v: None)
def test_bad_input_changes_nothing(
    alice: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    before = digest(alice.parent)
    error = fails(code, *args)
    assert message in error
    assert error.count("\n") == 1  # one line
    assert digest(alice.parent) == before


@pytest.mark.parametrize(("response", "message"), RESPONSES_BAD)
def test_malformed_responses_are_usage_errors(alice: Path, response: str, message: str) -> None:
    before = digest(alice.parent)
    assert message in fails(2, "update-cost", "alice", "--response", "-", input=response)
    assert digest(alice.parent) == before


# --- a corrupt state file ----------------------------------------------------------------------

READS_STATE = [
    ("create", "bob", "-b", "1", "--duration", "none"),
    ("create", "bob", "-b", "1", "--duration", "none", "--dry-run"),
    ("set", "alice", "-b", "5"),
    ("show",),
    ("show", "alice"),
    ("update-cost", "alice", "--cost", "1"),
    ("update-cost", "alice", *TOKENS),
    ("update-cost", "alice", "--cost", "1", "--dry-run"),
    ("check", "alice", "-m", "gpt-4o", "--prompt", "hi"),
    ("reset", "alice"),
    ("reset", "--all", "--yes"),
    ("reset-due",),
    ("reset-due", "--all-projects"),
    ("delete", "alice", "--yes"),
    ("history", "alice"),
    ("cap",),
    ("cap", "-b", "5"),
    ("cap", "--clear"),
    ("import-litellm", str(Path(__file__).parent / "fixtures" / "cli" / "litellm_user_cost.json")),
]
CORRUPTIONS = {
    "truncated": lambda good: good[: len(good) // 2],
    "not-json": lambda good: b"\x00\x01 this is not json",
    "empty": lambda good: b"",
    "wrong-shape": lambda good: b'{"format": "budgetctl-state", "version": 1, "users": []}',
    "future": lambda good: re.sub(rb'"version":\d+', b'"version":99', good, count=1),
}


@pytest.mark.parametrize("args", READS_STATE, ids=" ".join)
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_state_file_fails_every_command(
    alice: Path, args: tuple[str, ...], kind: str
) -> None:
    corrupt = CORRUPTIONS[kind](alice.read_bytes())
    assert corrupt != alice.read_bytes()
    alice.write_bytes(corrupt)
    before = digest(alice.parent)
    error = fails(1, *args)
    assert str(alice) in error
    assert digest(alice.parent) == before


# --- a data dir that cannot be used ------------------------------------------------------------

EVERY_COMMAND = [
    ("create", "a", "-b", "1", "--duration", "none"),
    ("set", "a", "-b", "2"),
    ("show",),
    ("show", "a"),
    ("update-cost", "a", "--cost", "1"),
    ("check", "a", "-m", "gpt-4o", "--prompt", "x"),
    ("reset", "a"),
    ("reset-due",),
    ("reset-due", "--all-projects"),
    ("cap",),
    ("cap", "-b", "1"),
    ("delete", "a", "--yes"),
    ("history", "a"),
    ("models", "gpt-4o"),
    ("projects",),
    ("price", "set", "m", "--input", "1", "--output", "1"),
    ("import-litellm", str(Path(__file__).parent / "fixtures" / "cli" / "litellm_user_cost.json")),
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=" ".join)
def test_a_data_dir_that_is_a_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("I am a file")
    error = fails(1, *args, "--data-dir", str(not_a_dir))
    assert str(not_a_dir) in error
    assert not_a_dir.read_text() == "I am a file"


def _without_root_powers(*args: str) -> subprocess.CompletedProcess[str]:
    """The budgetctl entry point in a process that file permissions bind: as root (CI runs as
    root), with the capabilities that read through them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
    dropped from its bounding set by util-linux's setpriv."""
    argv = [str(Path(sys.executable).parent / "budgetctl"), *args]
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_an_unreadable_data_dir(alice: Path) -> None:
    folder = alice.parent
    before = digest(folder)
    folder.chmod(0)
    try:
        shown = _without_root_powers("show")
        assert shown.returncode == 1 and str(folder) in shown.stderr, shown
        charged = _without_root_powers("update-cost", "alice", "--cost", "1")
        assert charged.returncode == 1 and "Traceback" not in charged.stderr, charged
    finally:
        folder.chmod(0o700)
    assert digest(folder) == before


# --- near misses: the value meant, as git suggests a command ----------------------------------

NEAR_MISSES = [
    (
        ("check", "alice", "-m", "GPT-4o", "--prompt", "hi"),
        4,
        "(did you mean 'gpt-4o'? model names are case-sensitive)",
    ),
    (("update-cost", "alice", "-m", "gpt4o", "--prompt-tokens", "1"), 4, "closest known: gpt-4o,"),
    (
        ("create", "bob", "-b", "1", "-d", "daily", "--tz", "europe/paris"),
        2,
        "(did you mean 'Europe/Paris'?)",
    ),
    (
        ("create", "bob", "-b", "1", "-d", "daily", "--tz", "Paris"),
        2,
        "(did you mean 'Europe/Paris'?)",
    ),
    (("set", "alice", "--tz", "new york"), 2, "(did you mean 'America/New_York'?)"),
    (("create", "bob", "-b", "1", "-d", "month"), 2, "(did you mean 'monthly'?)"),
    (("create", "bob", "-b", "1", "-d", "3 months"), 2, "(did you mean '3mo'?)"),
    (("cap", "-b", "5", "-d", "wekly"), 2, "(did you mean 'weekly'?)"),
    (("show", "Alice"), 4, "(did you mean 'alice'?)"),
    (("update-cost", "alicee", "--cost", "1"), 4, "(did you mean 'alice'?)"),
    (("delete", "ALICE", "--yes"), 4, "(did you mean 'alice'?)"),
    (("reset", "alic"), 4, "(did you mean 'alice'?)"),
]


@pytest.mark.parametrize(("args", "code", "hint"), NEAR_MISSES)
def test_near_misses_suggest_the_value_meant(
    alice: Path, args: tuple[str, ...], code: int, hint: str
) -> None:
    before = digest(alice.parent)
    assert hint in fails(code, *args)
    assert digest(alice.parent) == before


def test_an_unknown_model_names_price_set(alice: Path) -> None:
    message = fails(4, "update-cost", "alice", "-m", "my-llama", "--prompt-tokens", "1")
    assert "'budgetctl price set my-llama --input USD --output USD'" in message


def test_no_suggestion_when_nothing_is_close(alice: Path) -> None:
    assert "did you mean" not in fails(4, "show", "zed")
    assert "did you mean" not in fails(2, "create", "bob", "-b", "1", "--tz", "Mars/Olympus")
