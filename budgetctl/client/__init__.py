"""budgetctl as a client of a budget server (``budgetctl serve``'s ``/v1`` API).

With ``BUDGETCTL_SERVER=URL`` (and ``BUDGETCTL_SERVER_TOKEN``), :class:`~budgetctl.ledger.Ledger`
and the command line keep no state of their own: every operation is one request to the server,
which runs it atomically on its store (docs/server.md, "Client mode"). The standard library's
``http.client`` only, so a one-shot command stays fast.
"""

from __future__ import annotations

import os

SERVER_ENV = "BUDGETCTL_SERVER"
TOKEN_ENV = "BUDGETCTL_SERVER_TOKEN"
TIMEOUT_ENV = "BUDGETCTL_SERVER_TIMEOUT"


def configured_server(server: str | None = None) -> str | None:
    """The server to be a client of: ``server`` when given (``""``: none, whatever the
    environment says), else ``BUDGETCTL_SERVER``, else None."""
    if server is not None:
        return server or None
    return os.environ.get(SERVER_ENV) or None
