"""``BudgetManager``: LiteLLM's class of that name, on budgetctl's ledger.

Same methods, parameters and return shapes as ``litellm.BudgetManager`` (floats at this boundary,
``{"user": record}`` from ``update_cost``, ``{"status": "success"}`` from ``save_data``), so a
LiteLLM user changes one import line. Underneath: exact Decimals, calendar periods, and every
mutating call persisted at once under the project lock (never in a background thread). Budgets
live where the CLI keeps them (``BUDGETCTL_DATA_DIR``, else the platformdirs user data dir).

Where LiteLLM raised a bare ``KeyError`` for an unknown user, this raises ``UnknownUserError``,
which is a ``KeyError`` too. ``client_type="hosted"`` keeps the budgets on a server that speaks
LiteLLM's ``get_budget``/``set_budget`` protocol (:mod:`budgetctl.store.hosted`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from budgetctl.core.rules import Budget
from budgetctl.errors import UnknownProjectError, UnknownUserError, UsageError
from budgetctl.ledger import Ledger, system_clock
from budgetctl.store import codec


class BudgetManager:
    """Per-user budgets with LiteLLM's ``BudgetManager`` API. See the module docstring."""

    def __init__(
        self,
        project_name: str,
        client_type: str = "local",
        api_base: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        if client_type not in ("local", "hosted"):
            raise UsageError(f"client_type must be 'local' or 'hosted', not {client_type!r}")
        self.project_name = project_name
        self.client_type = client_type
        self.headers = headers or {"Content-Type": "application/json"}
        store = None
        if client_type == "hosted":
            from budgetctl.store.hosted import LITELLM_API_BASE, HostedStore

            api_base = api_base or LITELLM_API_BASE
            store = HostedStore(project_name, api_base, self.headers)
        self.api_base = api_base
        self.ledger = Ledger(project_name, data_dir, clock=clock, store=store)

    # --- LiteLLM's public methods ----------------------------------------------------------------

    def load_data(self) -> None:
        """Nothing to load: every call reads the current state under the lock."""

    @property
    def user_dict(self) -> dict[str, dict[str, Any]]:
        """Every user's record, as LiteLLM's ``user_dict`` (read-only snapshot)."""
        if not self.ledger.exists():
            return {}
        return {budget.user: codec.litellm_record(budget) for budget in self.ledger.view().users}

    def create_budget(
        self,
        total_budget: float,
        user: str,
        duration: str | None = None,
        created_at: float | None = None,
    ) -> dict[str, Any]:
        """Create (or, as in LiteLLM, replace) a budget; ``created_at`` anchors its periods."""
        budget = self.ledger.create(
            user, total_budget, duration=duration, start=created_at, replace=True
        )
        return codec.litellm_record(budget)

    def projected_cost(self, model: str, messages: list[Mapping[str, Any]], user: str) -> float:
        """The user's current cost plus the cost of sending ``messages`` to ``model``."""
        with self._known(user):
            checked = self.ledger.check(user, model, messages=messages)
        return float(checked.budget.current_cost + checked.projected_cost)

    def get_total_budget(self, user: str) -> float:
        return float(self._get(user).total_budget)

    def update_cost(
        self,
        user: str,
        completion_obj: Any = None,
        model: str | None = None,
        input_text: str | None = None,
        output_text: str | None = None,
    ) -> dict[str, Any]:
        """Record a call: a completion response, or ``model`` + ``input_text`` + ``output_text``."""
        with self._known(user):
            if model is not None and input_text is not None and output_text is not None:
                result = self.ledger.charge_text(user, model, input_text, output_text)
            elif completion_obj is not None:
                result = self.ledger.charge_response(user, completion_obj)
            else:
                raise UsageError(
                    "pass a completion response (completion_obj=...) or model, input_text and "
                    "output_text"
                )
        return {"user": codec.litellm_record(result.budget)}

    def get_current_cost(self, user: str) -> float:
        return float(self._get(user).current_cost)

    def get_model_cost(self, user: str) -> dict[str, float]:
        return {m: float(c) for m, c in self._get(user).model_cost.items()}

    def is_valid_user(self, user: str) -> bool:
        return user in self.ledger.users()

    def get_users(self) -> list[str]:
        return self.ledger.users()

    def reset_cost(self, user: str) -> dict[str, Any]:
        """Zero the user's spend now (saved at once, archived as a closed period)."""
        with self._known(user):
            self.ledger.reset([user])
        return {"user": codec.litellm_record(self._get(user))}

    def reset_on_duration(self, user: str) -> None:
        """Reset the user's spend if their period has ended (at the period's boundary)."""
        with self._known(user):
            self.ledger.roll_over([user])

    def update_budget_all_users(self) -> None:
        """Reset every budget whose period has ended."""
        if self.ledger.exists():
            self.ledger.reset_due()

    def save_data(self) -> dict[str, str]:
        """Every change is already saved; kept for LiteLLM compatibility."""
        return {"status": "success"}

    # --- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _known(self, user: str) -> Iterator[None]:
        """A user of a project with no budgets yet is an unknown user (a KeyError, as in
        LiteLLM), not an unknown project."""
        try:
            yield
        except UnknownProjectError:
            raise UnknownUserError(user, self.project_name) from None

    def _get(self, user: str) -> Budget:
        with self._known(user):
            return self.ledger.get(user)
