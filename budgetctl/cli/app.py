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
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not free to import, and start-up must reach main() at once
    import signal
    from types import FrameType
    from typing import Any
else:
    try:  # the C module: ``import signal`` first builds an enum of every signal (interruptible)
        import _signal as signal
    except ImportError:  # an interpreter without it
        import signal

_START_SIGNAL: list[int] = []  # a signal that came while the command was being built
_IN_MAIN = [False]  # main() has started (before it, the console script's own lines run)


def _starting(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM while the command is still being imported and built: nothing done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not _IN_MAIN[0]:
        # In the console script's own lines, before main(): no try of ours is around them, so an
        # exception would end in a traceback. Nothing has been done yet: say so and leave at once.
        terminated = signum == signal.SIGTERM
        message = f"error: {'terminated' if terminated else 'interrupted'}; nothing changed\n"
        try:  # noqa: SIM105 - contextlib is not imported yet at this point of start-up
            os.write(2, message.encode())
        except OSError:  # no stderr to say it on: the exit code says it
            pass
        os._exit(143 if terminated else 130)
    _START_SIGNAL.append(signum)
    raise KeyboardInterrupt


def _quiet(unraisable: sys.UnraisableHookArgs) -> None:
    # An interrupt that lands in a finalizer is kept (_START_SIGNAL, or interrupts._requested)
    # and acted on where it can be: it is not shown as "Exception ignored" with a traceback.
    stopped = unraisable.exc_value
    if not isinstance(stopped, KeyboardInterrupt) and type(stopped).__name__ != "Interrupted":
        sys.__unraisablehook__(unraisable)


def _stop(signum: int) -> None:
    terminated = signum == signal.SIGTERM
    sys.stderr.write(f"error: {'terminated' if terminated else 'interrupted'}; nothing changed\n")
    sys.exit(143 if terminated else 130)


def _starting_up() -> None:
    """From here on, Ctrl-C during start-up is a sentence, not a traceback."""
    signal.signal(signal.SIGINT, _starting)
    signal.signal(signal.SIGTERM, _starting)
    sys.unraisablehook = _quiet


def _console_script() -> bool:
    """Imported by the ``budgetctl`` console script (not by a program or a test)?"""
    script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    name = script.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
    return name in ("budgetctl", "budgetctl-script")


if _console_script():  # at once: the script still has a regular expression to compile
    _starting_up()


def main() -> None:
    """Run ``budgetctl`` with ``sys.argv``, building only the command it names."""
    try:
        _IN_MAIN[0] = True  # in the try: a signal from here on is caught below
        _starting_up()
        gc.disable()
        from budgetctl.cli import interrupts, root

        args = root.hoist(sys.argv[1:])
        command = root.build(args)
        gc.freeze()
        gc.enable()
        if _START_SIGNAL:  # it landed in a finalizer, where Python could not raise it
            raise KeyboardInterrupt
        interrupts.install()  # from here on, interrupts follow the command's commit
    except KeyboardInterrupt:
        _stop(_START_SIGNAL[0] if _START_SIGNAL else signal.SIGINT)
    except BaseException as exc:  # an Interrupted from the handler install() just set
        if type(exc).__name__ != "Interrupted":
            raise
        _stop(exc.signum)  # type: ignore[attr-defined]
    try:
        command.main(args, prog_name="budgetctl")
    except interrupts.Interrupted as stopped:  # in the instant before the command's own guard
        interrupts.finish()
        _stop(stopped.signum)
    finally:
        gc.freeze()


def __getattr__(name: str) -> Any:
    # ``app`` (every command) is built on first use: ``CliRunner().invoke(app, [...])``.
    if name == "app":
        from budgetctl.cli.root import make_app

        globals()["app"] = built = make_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
