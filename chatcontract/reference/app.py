"""The reference server as an ASGI app: spec routes, the token endpoint and /ws."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

# rest and streams register their handlers with routing on import.
from chatcontract.reference import rest, streams
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.oauth import TOKEN_PATH, token_endpoint
from chatcontract.reference.problems import problem
from chatcontract.reference.routing import Call, build_routes, handles
from chatcontract.reference.services import Services
from chatcontract.reference.ws import websocket_endpoint

__all__ = [
    "create_app",
]

_log = logging.getLogger("chatcontract.reference")
_REGISTERED = (rest, streams)


@handles("connectWebSocket")
async def plain_http_on_ws(call: Call) -> Response:
    """``GET /ws`` without an upgrade: authenticated, but it is no WebSocket handshake."""
    return problem(
        426,
        "use a WebSocket handshake (Upgrade: websocket) on this path",
        headers={"Upgrade": "websocket"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail, headers=exc.headers, instance=request.url.path)


async def _crash(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error")


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the reference server for ``config`` (defaults: clean, in-memory)."""
    config = config or ServerConfig()
    services = Services.build(config)
    removed = set()
    if "chat-stream-missing" in services.faults:
        removed.add("streamChat")
    if "agents-stream-missing" in services.faults:
        removed.add("streamAgent")
    routes: list[BaseRoute] = [
        Route(TOKEN_PATH, token_endpoint, methods=["POST"]),
        *build_routes(services, skip=frozenset(removed)),
        WebSocketRoute("/ws", websocket_endpoint),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await services.runs.shutdown()
            services.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
        lifespan=lifespan,
    )
    app.state.services = services
    return app
