"""Real WebSocket protocols chatcontract did not design (issue #12, part 2).

* :func:`kernel_full_app` (``specs/kernel_full.yaml``): a notebook kernel with
  the Jupyter wire envelope: the type at ``/header/msg_type``, replies naming
  the request in ``/parent_header/msg_id``, two logical channels (``shell``
  for replies, ``iopub`` for status and output) interleaved on one socket,
  status chatter before anything is asked, and every repeated ``msg_id``
  silently discarded. The server pings at the WebSocket level (uvicorn's
  ``ws_ping_interval``, see :func:`serving_with_pings`).
* :func:`graphql_ws_app` (``specs/graphql_ws.yaml``): GraphQL over WebSocket,
  the ``graphql-transport-ws`` subprotocol: ``connection_init`` carries the
  token in its payload, ``subscribe`` / ``next`` / ``complete`` share an ``id``,
  and protocol errors close the connection with 4400 / 4403 / 4409.
* :func:`event_api_app` (``specs/event_api.yaml``): an event API in the style
  of realtime model APIs: every client event carries an ``event_id``, server
  events name it in ``client_event_id``, a repeated ``event_id`` is an error,
  and ``rate_limits.updated`` arrives unasked.

Each takes one optional *fault*: the one way it breaks its contract.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..rest.servers import serving

__all__ = [
    "EVENT_FAULTS",
    "EVENT_TOKEN",
    "GRAPHQL_FAULTS",
    "GRAPHQL_TOKEN",
    "KERNEL_FAULTS",
    "KERNEL_TOKEN",
    "event_api_app",
    "graphql_ws_app",
    "kernel_full_app",
    "serving_with_pings",
]

KERNEL_TOKEN = "0c6f2a9e4b8d47c1a2e5f8b1d4c7e0a3b6d9f2c5e8a1b4d7"
GRAPHQL_TOKEN = "gql-7d1e9a4c2b6f"
EVENT_TOKEN = "sk-events-3b9c1d7e5f2a"
KERNEL_FAULTS = {
    "idle-early": "status idle is sent before execute_result, ending the run early",
    "crash-on-non-object": "a frame that is no JSON object kills the handler, as in Jupyter",
}
GRAPHQL_FAULTS = {
    "complete-twice": "a subscription's complete is sent twice",
    "anonymous-init": "connection_init without a token is acknowledged",
}
EVENT_FAULTS = {
    "done-twice": "response.done is sent twice for one response.create",
    "quiet": "no session.created: the server says nothing until asked (a clean variant)",
    "any-token": "any bearer token opens the channel",
}


def serving_with_pings(app: Any, ping_interval: float | None = None) -> Any:
    """Serve ``app`` on 127.0.0.1, port 0, with uvicorn sending WebSocket pings."""
    return serving(
        app, ws_ping_interval=ping_interval, ws_ping_timeout=5.0 if ping_interval else None
    )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _loads(message: dict[str, Any]) -> Any:
    try:
        return json.loads(message.get("text") or "")
    except ValueError:
        return None


def _status(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# --- (a) the kernel -------------------------------------------------------------------


def kernel_full_app(fault: str | None = None) -> Starlette:
    """The kernel of ``specs/kernel_full.yaml``; msg_ids are remembered across connections."""
    if fault is not None and fault not in KERNEL_FAULTS:
        raise ValueError(f"unknown fault {fault!r}")
    seen_ids: set[str] = set()
    lock = threading.Lock()
    counter = {"execution": 0}

    def message(kind: str, channel: str, parent: str | None, content: dict[str, Any]) -> str:
        return json.dumps(
            {
                "header": {"msg_id": uuid.uuid4().hex, "msg_type": kind, "date": _now()},
                "parent_header": {"msg_id": parent} if parent else {},
                "metadata": {},
                "content": content,
                "channel": channel,
            }
        )

    def status(state: str, parent: str | None) -> str:
        return message("status", "iopub", parent, {"execution_state": state})

    def answer(kind: str, parent: str, content: Any) -> list[str] | None:
        if kind == "kernel_info_request":
            info = {"status": "ok", "protocol_version": "5.3", "implementation": "cckernel"}
            return [
                status("busy", parent),
                message("kernel_info_reply", "shell", parent, info),
                status("idle", parent),
            ]
        if kind != "execute_request" or not isinstance(content, dict):
            return None
        code = content.get("code")
        if not isinstance(code, str):
            return None
        with lock:
            counter["execution"] += 1
            count = counter["execution"]
        output = [
            status("busy", parent),
            message("execute_input", "iopub", parent, {"code": code, "execution_count": count}),
            # The shell reply overtakes the iopub output: the channels are independent.
            message("execute_reply", "shell", parent, {"status": "ok", "execution_count": count}),
            message(
                "execute_result",
                "iopub",
                parent,
                {"data": {"text/plain": code[:200]}, "execution_count": count},
            ),
            status("idle", parent),
        ]
        if fault == "idle-early":
            output[3], output[4] = output[4], output[3]
        return output

    async def channels(websocket: WebSocket) -> None:
        scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "token" or token.strip() != KERNEL_TOKEN:
            await websocket.send_denial_response(JSONResponse({"message": "Forbidden"}, 403))
            return
        await websocket.accept()
        await websocket.send_text(status("starting", None))
        await websocket.send_text(status("idle", None))
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    return
                value = _loads(received)
                if fault == "crash-on-non-object" and not isinstance(value, dict):
                    raise RuntimeError(f"{type(value).__name__!r} object has no attribute 'pop'")
                header = value.get("header") if isinstance(value, dict) else None
                if not isinstance(header, dict) or not isinstance(header.get("msg_id"), str):
                    continue  # the kernel logs a bad message and carries on
                msg_id = header["msg_id"]
                with lock:
                    if msg_id in seen_ids:
                        continue  # a repeated msg_id is a replay: discarded without a word
                    seen_ids.add(msg_id)
                kind = header.get("msg_type")
                output = (
                    answer(kind, msg_id, value.get("content")) if isinstance(kind, str) else None
                )
                for text in output or ():
                    await websocket.send_text(text)
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/api/status", _status),
            WebSocketRoute("/api/kernel/channels", channels),
        ]
    )


# --- (b) GraphQL over WebSocket -------------------------------------------------------


_GRAPHQL_TYPES = {"connection_init", "ping", "pong", "subscribe", "complete"}


def _valid_graphql(value: Any) -> bool:
    """graphql-ws's own message validation: a known type and the fields it needs."""
    if not isinstance(value, dict) or value.get("type") not in _GRAPHQL_TYPES:
        return False
    payload = value.get("payload")
    if value["type"] in ("connection_init", "ping", "pong"):
        return payload is None or isinstance(payload, dict)
    if not isinstance(value.get("id"), str) or not value["id"]:
        return False
    if value["type"] == "subscribe":
        return isinstance(payload, dict) and isinstance(payload.get("query"), str)
    return True


