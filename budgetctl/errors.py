"""One error hierarchy for budgetctl.

Every error the library raises on purpose is a :class:`BudgetctlError` whose message is a sentence
a person can act on (what was wrong, what to do). Each class carries its CLI exit code (docs/cli.md,
"Exit codes"), so the command line maps errors to exit codes in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any


class BudgetctlError(Exception):
    """Base class: a user-ready message and the exit code the CLI uses for it."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (multiprocessing, concurrent.futures) rebuilds an exception as ``cls(*args)``;
        # subclasses take other arguments than their message, so rebuild from the state instead.
        return (_restore, (type(self), self.message, dict(self.__dict__)))


def _restore(cls: type[BudgetctlError], message: str, state: dict[str, Any]) -> BudgetctlError:
    """The inverse of :meth:`BudgetctlError.__reduce__`: the error, without calling ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


# --- exit 2: usage -------------------------------------------------------------------------------


class UsageError(BudgetctlError, ValueError):
    """A bad option or value: a negative amount, an unknown duration, malformed input.

    Also a ``ValueError`` so code written against LiteLLM's ``BudgetManager`` that catches
    ``ValueError`` keeps working.
    """

    exit_code = 2


class InvalidAmountError(UsageError):
    """An amount that is not a finite, non-negative decimal number."""


class InvalidDurationError(UsageError):
    """A duration that is not one of the accepted forms."""


class InvalidTimeError(UsageError):
    """An unparseable time or an unknown IANA time zone."""


class InvalidNameError(UsageError):
    """A project or user name outside the accepted form."""


class ResponseParseError(UsageError):
    """A completion response that is malformed or lacks a field budgetctl needs."""


# --- exit 1: could not be done -------------------------------------------------------------------


class StateError(BudgetctlError):
    """The project's state could not be read or written."""

    def __init__(self, path: object, reason: str, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        message = f"{self.path}: {reason}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class CorruptStateError(StateError):
    """A state or history file that is not what budgetctl wrote. It is never overwritten."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(
            path,
            reason,
            "budgetctl will not overwrite it: restore it from a backup or move it aside",
        )


class FutureVersionError(StateError):
    """A state file written by a newer budgetctl."""

    def __init__(self, path: object, found: int, supported: int) -> None:
        super().__init__(
            path,
            f"format version {found} is newer than this budgetctl supports ({supported})",
            "upgrade budgetctl to read it",
        )


class StorageIOError(StateError):
    """An operating-system error while reading or writing state (permissions, disk full)."""


class UserExistsError(BudgetctlError):
    """``create`` on a user that already has a budget."""

    def __init__(self, user: str) -> None:
        self.user = user
        super().__init__(
            f"user {user!r} already has a budget; use 'set' to change it or --replace to start over"
        )


class ProjectExistsError(BudgetctlError):
    """``restore`` into a project that already has budgets, a cap, prices or history."""

    def __init__(self, project: str, where: object) -> None:
        self.project = project
        super().__init__(
            f"project {project!r} already exists in {where}; nothing was restored (restore "
            "--replace replaces it, or choose another project with -p)"
        )


class RequestIdConflictError(BudgetctlError, ValueError):
    """A request id already charged, reused for a different charge (user, cost, model or tokens).

    Nothing is changed: the first charge stands. The same charge again is a duplicate, not this
    error (docs/state-format.md, "Request ids"). Also a ``ValueError``, so code written against
    LiteLLM's ``BudgetManager`` that catches bad values keeps working. ``user``, ``cost``,
    ``model`` and the token counts are the charge the id was first recorded for.
    """

    def __init__(
        self,
        request_id: str,
        user: str,
        cost: Decimal,
        model: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> None:
        self.request_id = request_id
        self.user = user
        self.cost = cost
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        amount = format(cost.normalize(), "f") if cost else "0"
        if request_id.startswith("hold:"):  # a hold's commit (budgetctl.core.rules.hold_key)
            message = (
                f"hold {request_id[5:]!r} was already committed to {user!r} for ${amount}: "
                "nothing changed; a retry must repeat the same charge"
            )
        else:
            message = (
                f"request id {request_id!r} was already charged to {user!r} for ${amount}: "
                "nothing changed; a retry must repeat the same charge, a new call needs a new "
                "request id"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (
                self.request_id,
                self.user,
                self.cost,
                self.model,
                self.prompt_tokens,
                self.completion_tokens,
                self.cached_tokens,
            ),
        )


class HoldCommittedError(BudgetctlError):
    """A hold whose call was already recorded (committed) cannot be released."""

    def __init__(self, hold_id: str) -> None:
        self.hold_id = hold_id
        super().__init__(
            f"hold {hold_id!r} was already committed (its cost is recorded): nothing to release"
        )


# --- exit 3: over budget -------------------------------------------------------------------------


class BudgetExceededError(BudgetctlError):
    """A call would take a user (or the project cap) over its budget.

    Keeps the attributes of LiteLLM's ``BudgetExceededError`` (``current_cost``, ``max_budget``)
    as floats, and the exact values as ``current_cost_exact`` / ``max_budget_exact``.
    """

    exit_code = 3

    def __init__(
        self,
        current_cost: Decimal,
        max_budget: Decimal,
        message: str | None = None,
        *,
        scope: str = "user",
    ) -> None:
        self.current_cost_exact = current_cost
        self.max_budget_exact = max_budget
        self.current_cost = float(current_cost)
        self.max_budget = float(max_budget)
        self.scope = scope
        super().__init__(
            message
            or f"Budget has been exceeded! Current cost: {current_cost}, Max budget: {max_budget}"
        )


# --- exit 4: not found ---------------------------------------------------------------------------


class NotFoundError(BudgetctlError):
    """Something named does not exist."""

    exit_code = 4


class UnknownUserError(NotFoundError, KeyError):
    """A user with no budget in the project.

    Also a ``KeyError``: LiteLLM raised a bare ``KeyError`` here, and code that catches it keeps
    working.
    """

    def __init__(self, user: str, project: str, known: Iterable[str] = ()) -> None:
        from budgetctl.core.nearest import did_you_mean

        self.user = user
        self.project = project
        super().__init__(
            f"no budget for user {user!r} in project {project!r}"
            f"{did_you_mean(user, known, cutoff=0.8)}; create one with "
            f"'budgetctl create {user} --budget AMOUNT --duration D'"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class UnknownHoldError(NotFoundError):
    """No open hold has this id (never placed, released, or expired and archived)."""

    def __init__(self, hold_id: str, project: str) -> None:
        self.hold_id = hold_id
        self.project = project
        super().__init__(
            f"no open hold {hold_id!r} in project {project!r} (released, expired, or never "
            "placed); 'budgetctl holds' lists the open ones"
        )


class UnknownProjectError(NotFoundError):
    """A project with no state file in the data directory."""

    def __init__(self, project: str, data_dir: object) -> None:
        self.project = project
        super().__init__(
            f"no project {project!r} in {data_dir}; create a budget in it first, or pass "
            "--project/--data-dir"
        )


class UnknownModelError(NotFoundError):
    """A model with no price, listing the closest known names."""

    def __init__(self, model: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.model = model
        self.suggestions = list(suggestions)
        message = f"no price for model {model!r}"
        if self.suggestions and self.suggestions[0].casefold() == model.casefold():
            message += f" (did you mean {self.suggestions[0]!r}? model names are case-sensitive)"
        elif self.suggestions:
            message += "; closest known: " + ", ".join(self.suggestions)
        message += (
            f"; add a price with 'budgetctl price set {model} --input USD --output USD' "
            "(USD per 1M tokens), or use --prices FILE"
        )
        super().__init__(message)


# --- exit 5: busy --------------------------------------------------------------------------------


class LockTimeoutError(BudgetctlError):
    """Another process held the data dir's lock past the timeout. Nothing changed."""

    exit_code = 5

    def __init__(self, path: object, timeout: float) -> None:
        self.path = str(path)
        self.timeout = timeout
        super().__init__(
            f"project is busy: another process held the lock on the data directory {self.path} "
            f"for more than {timeout:g} s; nothing changed, it is safe to retry (or raise "
            "BUDGETCTL_LOCK_TIMEOUT)"
        )


class LockLostError(BudgetctlError):
    """The data dir was moved or replaced while its lock was held: another process may hold the
    lock of the directory now at its path. Nothing changed."""

    exit_code = 5

    def __init__(self, path: object) -> None:
        self.path = str(path)
        super().__init__(
            f"the data directory {self.path} was moved or replaced while this command held its "
            "lock, so another process may be writing; nothing changed, it is safe to retry"
        )


class NotSupportedError(BudgetctlError):
    """A feature this version does not offer."""


# --- warnings ------------------------------------------------------------------------------------


class BudgetctlWarning(UserWarning):
    """Something done that the user should know about (the CLI prints it on stderr, even with
    ``-q``; the library issues it with :func:`warnings.warn`)."""


class HistoryKeptAsideWarning(BudgetctlWarning):
    """History bytes no state counts were moved to a file of their own (docs/state-format.md)."""
