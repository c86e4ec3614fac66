"""A fuzz of ``budgetctl serve``'s API from its own OpenAPI document, with schemathesis.

    python bench/fuzz_server.py [--examples N] [--seed S] [--store json,postgres]

For each store (a fresh data dir; a fresh PostgreSQL schema, dropped after) it starts a real
``budgetctl serve`` with a token, and runs ``st run URL/openapi.json`` (every phase: coverage,
fuzzing, stateful; ``--checks not_a_server_error``) against it. Then it reads the server's own log
(one JSON line per request) and counts the requests and their statuses: any 5xx is a failure (503,
a store that is down, should not happen here either). Exit 1 on a failure.

schemathesis is installed from PyPI into bench/.venv-schemathesis, apart from budgetctl and its
tests (it pulls in ~30 packages and registers a pytest plugin that every pytest run would load);
tests/test_server_fuzz.py runs a short fuzz through :func:`fuzz`, `.ci/run` creates the venv.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-schemathesis"
VERSION = "4.32.5"
TOKEN = "fuzz-token-0123456789abcdef"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(message: str) -> None:
    print(f"[fuzz] {message}", file=sys.stderr, flush=True)


def ensure_schemathesis() -> str | None:
    """bench/.venv-schemathesis's ``st``, installed from PyPI if absent; None (and why) if not."""
    st = VENV / "bin" / "st"
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('schemathesis'))"]
    if python.exists():
        probe = subprocess.run(check, capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == VERSION and st.exists():
            return str(st)
    log(f"installing schemathesis=={VERSION} into {VENV} (once; about 20 s)")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"schemathesis=={VERSION}"],
            check=True,
            timeout=900,
        )
        probe = subprocess.run(check, capture_output=True, text=True)
        if probe.returncode != 0 or not st.exists():
            raise RuntimeError(probe.stderr.strip()[-500:])
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        log(f"cannot install schemathesis=={VERSION} ({exc})")
        return None
    return str(st)


def budgetctl() -> str:
    beside = Path(sys.executable).parent / "budgetctl"
    found = str(beside) if beside.exists() else shutil.which("budgetctl")
    if not found:
        raise SystemExit("budgetctl is not installed here: run `pip install -e '.[server]'` first")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def store_options(store: str, workdir: Path) -> Iterator[list[str]]:
    """``budgetctl serve`` options for a fresh store of kind ``store``."""
    if store == "json":
        yield ["--data-dir", str(workdir / "data")]
        return
    import psycopg

    base = os.environ.get("BUDGETCTL_TEST_DATABASE_URL") or DEFAULT_DATABASE
    schema = f"bc_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base else "?"
    url = f"{base}{joiner}options={quote(f'-csearch_path={schema}')}"
    try:
        from budgetctl.store.postgres.store import Database

        database = Database(url)
        database.migrate()
        database.close()
        yield ["--database-url", url]
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@dataclass
class Result:
    store: str
    exit_code: int = -1
    cases: int = 0  # schemathesis' test cases
    requests: int = 0  # what the server logged
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.server_errors == 0 and self.requests > 0

    def summary(self) -> dict[str, object]:
        return {
            "store": self.store,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "test_cases": self.cases,
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 1),
        }


def _wait_healthy(url: str, process: subprocess.Popen[bytes], logfile: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"serve did not start: {logfile.read_text()[-2000:]}")
        time.sleep(0.05)


def fuzz(
    store: str, st: str, *, examples: int = 10, seed: int = 20261202, max_time: int | None = None
) -> Result:
    """One schemathesis run against a fresh server over a fresh ``store``."""
    result = Result(store)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="budgetctl-fuzz-") as tmp:
        workdir = Path(tmp)
        logfile = workdir / "serve.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETCTL_")}
        env["BUDGETCTL_SERVER_TOKEN"] = TOKEN
        with store_options(store, workdir) as options, logfile.open("wb") as sink:
            server = subprocess.Popen(
                [budgetctl(), "serve", "--port", str(port), *options], stderr=sink, env=env
            )
            try:
                _wait_healthy(url, server, logfile)
                command = [
                    st,
                    "run",
                    f"{url}/openapi.json",
                    "-H",
                    f"Authorization: Bearer {TOKEN}",
                    "--checks",
                    "not_a_server_error",
                    "--max-examples",
                    str(examples),
                    "--seed",
                    str(seed),
                    "--workers",
                    "1",
                    "--no-color",
                    "--report",
                    "json",
                    "--report-json-path",
                    str(workdir / "report.json"),
                ]
                if max_time is not None:
                    command += ["--max-time", str(max_time)]
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    cwd=workdir,
                    env={k: v for k, v in env.items() if k != "BUDGETCTL_SERVER_TOKEN"},
                    timeout=900,
                )
                result.exit_code = done.returncode
                result.output = done.stdout[-6000:] + done.stderr[-2000:]
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
        statuses: collections.Counter[int] = collections.Counter()
        # split on "\n" only: a logged path may hold U+2028 or U+0085, which splitlines() breaks on
        for line in logfile.read_text(encoding="utf-8").split("\n"):
            if line.startswith("{") and '"method"' in line:
                statuses[int(json.loads(line)["status"])] += 1
        result.statuses = dict(statuses)
        result.requests = sum(statuses.values())
        report = workdir / "report.json"
        if report.exists():
            cases = json.loads(report.read_text()).get("test_cases", {})
            result.cases = int(cases.get("generated", 0)) if isinstance(cases, dict) else 0
    result.seconds = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=50, help="test cases per operation")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--store", default="json,postgres")
    args = parser.parse_args()
    st = ensure_schemathesis()
    if st is None:
        return 1
    failed = False
    for store in args.store.split(","):
        result = fuzz(store, st, examples=args.examples, seed=args.seed)
        print(json.dumps(result.summary()), flush=True)
        if not result.ok:
            failed = True
            print(result.output, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
