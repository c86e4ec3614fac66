"""The console script ``budgetctl`` (``budgetctl.cli.app:main``), and ``app`` for tests.

A one-shot process spends a good part of its life creating objects it never frees: modules, the
price table, the state it reads. The cyclic garbage collector would traverse all of them again and
again, and once more at exit, for nothing (about 15 ms of a 100 ms command). So ``main`` keeps the
collector off while it imports and builds the command, freezes what exists then (those objects are
never collected), runs the command with the collector on, and freezes again before the interpreter
exits. Buffers are still flushed and files closed as usual.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


def main() -> None:
    """Run ``budgetctl`` with ``sys.argv``, building only the command it names."""
    gc.disable()
    from budgetctl.cli import root

    args = root.hoist(sys.argv[1:])
    command = root.build(args)
    gc.freeze()
    gc.enable()
    try:
        command.main(args, prog_name="budgetctl")
    finally:
        gc.freeze()


def __getattr__(name: str) -> Any:
    # ``app`` (every command) is built on first use: ``CliRunner().invoke(app, [...])``.
    if name == "app":
        from budgetctl.cli.root import make_app

        globals()["app"] = built = make_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
