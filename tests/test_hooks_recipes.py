"""The hook recipes of docs/cli.md, run end to end as written, with local stand-ins: an HTTP
server for the Slack webhook, a ``mail`` script for the mailer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
BIN = Path(sys.executable).parent


def recipe(heading: str) -> str:
    text = DOC.read_text()
    section = text.split(f"## Recipe: {heading}\n", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, heading
    return found.group(1)


def run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def wait_for(path: Path, lines: int, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    got = tmp_path / "posted.jsonl"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with got.open("ab") as out:
                out.write(body.strip() + b"\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/x", got
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="needs jq and curl")
def test_the_slack_recipe_posts_one_message_per_crossing(
    env: dict[str, str], webhook: tuple[str, Path], tmp_path: Path
) -> None:
    url, got = webhook
    done = run(recipe("alerts in a Slack channel"), {**env, "SLACK_WEBHOOK_URL": url}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning: alice crossed") == 2
    texts = sorted(json.loads(line)["text"] for line in wait_for(got, 2))
    assert texts == [
        "budgetctl default: alice crossed 50%, 41 of 50 spent",
        "budgetctl default: alice crossed 80%, 41 of 50 spent",
    ]


def test_the_mail_recipe_mails_the_event(env: dict[str, str], tmp_path: Path) -> None:
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    outbox = tmp_path / "mails.txt"
    mail = stand_in / "mail"
    mail.write_text(f'#!/bin/sh\n{{ printf "%s|" "$@"; cat; }} >> {outbox}\n')
    mail.chmod(0o755)
    env = {**env, "PATH": f"{stand_in}{os.pathsep}{env['PATH']}"}
    done = run(recipe("alerts by mail"), env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: bob crossed 80%" in done.stderr
    lines = wait_for(outbox, 1)
    assert lines and lines[0].startswith("-s|budget alert: bob spent 9 of 10|ops@example.com|{"), (
        lines
    )
    assert json.loads(lines[0].split("|", 3)[3])["threshold"] == "80"
