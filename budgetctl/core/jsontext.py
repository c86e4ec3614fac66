"""JSON text from outside (files, stdin, a server's answers), decoded with one failure mode.

``json.loads`` fails in ways that are not ``JSONDecodeError``: ``RecursionError`` for a document
nested deeper than the interpreter's stack allows (``[[[[...]]]]`` 100,000 deep is 200 kB), and a
bare ``ValueError`` for an integer of more than 4,300 digits (Python's limit on int conversion).
Callers that catch ``JSONDecodeError`` miss both. :func:`loads` turns them into a
``JSONDecodeError`` like every other undecodable document, so each caller's existing "not valid
JSON" error names the file and says what is wrong. ``UnicodeDecodeError`` is left as it is.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Undecodable(json.JSONDecodeError):
    """A JSON document the decoder cannot follow (it has no useful position)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[type[Undecodable], tuple[str]]:
        return (Undecodable, (self.msg,))


def loads(data: str | bytes | bytearray, **options: Any) -> Any:
    """``json.loads(data, **options)``; every document it cannot decode is a ``JSONDecodeError``
    (or a ``UnicodeDecodeError`` for bytes that are not UTF-8)."""
    try:
        return json.loads(data, **options)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise Undecodable("nested too deeply") from None
    except ValueError as error:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise Undecodable(str(error).split(";")[0][:100]) from None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a large document is parsed (or rows are built from one).

    Parsing a large state allocates hundreds of thousands of dicts and strings, none of them in
    cycles; the collector's passes over them cost about 30% of a 100,000-user load.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
