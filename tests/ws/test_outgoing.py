"""Frames we send that no flow names: heartbeat pongs and isolation probes, built fresh.

A pong is typed where the contract's discriminator says (a JSON pointer puts it
inside the envelope, never in a property named ``/header/msg_type``), generated
from its client schema, and gets new ``unique`` values on every send, like
isolation's messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chatcontract.auth import Anonymous
from chatcontract.spec import Spec, WebSocketContract, load_spec
from chatcontract.ws.client import WsTarget
from chatcontract.ws.isolation import _message

from .helpers import make_ctx, spec_with

KERNEL = load_spec(Path(__file__).parents[1] / "foreign" / "specs" / "kernel_full.yaml")


def _target(contract: WebSocketContract, spec: Spec) -> WsTarget:
    return WsTarget.of(make_ctx("http://127.0.0.1:9", Anonymous(), spec=spec), contract)


def test_a_pong_is_typed_at_the_discriminator_pointer_and_fresh_each_time() -> None:
    # The kernel protocol answers with a client frame of its own kind; any client type will do.
    contract = dataclasses.replace(
        KERNEL.websockets[0], heartbeat_ping="status", heartbeat_pong="kernel_info_request"
    )
    target = _target(contract, KERNEL)
    first, second = target.pong(), target.pong()
    assert "/header/msg_type" not in first
    assert first["header"]["msg_type"] == "kernel_info_request"
    assert target.validator.check_client(first).ok, target.validator.check_client(first).problems
    assert target.validator.check_client(second).ok
    assert first["header"]["msg_id"] != second["header"]["msg_id"]


def test_a_pong_by_property_name_is_that_property() -> None:
    spec = spec_with()
    target = _target(spec.websockets[0], spec)
    assert target.pong()["type"] == spec.websockets[0].heartbeat_pong


def test_isolation_messages_get_new_unique_values_on_every_send() -> None:
    spec = spec_with(unique=("/message_id",))
    target = _target(spec.websockets[0], spec)
    party: Any = SimpleNamespace(canary="canary-0123")  # _message reads only the canary
    made = [_message(target, party) for _ in range(2)]
    frames = [found[1] for found in made if found is not None]
    assert len(frames) == 2
    assert frames[0]["message_id"] != frames[1]["message_id"]
    assert all("canary-0123" in frame["payload"]["content"] for frame in frames)


def test_after_a_failed_send_the_buffered_frames_are_read_then_the_end() -> None:
    """A frame sent on a connection the server already ended is counted as a failed
    send; :meth:`Socket.drain` then reads what was still buffered (each frame judged)
    and returns the end, never a stale frame in its place."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from chatcontract.ws.client import Closed, open_socket, present

    from ..rest.servers import serving

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "pong"})
        await websocket.close(4000)

    spec = spec_with()
    contract = dataclasses.replace(spec.websockets[0], welcome_type=None, carriers=())
    spec = dataclasses.replace(spec, websockets=(contract,))

    async def scenario(url: str) -> tuple[int, object, int]:
        target = WsTarget.of(make_ctx(url, Anonymous(), spec=spec), contract)
        transcript = target.transcript()
        sock = await open_socket(target, present(target.url, None, None), transcript)
        await sock.conn.wait_closed()
        await sock.send_frame({"type": "ping"})
        end = await sock.drain()
        return sock.send_failures, end, sock.count

    with serving(Starlette(routes=[WebSocketRoute("/ws", ws)])) as url:
        failures, end, frames = asyncio.run(scenario(url))
    assert failures == 1
    assert isinstance(end, Closed)
    assert end.code == 4000
    assert frames == 1
