"""JSON text from outside (files, stdin, a server's answers), decoded with one failure mode.

``json.loads`` raises ``RecursionError`` for a document nested deeper than the interpreter's stack
allows (``[[[[...]]]]`` 100,000 deep is 200 kB), which callers that catch ``ValueError`` miss, and
which is nothing to do with a recursion bug of theirs. :func:`loads` turns it into a
``json.JSONDecodeError`` like every other undecodable document, so each caller's existing
"not valid JSON" error names the file and says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeeply(json.JSONDecodeError):
    """A JSON document nested deeper than the decoder can follow (it has no useful position)."""

    def __init__(self) -> None:
        super().__init__("nested too deeply", "", 0)

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[type[NestedTooDeeply], tuple[()]]:
        return (NestedTooDeeply, ())


def loads(data: str | bytes | bytearray, **options: Any) -> Any:
    """``json.loads(data, **options)``; a document nested too deeply is a ``JSONDecodeError``."""
    try:
        return json.loads(data, **options)
    except RecursionError:
        raise NestedTooDeeply() from None
