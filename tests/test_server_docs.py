"""docs/server.md's curl examples, run as they are written against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.server import allow_loopback, running

pytest.importorskip("uvicorn")
DOC = Path(__file__).resolve().parent.parent / "docs" / "server.md"
TOKEN = "docs-token-0123456789abcdef"


def curl_commands() -> list[str]:
    """Every curl command of the doc's ``sh`` blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S):
        text = block.replace("\\\n", " ")
        commands += [line.strip() for line in text.splitlines() if line.startswith("curl ")]
    return commands


def test_the_doc_has_curl_examples_of_both_protocols() -> None:
    commands = curl_commands()
    assert any("/v1/" in c for c in commands)
    assert any("/get_budget" in c for c in commands) and any("/set_budget" in c for c in commands)


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this host")
def test_every_curl_example_runs(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_loopback(monkeypatch)
    with running(data_dir, token=TOKEN) as server:
        port = server.url.rsplit(":", 1)[1]
        for command in curl_commands():
            command = command.replace("127.0.0.1:8787", f"127.0.0.1:{port}")
            done = subprocess.run(
                ["bash", "-c", command],
                capture_output=True,
                env={**os.environ, "TOKEN": TOKEN},
                timeout=30,
            )
            assert done.returncode == 0, (command, done.stderr)
            answer = json.loads(done.stdout)
            assert "error" not in answer and answer.get("status") != "error", (command, answer)
