"""The WebSocket ``/ws``: authentication, limits, frames and flows per ``x-websocket``.

A refused handshake closes before accepting, which ASGI servers turn into
HTTP 403; nothing about the user is revealed before the token checks out.
After accept, every outbound frame goes through one queue and one writer
task, so agent events, acks, errors and the final close keep their order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from chatcontract.reference.agent import AGENTS, AgentSpec
from chatcontract.reference.faults import WS_REJECTS_ALL
from chatcontract.reference.problems import problem
from chatcontract.reference.ratelimit import RateLimiter
from chatcontract.reference.runs import Delivery
from chatcontract.reference.services import Services
from chatcontract.reference.store import new_id, utc_now
from chatcontract.reference.streams import DEFAULT_AGENT
from chatcontract.reference.tokens import Principal, TokenError, bearer_from_header

__all__ = [
    "ANONYMOUS_USER",
    "SUBPROTOCOL",
    "TOKEN_PREFIX",
    "websocket_endpoint",
]

SUBPROTOCOL = "jwt-auth"
TOKEN_PREFIX = "jwt."
ANONYMOUS_USER = "anonymous"
_HISTORY_DEFAULT = 50
_log = logging.getLogger("chatcontract.reference")


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


def _subprotocol_token(offered: list[str]) -> str | None:
    if SUBPROTOCOL not in offered:
        return None
    for candidate in offered:
        if candidate.startswith(TOKEN_PREFIX):
            encoded = candidate.removeprefix(TOKEN_PREFIX)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


def _authenticate(websocket: WebSocket, services: Services) -> Principal | None:
    """The principal of a handshake, or None to refuse it."""
    faults = services.faults
    if WS_REJECTS_ALL in faults:
        return None
    query_token = websocket.query_params.get("token")
    if query_token is not None and "ws-accepts-query-token" not in faults:
        # Tokens in URLs end up in access logs and proxies; refuse even if a
        # proper carrier is present too, so clients notice and stop doing it.
        return None
    offered = list(websocket.scope.get("subprotocols", []))
    token = (
        bearer_from_header(websocket.headers.get("authorization"))
        or _subprotocol_token(offered)
        or query_token
    )
    if token is None:
        if "ws-accepts-no-token" in faults:
            return Principal(ANONYMOUS_USER, None)
        return None
    try:
        return services.authenticate(token, websocket=True)
    except TokenError:
        return None


async def _refuse(websocket: WebSocket) -> None:
    """Refuse the handshake with HTTP 403, before accepting.

    Where the server supports the ASGI denial-response extension the 403
    carries a problem+json body, as the spec's Forbidden response says;
    otherwise closing before accept makes the server answer a bare 403.
    """
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            problem(403, "a valid bearer token in the Authorization header or subprotocol")
        )
    else:
        await websocket.close(code=1008)


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    principal = _authenticate(websocket, services)
    if principal is None:
        await _refuse(websocket)
        return
    offered = list(websocket.scope.get("subprotocols", []))
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    connections = services.ws_connections[principal.user]
    if len(connections) >= services.ws_limits.connections_per_user:
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code=1008, reason="connection limit reached")
        return
    connection = _Connection(websocket, services, principal)
    connections.add(connection)
    try:
        await websocket.accept(subprotocol=subprotocol)
        await connection.serve()
    finally:
        connections.discard(connection)
        if not connections:
            services.ws_connections.pop(principal.user, None)


class _Connection:
    def __init__(self, websocket: WebSocket, services: Services, principal: Principal) -> None:
        self.websocket = websocket
        self.services = services
        self.principal = principal
        self.connection_id = new_id("conn")
        self.thread_id: str | None = None
        self.closing = False
        self.outbound: asyncio.Queue[Mapping[str, Any] | _Close] = asyncio.Queue()
        limits = services.ws_limits
        self.limiter = RateLimiter(limits.messages_per_minute, 60)

    # the Listener protocol, so runs deliver straight into the outbound queue

    @property
    def user(self) -> str:
        return self.principal.user

    def deliver(self, delivery: Delivery) -> None:
        if delivery.event is not None and not self.closing:
            self.outbound.put_nowait(delivery.event)

    # lifecycle

    async def serve(self) -> None:
        limits = self.services.ws_limits
        self.send(
            {
                "type": "connection_established",
                "connection_id": self.connection_id,
                "user_id": self.user,
                "server_time": utc_now(),
                "heartbeat_interval": max(1, math.ceil(limits.heartbeat_seconds)),
                "max_message_size": limits.max_message_bytes,
            }
        )
        self.services.runs.add_listener(self)
        writer = asyncio.create_task(self._write())
        helpers = [asyncio.create_task(self._heartbeat())]
        if self.principal.expires_at is not None:
            helpers.append(asyncio.create_task(self._expire(self.principal.expires_at)))
        try:
            await self._read()
            if self.closing:
                # Let the writer flush what is queued and send the close frame.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), 5)
        finally:
            self.services.runs.remove_listener(self)
            for task in (writer, *helpers):
                task.cancel()
            for task in (writer, *helpers):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def send(self, frame: Mapping[str, Any]) -> None:
        if not self.closing:
            self.outbound.put_nowait(frame)

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.outbound.put_nowait(_Close(code, reason))

    def error(self, code: str, message: str, client_message_id: str | None = None) -> None:
        frame = {"type": "error", "error_code": code, "message": message}
        if client_message_id is not None:
            frame["client_message_id"] = client_message_id
        self.send(frame)

    async def _write(self) -> None:
        try:
            while True:
                item = await self.outbound.get()
                if isinstance(item, _Close):
                    await self.websocket.close(code=item.code, reason=item.reason)
                    return
                await self.websocket.send_text(json.dumps(item, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client went away mid-write; the reader sees the disconnect.
            return

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.services.ws_limits.heartbeat_seconds)
            self.send({"type": "ping", "timestamp": utc_now()})

    async def _expire(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        self.close(1008, "token expired")

    async def _read(self) -> None:
        max_bytes = self.services.ws_limits.max_message_bytes
        while not self.closing:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.error("FORMAT_ERROR", "binary frames are not supported; send JSON text")
                continue
            size = len(text) if text.isascii() else len(text.encode())
            if size > max_bytes:
                if "ws-drops-oversize" not in self.services.faults:
                    self.close(1009, f"message exceeds {max_bytes} bytes")
                continue
            if not self.limiter.hit("messages").allowed:
                self.error("RATE_LIMITED", "too many messages; slow down")
                continue
            self._handle(text)

    # frames

    def _handle(self, text: str) -> None:
        try:
            frame = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            if "ws-bad-json-1011" in self.services.faults:
                self.close(1011, "invalid JSON")
            else:
                self.error("FORMAT_ERROR", "the message is not valid JSON")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.error("VALIDATION_ERROR", "a frame is a JSON object with a string `type`")
            return
        kind = frame["type"]
        client_id = frame.get("message_id") if isinstance(frame.get("message_id"), str) else None
        validator = self.services.contract.websocket.client_validators.get(kind)
        if validator is None:
            if "ws-acks-unknown-type" in self.services.faults:
                ack = {"type": "message_ack", "message_id": new_id("msg")}
                ack["thread_id"] = self.thread_id or new_id("thread")
                self.send(ack)
            else:
                self.error("UNKNOWN_MESSAGE_TYPE", f"unknown message type {kind!r}", client_id)
            return
        problems = [f"{_where(e.instance_path)}: {e.message}" for e in validator.iter_errors(frame)]
        if problems:
            self.error("VALIDATION_ERROR", "; ".join(problems)[:1000], client_id)
            return
        getattr(self, f"_on_{kind}")(frame, client_id)

    def _owned_thread(self, thread_id: str, client_id: str | None) -> bool:
        if self.services.store.get_thread(thread_id, self.user) is None:
            self.error("THREAD_NOT_FOUND", f"no thread {thread_id}", client_id)
            return False
        return True

    def _thread_for(
        self, frame: Mapping[str, Any], title: str, client_id: str | None
    ) -> str | None:
        thread_id = frame.get("thread_id") or self.thread_id
        if thread_id is None:
            thread_id = self.services.store.create_thread(self.user, title[:80] or "chat").id
        elif not self._owned_thread(thread_id, client_id):
            return None
        self.thread_id = thread_id
        return str(thread_id)

    def _start_run(self, agent: AgentSpec, message: str, thread_id: str) -> None:
        runs = self.services.runs
        run = runs.create(self.user, agent, message, thread_id)
        runs.follow(run, self)
        runs.start(run)

    def _on_user_message(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        content = frame["payload"]["content"]
        thread_id = self._thread_for(frame, content, client_id)
        if thread_id is None:
            return
        message = self.services.store.add_message(thread_id, "user", content)
        ack = {"type": "message_ack", "message_id": message.id, "thread_id": thread_id}
        if client_id is not None:
            ack["client_message_id"] = client_id
        self.send(ack)
        self._start_run(AGENTS[DEFAULT_AGENT], content, thread_id)

    def _on_start_agent(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        payload = frame["payload"]
        agent = AGENTS.get(payload["agent"])
        if agent is None:
            self.error("AGENT_NOT_FOUND", f"no agent {payload['agent']!r}", client_id)
            return
        thread_id = self._thread_for(frame, payload["message"], client_id)
        if thread_id is None:
            return
        self.services.store.add_message(thread_id, "user", payload["message"])
        self._start_run(agent, payload["message"], thread_id)

    def _on_stop_agent(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        run_id = frame["payload"]["run_id"]
        run = self.services.runs.get(run_id, self.user)
        if run is None:
            self.error("RUN_NOT_FOUND", f"no run {run_id}", client_id)
            return
        # Stopping a finished run is a no-op: the client already saw its terminal event.
        self.services.runs.cancel(run)

    def _on_switch_thread(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        thread_id = frame["thread_id"]
        if self._owned_thread(thread_id, client_id):
            self.thread_id = thread_id
            self.send({"type": "thread_switched", "thread_id": thread_id})

    def _on_get_thread_history(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        thread_id = frame["thread_id"]
        if not self._owned_thread(thread_id, client_id):
            return
        limit = frame["payload"].get("limit", _HISTORY_DEFAULT)
        messages = self.services.store.recent_messages(thread_id, limit)
        history = [m.as_json() for m in messages]
        self.send({"type": "thread_history", "thread_id": thread_id, "messages": history})

    def _on_ping(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        self.send({"type": "pong", "timestamp": utc_now()})

    def _on_pong(self, frame: Mapping[str, Any], client_id: str | None) -> None:
        # The answer to our heartbeat needs no reply; dead peers are detected by
        # uvicorn's protocol-level pings, which the contract does not constrain.
        return


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions, not JSON (RFC 8259).
    raise ValueError(f"{name} is not JSON")


def _where(path: list[str | int]) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "/"