def graphql_ws_app(fault: str | None = None) -> Starlette:
    """``graphql-transport-ws``: init with a token, then subscriptions by id."""
    if fault is not None and fault not in GRAPHQL_FAULTS:
        raise ValueError(f"unknown fault {fault!r}")

    async def graphql(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        if "graphql-transport-ws" not in offered:
            await websocket.send_denial_response(JSONResponse({"message": "subprotocol"}, 400))
            return
        await websocket.accept(subprotocol="graphql-transport-ws")
        acknowledged = False
        active: set[str] = set()
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    return
                value = _loads(received)
                if not _valid_graphql(value):
                    await websocket.close(4400, "Invalid message")
                    return
                kind = value["type"]
                if kind == "connection_init":
                    payload = value.get("payload")
                    token = payload.get("token") if isinstance(payload, dict) else None
                    if acknowledged:
                        await websocket.close(4429, "Too many initialisation requests")
                        return
                    if token != GRAPHQL_TOKEN and not (fault == "anonymous-init" and token is None):
                        await websocket.close(4403, "Forbidden")
                        return
                    acknowledged = True
                    await websocket.send_json({"type": "connection_ack"})
                elif kind == "ping":
                    await websocket.send_json({"type": "pong"})
                elif kind == "pong":
                    continue
                elif not acknowledged:
                    await websocket.close(4401, "Unauthorized")
                    return
                elif kind == "subscribe":
                    sub = value.get("id")
                    payload = value.get("payload")
                    query = payload.get("query") if isinstance(payload, dict) else None
                    if not isinstance(sub, str) or not isinstance(query, str):
                        await websocket.close(4400, "Invalid message")
                        return
                    if sub in active:
                        await websocket.close(4409, f"Subscriber for {sub} already exists")
                        return
                    active.add(sub)
                    for tick in range(2):
                        data = {"data": {"ticks": tick}}
                        await websocket.send_json({"id": sub, "type": "next", "payload": data})
                    await websocket.send_json({"id": sub, "type": "complete"})
                    if fault == "complete-twice":
                        await websocket.send_json({"id": sub, "type": "complete"})
                    active.discard(sub)
                elif kind == "complete":
                    active.discard(str(value.get("id")))
                else:
                    await websocket.close(4400, "Invalid message")
                    return
        except WebSocketDisconnect:
            return

    return Starlette(routes=[Route("/api/status", _status), WebSocketRoute("/graphql", graphql)])


# --- (c) the event API ----------------------------------------------------------------

_CLIENT_KEYS = {
    "session.update": ({"type", "event_id", "session"}, {"type", "event_id", "session"}),
    "response.create": ({"type", "event_id"}, {"type", "event_id", "response"}),
}


def event_api_app(fault: str | None = None) -> Starlette:
    """Client events with ``event_id``; server events name it in ``client_event_id``."""
    if fault is not None and fault not in EVENT_FAULTS:
        raise ValueError(f"unknown fault {fault!r}")
    seen_ids: set[str] = set()
    lock = threading.Lock()

    def server_event(kind: str, reply_to: str | None = None, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "event_id": f"evt_{uuid.uuid4().hex[:16]}", **fields}
        if reply_to is not None:
            event["client_event_id"] = reply_to
        return event

    def error(code: str, message: str, reply_to: str | None = None) -> dict[str, Any]:
        return server_event("error", reply_to, error_code=code, message=message)

    def handle(value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            return [error("invalid_event", "an event is an object with a type")]
        kind = value["type"]
        event_id = value.get("event_id")
        if kind not in _CLIENT_KEYS:
            return [error("unknown_event", f"unknown event type {kind[:40]!r}")]
        required, allowed = _CLIENT_KEYS[kind]
        if (
            not isinstance(event_id, str)
            or not 1 <= len(event_id) <= 64
            or not required <= set(value)
            or not set(value) <= allowed
        ):
            return [error("invalid_event", f"{kind} breaks its schema")]
        with lock:
            if event_id in seen_ids:
                return [error("duplicate_event_id", "event_id already used", event_id)]
            seen_ids.add(event_id)
        if kind == "session.update":
            session = value["session"]
            instructions = session.get("instructions") if isinstance(session, dict) else None
            if not isinstance(session, dict) or not isinstance(instructions, str | None):
                return [error("invalid_event", "session.update breaks its schema", event_id)]
            state = {"id": "sess_1", "instructions": instructions or ""}
            return [server_event("session.updated", event_id, session=state)]
        response = value.get("response", {})
        if not isinstance(response, dict):
            return [error("invalid_event", "response.create breaks its schema", event_id)]
        rid = f"resp_{uuid.uuid4().hex[:12]}"
        out = [
            server_event("response.created", event_id, response={"id": rid}),
            server_event("rate_limits.updated", remaining=99),
            server_event("response.delta", event_id, response_id=rid, delta="Hel"),
            server_event("response.delta", event_id, response_id=rid, delta="lo"),
            server_event("response.done", event_id, response={"id": rid, "status": "completed"}),
        ]
        if fault == "done-twice":
            out.append(out[-1])
        return out

    async def events(websocket: WebSocket) -> None:
        authorization = websocket.headers.get("authorization") or ""
        token_ok = authorization == f"Bearer {EVENT_TOKEN}"
        if not (token_ok or (fault == "any-token" and authorization.startswith("Bearer "))):
            await websocket.send_denial_response(JSONResponse({"error": "unauthorized"}, 401))
            return
        await websocket.accept()
        if fault != "quiet":
            await websocket.send_json(server_event("session.created", session={"id": "sess_1"}))
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    return
                text = received.get("text")
                try:
                    value = json.loads(text or "")
                except ValueError:
                    await websocket.send_json(error("invalid_json", "not JSON"))
                    continue
                for event in handle(value):
                    await websocket.send_json(event)
        except WebSocketDisconnect:
            return

    return Starlette(routes=[Route("/api/status", _status), WebSocketRoute("/v1/events", events)])
