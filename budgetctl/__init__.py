"""budgetctl: per-user budgets for LLM API spending.

The public library API: :class:`BudgetManager` (LiteLLM-compatible), :class:`Ledger` (the
budgetctl API the CLI is built on) and the error hierarchy. Heavy pieces load on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # nothing is imported here: the console script wants its handlers first
    from typing import Any

    from budgetctl._version import __version__
    from budgetctl.compat import BudgetManager
    from budgetctl.errors import BudgetctlError, BudgetExceededError
    from budgetctl.ledger import Ledger

__all__ = ["BudgetExceededError", "BudgetManager", "BudgetctlError", "Ledger", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import budgetctl` (and the CLI) does not pay for what it does not use, and the
    # console script reaches its Ctrl-C handler (budgetctl.cli.interrupts) with nothing imported.
    if name == "__version__":
        from budgetctl._version import __version__

        return __version__
    if name in ("BudgetctlError", "BudgetExceededError"):
        from budgetctl import errors

        return getattr(errors, name)
    if name == "BudgetManager":
        from budgetctl.compat import BudgetManager

        return BudgetManager
    if name == "Ledger":
        from budgetctl.ledger import Ledger

        return Ledger
    raise AttributeError(f"module 'budgetctl' has no attribute {name!r}")
