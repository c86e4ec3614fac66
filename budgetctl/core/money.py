"""Money as exact decimals.

Never floating point in an accounting system (beancount's rule): amounts are parsed from text into
``decimal.Decimal``, must be finite and >= 0, and are written back as exact decimal text. Sums are
exact: 0.1 charged ten times is exactly 1.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation

from budgetctl.errors import InvalidAmountError

ZERO = Decimal(0)

# Far above any real budget, and keeps the exponent range sane for formatting and JSON.
MAX_AMOUNT = Decimal("1e15")
# Finer than any price table goes (LiteLLM's smallest rates carry ~24 places), and keeps sums exact.
MAX_PLACES = 40
# An amount read back from a file may be a sum of many amounts (a user's spend), so it may pass
# MAX_AMOUNT, but never what EXACT adds without rounding (60 digits before the point, 40 after).
MAX_STORED = Decimal("1e40")
# How much of a rejected value an error message repeats (a hostile file's number may be 1 GB).
SHOWN = 40

# Money arithmetic never runs in the default context: its 28 digits round $10,000 + 1e-24 to
# $10,000. Amounts are <= 1e15 with <= MAX_PLACES places, so a sum of up to 1e40 of them fits in
# 100 digits; Inexact is trapped so a rounding could never pass silently.
EXACT = Context(prec=100, traps=[InvalidOperation, Inexact])
# For rounding an amount to the digits shown to people (rounding is the point, so not trapped).
EXACT_ROUND = Context(prec=100, traps=[InvalidOperation])
_CENT = Decimal("0.01")


def parse_amount(value: object, what: str = "amount") -> Decimal:
    """Parse a money amount from text (or an int/Decimal) into an exact, finite, >= 0 Decimal.

    Floats are accepted only through their shortest ``repr`` (``0.1`` -> ``Decimal("0.1")``), which
    is what the person who typed them meant; that is the boundary with LiteLLM-style callers.
    """
    if isinstance(value, bool):
        raise InvalidAmountError(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = _from_text(repr(value), what)
    elif isinstance(value, str):
        amount = _from_text(value, what)
    else:
        raise InvalidAmountError(f"{what} must be a number, not {type(value).__name__}")
    return check_amount(amount, what)


# Thousands grouped with commas, as the tool prints amounts ($1,000.50): 1-3 digits, then groups
# of exactly three. "1,5" is not a grouping (a decimal comma, perhaps): refused, not read as 15.
# (A pattern, compiled by re on first use and cached there: compiling costs every command that
# imports this module 0.05 ms, and only an amount written with commas needs it.)
_GROUPED = r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?"


def _from_text(text: str, what: str) -> Decimal:
    cleaned = text.strip().replace("_", "")
    if cleaned.startswith("$"):
        cleaned = cleaned[1:]
    if "," in cleaned:
        if not re.fullmatch(_GROUPED, cleaned):
            raise InvalidAmountError(
                f"{what} {text!r} is not a number; commas may only group thousands (1,000.50); "
                "the decimal separator is a point (0.25)"
            )
        cleaned = cleaned.replace(",", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise InvalidAmountError(
            f"{what} {shown(text)} is not a number; write it as a plain decimal such as 10 or 0.25"
        ) from None


def shown(value: object) -> str:
    """``value`` as an error message repeats it: its repr, cut to about :data:`SHOWN` characters."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 3]}..."


def check_amount(amount: Decimal, what: str = "amount", limit: Decimal = MAX_AMOUNT) -> Decimal:
    """``amount`` if it is finite, >= 0, at most ``limit`` and has at most MAX_PLACES places; else
    InvalidAmountError. Cheap whatever the amount (``1e+999999999`` is never expanded)."""
    if not amount.is_finite():
        raise InvalidAmountError(f"{what} must be a finite number, not {shown(amount)}")
    if amount < 0:
        raise InvalidAmountError(f"{what} must not be negative (got {shown(amount)})")
    if amount > limit:
        raise InvalidAmountError(f"{what} {shown(amount)} is too large (the limit is {limit:f})")
    if amount == 0:
        return ZERO  # normalise -0 and 0E-7 alike
    # (no more places than MAX_PLACES written, so none once trailing zeros are dropped either)
    exponent = amount.as_tuple().exponent  # an int: the amount is finite
    if isinstance(exponent, int) and exponent < -MAX_PLACES and _places(amount) > MAX_PLACES:
        raise InvalidAmountError(
            f"{what} {shown(amount)} has more than {MAX_PLACES} decimal places"
        )
    return amount


