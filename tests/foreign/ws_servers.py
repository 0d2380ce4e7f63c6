"""Small real WebSocket servers for foreign specs: an API chatcontract did not design.

:func:`kernel_app` is a notebook-kernel gateway in the style of Jupyter Server
(``specs/kernel.yaml``): ``POST /api/kernels`` starts a kernel, each kernel has
its own channel at ``/api/kernels/{kernel_id}/channels``, and an opaque hex
token travels as ``Authorization: token <hex>`` (``Bearer`` works too, as in
Jupyter Server) or in the ``session`` cookie. Unknown kernels get 404 at the
handshake, missing or wrong tokens 403, a token in the query string counts
for nothing. A cookie login (a browser's) must come from ``KERNEL_ORIGIN``;
a token header needs no Origin. Messages are flat (``msg_type`` at the top level); anything the
kernel does not understand is ignored, as Jupyter does.

The server records what it saw (:class:`Seen`): each handshake's URL and
``Authorization`` scheme, the kernels started and shut down, so a test can
check what chatcontract sent and what it left behind. One optional *fault* is
the one way it breaks its contract; ``open_api`` drops authentication
altogether (a gateway run with ``--IdentityProvider.token=''``).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["KERNEL_FAULTS", "KERNEL_ORIGIN", "KERNEL_TOKEN", "Seen", "kernel_app"]

KERNEL_TOKEN = "5f0c4e9a2b7d41c8a3e6f9b0d2c4e6a8b1d3f5a7c9e0b2d4"
"""The server's one opaque token (48 hex digits, like Jupyter Server's)."""
KERNEL_FAULTS = {
    "garbled-header": "the Authorization header check compares only the token's first 8 digits",
    "shutdown-fails": "DELETE /api/kernels/{kernel_id} answers 500 and the kernel keeps running",
    "start-fails": "POST /api/kernels answers 503: no kernel can be started",
    "origin-unchecked": "a cookie login is accepted from any Origin",
}
KERNEL_ORIGIN = "http://localhost:8888"
"""The one Origin a cookie login (a browser) may come from; token headers need none."""


@dataclass
class Seen:
    """What the server was sent, for the test to check (thread-safe enough: appends only)."""

    handshakes: list[tuple[str, str | None]] = field(default_factory=list)
    """Every handshake to a kernel channel: path and query, and the scheme of its
    ``Authorization`` header (``None`` without one)."""
    started: list[str] = field(default_factory=list)
    shut_down: list[str] = field(default_factory=list)
    kernels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The kernels running now."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _authorized(conn: HTTPConnection, fault: str | None) -> bool:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer"):
        token = token.strip()
        if fault == "garbled-header":
            return len(token) == len(KERNEL_TOKEN) and token[:8] == KERNEL_TOKEN[:8]
        return token == KERNEL_TOKEN
    return conn.cookies.get("session") == KERNEL_TOKEN


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _model(kernel_id: str, seen: Seen) -> dict[str, Any]:
    return {"id": kernel_id, **seen.kernels[kernel_id]}


def kernel_app(seen: Seen, fault: str | None = None, *, open_api: bool = False) -> Starlette:
    """The kernel gateway of ``specs/kernel.yaml``, recording into ``seen``."""
    if fault is not None and fault not in KERNEL_FAULTS:
        raise ValueError(f"unknown fault {fault!r}")

    def allowed(conn: HTTPConnection) -> bool:
        return open_api or _authorized(conn, fault)

    async def kernels(request: Request) -> Response:
        if not allowed(request):
            return _problem(403, "Forbidden")
        if request.method == "GET":
            with seen.lock:
                return JSONResponse([_model(k, seen) for k in seen.kernels])
        if fault == "start-fails":
            return _problem(503, "no kernel can be started")
        body = await request.body()
        name = "python3"
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return _problem(400, "invalid JSON")
            if isinstance(parsed, dict) and parsed.get("name") not in (None, "python3"):
                return _problem(400, "no such kernel spec")
        kernel_id = str(uuid.uuid4())
        with seen.lock:
            seen.kernels[kernel_id] = {"name": name, "execution_state": "idle", "connections": 0}
            seen.started.append(kernel_id)
            return JSONResponse(_model(kernel_id, seen), status_code=201)

    async def kernel(request: Request) -> Response:
        if not allowed(request):
            return _problem(403, "Forbidden")
        kernel_id = request.path_params["kernel_id"]
        with seen.lock:
            if kernel_id not in seen.kernels:
                return _problem(404, f"Kernel does not exist: {kernel_id}")
            if request.method == "GET":
                return JSONResponse(_model(kernel_id, seen))
            if fault == "shutdown-fails":
                return _problem(500, "the kernel did not shut down")
            del seen.kernels[kernel_id]
            seen.shut_down.append(kernel_id)
        return Response(status_code=204)

    async def channels(websocket: WebSocket) -> None:
        query = websocket.scope.get("query_string", b"").decode()
        authorization = websocket.headers.get("authorization")
        scheme = authorization.partition(" ")[0] if authorization is not None else None
        seen.handshakes.append((websocket.url.path + (f"?{query}" if query else ""), scheme))
        if not allowed(websocket):
            await websocket.send_denial_response(_problem(403, "Forbidden"))
            return
        origin = websocket.headers.get("origin")
        by_cookie = not open_api and websocket.headers.get("authorization") is None
        if by_cookie and origin not in (None, KERNEL_ORIGIN) and fault != "origin-unchecked":
            # Like Jupyter's cross-site check: it guards browsers, which log in by cookie.
            await websocket.send_denial_response(_problem(403, "Blocked Origin"))
            return
        kernel_id = websocket.path_params["kernel_id"]
        if kernel_id not in seen.kernels:
            await websocket.send_denial_response(
                _problem(404, f"Kernel does not exist: {kernel_id}")
            )
            return
        await websocket.accept()
        await websocket.send_json({"msg_type": "status", "content": {"execution_state": "idle"}})
        count = 0
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    value = json.loads(message.get("text") or "")
                except ValueError:
                    continue  # Jupyter logs a bad message and carries on
                if not isinstance(value, dict) or not isinstance(value.get("msg_id"), str):
                    continue
                parent = value["msg_id"]
                content = value.get("content")
                if value.get("msg_type") == "kernel_info_request":
                    await websocket.send_json(
                        {
                            "msg_type": "kernel_info_reply",
                            "parent_msg_id": parent,
                            "content": {
                                "status": "ok",
                                "protocol_version": "5.4",
                                "implementation": "chatcontract-kernel",
                            },
                        }
                    )
                elif (
                    value.get("msg_type") == "execute_request"
                    and isinstance(content, dict)
                    and isinstance(content.get("code"), str)
                ):
                    count += 1
                    code = content["code"]
                    for kind, body in (
                        ("execute_input", {"code": code, "execution_count": count}),
                        (
                            "execute_result",
                            {"data": {"text/plain": code}, "execution_count": count},
                        ),
                        ("execute_reply", {"status": "ok", "execution_count": count}),
                    ):
                        await websocket.send_json(
                            {"msg_type": kind, "parent_msg_id": parent, "content": body}
                        )
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/api/kernels", kernels, methods=["GET", "POST"]),
            Route("/api/kernels/{kernel_id}", kernel, methods=["GET", "DELETE"]),
            WebSocketRoute("/api/kernels/{kernel_id}/channels", channels),
        ]
    )
