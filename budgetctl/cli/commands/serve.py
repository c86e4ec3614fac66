"""The ``serve`` command: the configured store over HTTP (docs/server.md).

Starlette and uvicorn (``pip install 'budgetctl[server]'``) are imported here, inside the
command, and nowhere else on the CLI's path: no other command pays for them.
"""

from typing import Annotated

import typer

from budgetctl.cli.options import CommonOptions, shared_options
from budgetctl.errors import UsageError

Host = Annotated[
    str,
    typer.Option(
        "--host",
        metavar="ADDR",
        help="Address to listen on. Beyond loopback (127.0.0.1, ::1) a token is required.",
    ),
]
Port = Annotated[
    int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")
]
TokenFile = Annotated[
    str | None,
    typer.Option(
        "--token-file",
        metavar="FILE",
        show_default=False,
        help="A file whose first line is the bearer token clients must send (default: "
        "BUDGETCTL_SERVER_TOKEN). Without one, only loopback is allowed.",
    ),
]


@shared_options(project=False, as_json=False, prices=True)
def serve(
    opts: CommonOptions,
    host: Host = "127.0.0.1",
    port: Port = 8787,
    token_file: TokenFile = None,
) -> None:
    """Serve the data dir (or the database) over HTTP: budgetctl's /v1 API and LiteLLM's
    hosted budget protocol. Stops on SIGTERM after the requests in flight finish.

    Example: budgetctl serve --host 0.0.0.0 --port 8787 --token-file /etc/budgetctl/token
    """
    from budgetctl.server.security import check_bind, load_token

    token = load_token(token_file)
    check_bind(host, token)
    try:
        from budgetctl.server.app import serve as run
    except ImportError as exc:
        raise UsageError(
            f"budgetctl serve needs the server extra ({exc.name} is missing): "
            "pip install 'budgetctl[server]'"
        ) from None
    from budgetctl.server.stores import Backend

    backend = Backend(opts.data_dir, opts.database_url, opts.prices)
    if backend.database_url is not None:
        backend.database().check_schema()  # a database without tables: say so now, exit 1
        backend.close()
    run(backend, host=host, port=port, token=token)
