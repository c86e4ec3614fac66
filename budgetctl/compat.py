"""``BudgetManager``: LiteLLM's class of that name, on budgetctl's ledger.

Same methods, parameters and return shapes as ``litellm.BudgetManager`` (floats at this boundary,
``{"user": record}`` from ``update_cost``, ``{"status": "success"}`` from ``save_data``), so a
LiteLLM user changes one import line. Underneath: exact Decimals, calendar periods, and every
mutating call persisted at once under the project lock (never in a background thread). Budgets
live where the CLI keeps them (``BUDGETCTL_DATA_DIR``, else the platformdirs user data dir).

Where LiteLLM raised a bare ``KeyError`` for an unknown user, this raises ``UnknownUserError``,
which is a ``KeyError`` too; bad values are ``UsageError``, a ``ValueError`` as LiteLLM's. What
LiteLLM returns is returned to the last detail (``created_at`` to the microsecond, ``0`` from
``get_model_cost`` before a first charge); the differences left are fixes, listed in
docs/library.md and checked against LiteLLM itself by bench/differential.py.
``client_type="hosted"`` keeps the budgets on a server that speaks LiteLLM's
``get_budget``/``set_budget`` protocol (:mod:`budgetctl.store.hosted`); when ``api_base`` is a
budgetctl server (``budgetctl serve``: its ``/healthz`` says so), its atomic ``/v1`` API is used
instead (:mod:`budgetctl.client.remote`), so two clients never overwrite each other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from budgetctl.core import periods, rules
from budgetctl.core.rules import Budget
from budgetctl.errors import (
    InvalidDurationError,
    InvalidNameError,
    UnknownProjectError,
    UnknownUserError,
    UsageError,
)
from budgetctl.ledger import Ledger, system_clock
from budgetctl.store.litellm_format import litellm_record

LITELLM_API_BASE = "https://api.litellm.ai"  # LiteLLM's api_base when none is given
_log = logging.getLogger("budgetctl.compat")


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
        # As LiteLLM: the hosted default, kept (and unused) for a local manager too.
        self.api_base = api_base or LITELLM_API_BASE
        self.headers = headers or {"Content-Type": "application/json"}
        self._ledger: Ledger | None = None
        self._made = (project_name, data_dir, clock)
        if client_type == "local":
            self._ledger = Ledger(project_name, data_dir, clock=clock, server="")

    @property
    def ledger(self) -> Ledger:
        """The ledger the manager works on. Hosted: made at the first call (nothing is contacted
        at construction, as in LiteLLM): on budgetctl's own server (its ``/healthz`` says so,
        asked once per process and ``api_base``), its atomic ``/v1`` API; on any other server,
        LiteLLM's ``get_budget``/``set_budget`` protocol (:mod:`budgetctl.store.hosted`)."""
        if self._ledger is None:
            from budgetctl.client import detect

            project_name, data_dir, clock = self._made
            if (
                detect.fits_v1(project_name)
                and self.api_base != LITELLM_API_BASE
                and detect.is_budgetctl(self.api_base)
            ):
                from budgetctl.client.remote import RemoteLedger

                self._ledger = RemoteLedger(
                    project_name,
                    clock=clock,
                    server=self.api_base,
                    token=detect.bearer(self.headers),
                )
            else:
                from budgetctl.store.hosted import HostedStore

                store = HostedStore(project_name, self.api_base, self.headers)
                self._ledger = Ledger(project_name, data_dir, clock=clock, store=store)
        return self._ledger

    # --- LiteLLM's public methods ----------------------------------------------------------------

    def print_verbose(self, print_statement: Any) -> None:
        """LiteLLM's debug print: logged at INFO on the ``budgetctl`` logger (quiet by default)."""
        _log.info("%s", print_statement)

    def load_data(self) -> None:
        """Nothing to load: every call reads the current state under the lock."""

    @property
    def user_dict(self) -> dict[str, dict[str, Any]]:
        """Every user's record, as LiteLLM's ``user_dict`` (read-only snapshot)."""
        if not self.ledger.exists():
            return {}
        return {budget.user: litellm_record(budget) for budget in self.ledger.view().users}

    def create_budget(
        self,
        total_budget: float,
        user: str,
        duration: str | None = None,
        created_at: float | None = None,
    ) -> dict[str, Any]:
        """Create (or, as in LiteLLM, replace) a budget; ``created_at`` anchors its periods."""
        if duration is not None and (
            not isinstance(duration, str) or periods.parse_duration(duration) is None
        ):
            raise InvalidDurationError(
                f"duration must be one of daily, weekly, monthly, yearly (or <N>h, <N>d, <N>w, "
                f"<N>mo, <N>y), or None for a lifetime budget; got {duration!r}"
            )
        budget = self.ledger.create(
            _key(user), total_budget, duration=duration, start=created_at, replace=True
        )
        record = litellm_record(budget)
        if isinstance(created_at, (int, float)) and not isinstance(created_at, bool):
            record["created_at"] = created_at  # as given, as LiteLLM returns it (stored to the µs)
        return record

    def projected_cost(self, model: str, messages: list[Mapping[str, Any]], user: str) -> float:
        """The user's current cost plus the cost of sending ``messages`` to ``model``."""
        self.ledger.costing.price(model)  # an unknown model first, as in LiteLLM
        with self._known(user) as key:
            checked = self.ledger.check(key, model, messages=messages)
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
        """Record a call: ``model`` + ``input_text`` + ``output_text``, or a completion response.

        Chosen as LiteLLM chooses: the text form when all three are non-empty (even beside a
        completion), else the completion when one is given, else a ``ValueError``.
        """
        if not (model and input_text and output_text) and not completion_obj:
            raise UsageError(
                "pass a completion response (completion_obj=...), or a model, input_text and "
                "output_text that are not empty"
            )
        with self._known(user) as key:
            if model and input_text and output_text:
                result = self.ledger.charge_text(key, model, input_text, output_text)
            else:
                result = self.ledger.charge_response(key, completion_obj)
        return {"user": litellm_record(result.budget)}

    def get_current_cost(self, user: str) -> float:
        return float(self._get(user).current_cost)

    def get_model_cost(self, user: str) -> dict[str, float] | int:
        """Cost per model in the current period; ``0`` (as LiteLLM) before the budget's first
        charge or reset, ``{}`` after a reset."""
        budget = self._get(user)
        if not budget.model_cost and not _ever_reset(budget):
            return 0
        return {m: float(c) for m, c in budget.model_cost.items()}

    def is_valid_user(self, user: str) -> bool:
        key = _key(user)
        return _possible(key) and key in self.ledger.users()

    def get_users(self) -> list[str]:
        return self.ledger.users()

    def reset_cost(self, user: str) -> dict[str, Any]:
        """Zero the user's spend now (saved at once, archived as a closed period)."""
        with self._known(user) as key:
            self.ledger.reset([key])
        return {"user": litellm_record(self._get(key))}

    def reset_on_duration(self, user: str) -> None:
        """Reset the user's spend if their period has ended (at the period's boundary)."""
        with self._known(user) as key:
            self.ledger.roll_over([key])

    def update_budget_all_users(self) -> None:
        """Reset every budget whose period has ended."""
        if self.ledger.exists():
            self.ledger.reset_due()

    def save_data(self) -> dict[str, str]:
        """Every change is already saved; kept for LiteLLM compatibility."""
        return {"status": "success"}

    # --- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _known(self, user: Any) -> Iterator[str]:
        """``user`` as a key, for a call on an existing user. A user that cannot exist (empty, not
        a string, too long) or of a project with no budgets yet is an unknown user (a KeyError,
        as in LiteLLM), not a bad name or an unknown project; checked where the ledger checks it,
        so a model is priced first, as LiteLLM prices it first."""
        key = _key(user)
        try:
            yield key
        except (UnknownProjectError, InvalidNameError):
            raise UnknownUserError(
                key if isinstance(key, str) else repr(key), self.project_name
            ) from None

    def _get(self, user: Any) -> Budget:
        with self._known(user) as key:
            return self.ledger.get(key)


def _key(user: Any) -> Any:
    """LiteLLM's user key as budgetctl keeps it: an int becomes its string, as it does when
    LiteLLM's ``user_cost.json`` is read back; anything else is left for the checks."""
    if isinstance(user, int) and not isinstance(user, bool):
        return str(user)
    hash(user)  # an unhashable key is LiteLLM's TypeError
    return user


def _possible(key: Any) -> bool:
    try:
        rules.check_user_name(key)
    except UsageError:
        return False
    return True


def _ever_reset(budget: Budget) -> bool:
    """True when the budget's spend went back to zero since it was created (a reset or a period
    that ended): it has a closed period, or (where the store keeps no history) its current period
    is no longer the one it was created in."""
    if budget.recent_periods:
        return True
    if budget.duration is None:
        return budget.period_start != (budget.start or budget.created_at)
    first, _ = rules.current_period(
        budget.duration, budget.timezone, budget.start, budget.created_at, budget.created_at
    )
    return budget.period_start != first
