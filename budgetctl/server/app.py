"""The ASGI app: the routes of :mod:`.api` and :mod:`.litellm`, ``/healthz`` and
``/openapi.json``, behind the :class:`~.security.Guard`; and :func:`serve`, which runs it with
uvicorn (in-flight requests finish on SIGTERM)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from budgetctl._version import __version__
from budgetctl.cli import jsonout
from budgetctl.core import rules
from budgetctl.errors import BudgetctlError
from budgetctl.server import api, errors, litellm, openapi
from budgetctl.server.fields import BadBody, read_json, take, take_query
from budgetctl.server.security import MAX_BODY, MAX_DOCUMENT, PROJECT_KEY, Guard
from budgetctl.server.stores import Backend

Endpoint = Callable[[Request], Awaitable[Response]]


def answer(data: object, status: int = 200) -> Response:
    """``data`` as JSON, money written from the exact decimal text."""
    return Response(jsonout.dumps(data, indent=0), status, media_type="application/json")


def _failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BudgetctlError)
    status, body = errors.describe(exc)
    if isinstance(exc, BadBody):
        status = 422
    return answer(body, status)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = errors.HTTP_CODES.get(exc.status_code, "error")
    response = answer(errors.error_body(code, str(exc.detail)), exc.status_code)
    response.headers.update(exc.headers or {})
    return response


def _crashed(request: Request, exc: Exception) -> Response:
    """A bug, not the client's doing: a JSON 500 (the traceback goes to uvicorn's log)."""
    body = errors.error_body("internal", f"internal error ({type(exc).__name__}); see the log")
    return answer(body, 500)


def _v1(route: api.Route, backend: Backend) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        params = dict(request.path_params)
        if "project" in params:
            request.scope[PROJECT_KEY] = params["project"][:64]
            rules.check_project_name(params["project"])
        query = take_query(request.query_params, route.query)
        body: dict[str, Any] = {}
        document = b""
        if route.document is not None:  # a whole document (a dump, a user_cost.json), as sent
            document = await request.body()
        elif route.body is not None:
            body = take(read_json(await request.body()), route.body)
        call = api.Call(params, query, body, document)
        status, data = await run_in_threadpool(route.handler, backend, call)
        if isinstance(data, bytes):
            return Response(data, status, media_type=route.answers)
        return answer(data, status)

    return endpoint


LitellmHandler = Callable[[Backend, dict[str, Any]], dict[str, Any]]


def _litellm(handler: LitellmHandler, backend: Backend) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            body = read_json(await request.body())
            if isinstance(body.get("project_name"), str):
                request.scope[PROJECT_KEY] = body["project_name"][:64]
            found = await run_in_threadpool(handler, backend, body)
        except BudgetctlError as exc:  # in the protocol's shape, with budgetctl's error inside
            status, described = errors.describe(exc)
            if isinstance(exc, BadBody):
                status = 422
            return Response(
                json.dumps({"status": "error", "message": exc.message, **described}, default=str),
                status,
                media_type="application/json",
            )
        return Response(json.dumps(found), media_type="application/json")

    return endpoint


def build_app(
    backend: Backend,
    *,
    token: str = "",
    max_body: int = MAX_BODY,
    max_document: int = MAX_DOCUMENT,
    log: TextIO | None = None,
) -> Guard:
    """The whole server as an ASGI app."""
    spec = openapi.document()

    async def healthz(request: Request) -> Response:
        return answer(
            {"status": "ok", "service": "budgetctl", "version": __version__, "store": backend.kind}
        )

    async def openapi_json(request: Request) -> Response:
        return Response(json.dumps(spec), media_type="application/json")

    routes = [
        StarletteRoute("/healthz", healthz, methods=["GET"]),
        StarletteRoute("/openapi.json", openapi_json, methods=["GET"]),
        StarletteRoute("/get_budget", _litellm(litellm.get_budget, backend), methods=["POST"]),
        StarletteRoute("/set_budget", _litellm(litellm.set_budget, backend), methods=["POST"]),
    ]
    by_path: dict[str, list[api.Route]] = {}
    for route in api.ROUTES:
        by_path.setdefault(route.path, []).append(route)
    for path, group in by_path.items():
        # a user or a model may hold '/': the last segment takes the rest of the path
        pattern = path.replace("{user}", "{user:path}").replace("{model}", "{model:path}")
        for route in group:
            # one Starlette route per method, so a wrong method is a 405 listing the right ones
            routes.append(StarletteRoute(pattern, _v1(route, backend), methods=[route.method]))
    app = Starlette(
        routes=routes,
        exception_handlers={
            BudgetctlError: _failed,
            HTTPException: _http_error,
            Exception: _crashed,
        },
    )
    documents = tuple(
        (route.method, re.compile("^" + re.sub(r"{\w+}", "[^/]+", route.path) + "$"))
        for route in api.ROUTES
        if route.document is not None
    )
    return Guard(
        app,
        token=token,
        max_body=max_body,
        max_document=max_document,
        documents=documents,
        log=log,
    )


def serve(
    backend: Backend,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str = "",
    log: TextIO | None = None,
) -> None:
    """Run the server until SIGTERM or SIGINT; requests in flight then finish (uvicorn's graceful
    shutdown), and the store's transactions are never cut."""
    import uvicorn

    config = uvicorn.Config(
        build_app(backend, token=token, log=log),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # the Guard writes one JSON line per request instead
        server_header=False,
        timeout_graceful_shutdown=30,
        lifespan="off",
    )
    sys.stderr.write(
        json.dumps(
            {
                "event": "listening",
                "url": f"http://{host}:{port}",
                "store": backend.kind,
                "token": bool(token),
            }
        )
        + "\n"
    )
    sys.stderr.flush()
    with _signals_left_to_uvicorn():
        uvicorn.Server(config).run()


@contextmanager
def _signals_left_to_uvicorn() -> Iterator[None]:
    """uvicorn stops on SIGTERM/SIGINT and then raises the signal again for the handlers it
    found: the CLI's (which would call a finished server "interrupted") are set aside meanwhile,
    so a server stopped that way exits 0."""
    import signal

    previous = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda signum, frame: None)
    except ValueError:  # not the main thread (tests): uvicorn leaves signals alone there too
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