def _places(amount: Decimal) -> int:
    """Decimal places of finite ``amount`` once trailing zeros are dropped."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-exponent - trailing, 0)


def add(*amounts: Decimal) -> Decimal:
    """The exact sum of ``amounts`` (never rounded, whatever their sizes)."""
    total = ZERO
    for amount in amounts:
        total = EXACT.add(total, amount)
    return total


def subtract(a: Decimal, b: Decimal) -> Decimal:
    """The exact difference ``a - b``."""
    return EXACT.subtract(a, b)


def to_text(amount: Decimal) -> str:
    """Exact, plain decimal text (no exponent), as stored in state files and JSON output.

    Trailing zeros after the point are dropped: ``Decimal("1.500")`` -> ``"1.5"``.
    """
    if not amount:
        return "0"
    text = str(amount)  # the usual amount has no exponent, and str() is 3x faster than format
    if "E" in text:
        text = f"{amount:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def from_text(text: str) -> Decimal:
    """Decimal from text written by :func:`to_text` (trusted, already validated state)."""
    return Decimal(text)


def shown_usd(amount: Decimal) -> Decimal:
    """``amount`` rounded (half up, never truncated) to the digits :func:`format_usd` shows.

    From a cent up: two decimals, or up to six when the exact amount has them (``$1.005``).
    Below a cent: two significant digits, at most ten decimals, and never rounded to zero (one
    significant digit then).
    """
    value = abs(amount)
    if value == 0:
        return ZERO.quantize(_CENT)
    exact = max(_places(value), 2)
    if value >= _CENT:
        places = min(exact, 6)
    else:
        lead = -value.adjusted() - 1  # zeros between the point and the first digit
        places = min(exact, lead + 2 if lead + 2 <= 10 else lead + 1)
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=EXACT_ROUND)
    if shown >= _CENT and value < _CENT:  # 0.0099999 -> 0.01: back to the cent's two places
        shown = shown.quantize(_CENT, context=EXACT_ROUND)
    return -shown if amount < 0 else shown


def render_usd(shown: Decimal) -> str:
    """``$`` text of an already rounded amount, with exactly its own decimal places."""
    sign = "-" if shown < 0 else ""
    value = abs(shown)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(-exponent, 0)
    below_cent = value < _CENT and value != 0
    text = f"{value:.{places}f}" if below_cent else f"{value:,.{places}f}"
    if "." in text and not below_cent:  # keep at least two places, drop rounding noise beyond
        whole, frac = text.split(".")
        text = f"{whole}.{frac.rstrip('0').ljust(2, '0')}"
    elif below_cent:
        text = text.rstrip("0")
    return f"{sign}${text}"


def format_usd(amount: Decimal) -> str:
    """Human money: ``$12.50``, and enough digits to see sub-cent costs (``$0.0012``), rounded."""
    return render_usd(shown_usd(amount))


def shown_figures(total: Decimal, spent: Decimal) -> tuple[str, str, str]:
    """A budget, its spend and what remains as people read them side by side: each figure is
    rounded to the digits shown, and the remaining one is derived from the two shown, so spent
    plus remaining is the budget as shown (never negative: an overspent budget has $0.00 left).
    """
    budget_shown = shown_usd(total)
    spent_shown = shown_usd(spent)
    left = EXACT.subtract(budget_shown, spent_shown)
    if left <= 0:
        left = ZERO.quantize(_CENT)
    places = max(
        -int(budget_shown.as_tuple().exponent),
        -int(spent_shown.as_tuple().exponent),
        2,
    )
    left = left.quantize(Decimal(1).scaleb(-places), context=EXACT_ROUND)
    return render_usd(budget_shown), render_usd(spent_shown), _render_fixed(left)


def _render_fixed(shown: Decimal) -> str:
    """Like :func:`render_usd`, keeping every place (the remaining figure of a group)."""
    exponent = shown.as_tuple().exponent
    assert isinstance(exponent, int)
    return f"${shown:,.{max(-exponent, 2)}f}"


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole``; None when ``whole`` is 0 (no meaningful %)."""
    if whole == 0:
        return None
    return part * 100 / whole
