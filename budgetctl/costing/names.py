"""Model names as callers write them: ``openai/gpt-4o``, ``azure/gpt-4o``, ``gpt-4o``.

LiteLLM and proxies prefix a model with its provider. Prices and tokenizers are looked up under
the name as given first, then with the leading ``provider/`` segments dropped one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator


def name_candidates(model: str) -> Iterator[str]:
    """``model`` itself, then ``model`` without each leading ``provider/`` segment in turn.

    >>> list(name_candidates("openrouter/openai/gpt-4o"))
    ['openrouter/openai/gpt-4o', 'openai/gpt-4o', 'gpt-4o']
    """
    yield model
    rest = model
    while "/" in rest:
        rest = rest.split("/", 1)[1]
        if not rest:
            return
        yield rest


def base_name(model: str) -> str:
    """The last segment of ``model``: ``openai/gpt-4o`` -> ``gpt-4o``."""
    return model.rsplit("/", 1)[-1]
