"""budgetctl: per-user budgets for LLM API spending.

The public library API: :class:`BudgetManager` (LiteLLM-compatible), :class:`Ledger` (the
budgetctl API the CLI is built on) and the error hierarchy. Heavy pieces load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from budgetctl._version import __version__
from budgetctl.errors import BudgetctlError, BudgetExceededError

if TYPE_CHECKING:
    from budgetctl.compat import BudgetManager
    from budgetctl.ledger import Ledger

__all__ = ["BudgetExceededError", "BudgetManager", "BudgetctlError", "Ledger", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import budgetctl` (and the CLI) does not pay for what it does not use.
    if name == "BudgetManager":
        from budgetctl.compat import BudgetManager

        return BudgetManager
    if name == "Ledger":
        from budgetctl.ledger import Ledger

        return Ledger
    raise AttributeError(f"module 'budgetctl' has no attribute {name!r}")
