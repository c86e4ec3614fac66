"""budgetctl's errors as HTTP answers: one table from error class to (code, status).

The code is stable snake_case, derived from the class; a client maps it back to the same class,
so the CLI's exit codes are the same in client mode. This module imports no web framework (a
client may read :data:`CODES`).
"""

from __future__ import annotations

from typing import Any

from budgetctl import errors as e
from budgetctl.store.postgres.store import SchemaMissingError


class BodyTooLarge(e.BudgetctlError):
    """A request body over the server's limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes: nothing was done")


# Most specific first: the first class an error is an instance of decides.
CODES: tuple[tuple[type[e.BudgetctlError], str, int], ...] = (
    (e.InvalidAmountError, "invalid_amount", 400),
    (e.InvalidDurationError, "invalid_duration", 400),
    (e.InvalidTimeError, "invalid_time", 400),
    (e.InvalidNameError, "invalid_name", 400),
    (e.ResponseParseError, "response_parse", 400),
    (e.UsageError, "usage", 400),
    (e.UnknownUserError, "unknown_user", 404),
    (e.UnknownProjectError, "unknown_project", 404),
    (e.UnknownModelError, "unknown_model", 404),
    (e.UnknownHoldError, "unknown_hold", 404),
    (e.NotFoundError, "not_found", 404),
    (e.UserExistsError, "user_exists", 409),
    (e.ProjectExistsError, "project_exists", 409),
    (e.RequestIdConflictError, "request_id_conflict", 409),
    (e.HoldCommittedError, "hold_committed", 409),
    (e.BudgetExceededError, "budget_exceeded", 402),
    (SchemaMissingError, "schema_missing", 503),
    (e.CorruptStateError, "corrupt_state", 500),
    (e.FutureVersionError, "corrupt_state", 500),
    (e.StorageIOError, "storage_io", 503),
    (e.StateError, "storage_io", 503),
    (e.LockTimeoutError, "lock_timeout", 503),
    (e.LockLostError, "lock_lost", 503),
    (e.NotSupportedError, "not_supported", 501),
    (BodyTooLarge, "too_large", 413),
)

# Errors of the server itself (no BudgetctlError): code -> status.
HTTP_CODES = {
    400: "usage",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "usage",
}


def code_of(error: e.BudgetctlError) -> tuple[str, int]:
    """The error's code and HTTP status (a BudgetctlError of no listed class: ``error``, 500)."""
    for cls, code, status in CODES:
        if isinstance(error, cls):
            return code, status
    return "error", 500


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", ...details}}``."""
    return {"error": {"code": code, "message": message, **details}}


def describe(error: e.BudgetctlError) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of ``error``, with what a client needs to rebuild it."""
    code, status = code_of(error)
    details: dict[str, Any] = {}
    if isinstance(error, e.BudgetExceededError):
        details = {
            "scope": error.scope,
            "current_cost": error.current_cost_exact,
            "max_budget": error.max_budget_exact,
        }
    elif isinstance(error, e.UnknownUserError):
        details = {"user": error.user}
    elif isinstance(error, e.UnknownHoldError):
        details = {"hold_id": error.hold_id}
    elif isinstance(error, e.UnknownModelError):
        details = {"model": error.model, "suggestions": error.suggestions}
    elif isinstance(error, e.UserExistsError):
        details = {"user": error.user}
    elif isinstance(error, e.HoldCommittedError):
        details = {"hold_id": error.hold_id}
    elif isinstance(error, e.RequestIdConflictError):
        details = {
            "request_id": error.request_id,
            "user": error.user,
            "cost": error.cost,
            "model": error.model,
            "prompt_tokens": error.prompt_tokens,
            "completion_tokens": error.completion_tokens,
            "cached_tokens": error.cached_tokens,
        }
    return status, error_body(code, error.message, **details)
