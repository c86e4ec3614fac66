"""Measuring tools for bench/run.py: child processes timed one by one, statistics, the machine.

Every measured command runs as its own child process, started by the small bench/launch.py, which
reports that command's own wall time and peak memory (``ru_maxrss`` from ``wait4``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ChildFailed(RuntimeError):
    """A measured command exited non-zero; the message carries its stderr."""


@dataclass
class Sample:
    """Repeated measurements of one thing: seconds and (for processes) peak RSS in MiB."""

    name: str
    seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.seconds), max(self.seconds)

    @property
    def rss_median(self) -> float | None:
        return statistics.median(self.rss_mib) if self.rss_mib else None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "seconds": self.seconds,
            "rss_mib": self.rss_mib,
            "median_s": self.median,
            "min_s": self.spread[0],
            "max_s": self.spread[1],
            "rss_median_mib": self.rss_median,
        }


LAUNCHER = Path(__file__).resolve().parent / "launch.py"


def run_child(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> tuple[float, float, bytes]:
    """Run ``argv``; return (wall seconds, peak RSS of that command in MiB, its stdout).

    The command is started by bench/launch.py, which times it from spawn to reaping (what a shell
    script waits for) and reads its own ``ru_maxrss`` from ``wait4``.
    """
    with tempfile.NamedTemporaryFile(prefix="bench-child-", suffix=".json") as result:
        proc = subprocess.Popen(
            [sys.executable, "-S", str(LAUNCHER), result.name, *argv],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = _drain(proc, time.perf_counter() + timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        proc.wait()
        if proc.returncode != 0:
            raise ChildFailed(
                f"{' '.join(argv[:4])}... exited {proc.returncode}: "
                f"{err.decode(errors='replace').strip()[-2000:]}"
            )
        measured = json.loads(Path(result.name).read_text())
    return measured["seconds"], measured["maxrss_kib"] / 1024, out


def _drain(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr to EOF (a child that fills a pipe would block)."""
    import selectors

    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    with selectors.DefaultSelector() as sel:
        for pipe in (proc.stdout, proc.stderr):
            sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.perf_counter()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            for key, _ in sel.select(timeout=left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fileobj)
    out, err = b"".join(chunks[out_fd]), b"".join(chunks[err_fd])
    proc.stdout.close()
    proc.stderr.close()
    return out, err


def fmt_s(seconds: float) -> str:
    """Seconds for a table: 3 significant digits, in ms below one second."""
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_sample(sample: Sample) -> str:
    low, high = sample.spread
    return f"{fmt_s(sample.median)} ({fmt_s(low)}-{fmt_s(high)})"


def fmt_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    raise AssertionError


def machine(path: Path) -> dict[str, str]:
    """What the figures were measured on: cores, CPU, memory, Python, OS, file system."""
    info = {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "memory": _mem_total(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{platform.system()} {platform.release()}",
        "file system of the data dir": _filesystem(path),
    }
    return info


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
    return f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "unknown"


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(path)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        return " on ".join(out) if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
