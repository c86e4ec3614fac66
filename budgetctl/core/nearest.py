"""Near misses: the known value a person most likely meant, as git's "did you mean" does.

Used on error paths only (an unknown model, user, time zone or duration), so it may scan every
known name. A value that differs only in case wins; else the closest by ``difflib``'s ratio.
"""

from __future__ import annotations

from collections.abc import Iterable


def nearest(word: str, known: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The value of ``known`` that ``word`` most likely meant, or None."""
    if not isinstance(word, str):  # a library caller's None or number: nothing to compare
        return None
    import difflib

    folded: dict[str, str] = {}
    wanted = word.strip().casefold()
    for name in known:
        key = name.casefold()
        if key == wanted:
            return name
        folded.setdefault(key, name)
    close = difflib.get_close_matches(wanted, list(folded), n=1, cutoff=cutoff)
    return folded[close[0]] if close else None


def did_you_mean(word: str, known: Iterable[str], cutoff: float = 0.75) -> str:
    """``" (did you mean 'X'?)"`` for the value ``word`` most likely meant, or ``""``."""
    found = nearest(word, known, cutoff)
    return hint(found) if found is not None and found != word else ""


def hint(value: str) -> str:
    return f" (did you mean {value!r}?)"
