"""Tokens that travel inside the first message (``auth.carriers: {in: message}``).

Some protocols authenticate after the upgrade: graphql-transport-ws sends
``connection_init`` with the token in its payload and waits for
``connection_ack``. :func:`message_presented` builds that first frame (from
the frame type's schema or a generated instance, the token at the carrier's
pointer) and offers the carrier's subprotocol on the handshake; the
connection sends :attr:`MessagePresented.init` before it waits for the
welcome frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chatcontract.spec import Flow, TokenCarrier, WebSocketContract
from chatcontract.ws.client import Presented
from chatcontract.ws.frames import FrameValidator, with_value, without
from chatcontract.ws.outgoing import base_frame

__all__ = ["MessagePresented", "init_frame", "message_presented"]


@dataclass(frozen=True, slots=True)
class MessagePresented(Presented):
    """A handshake whose token goes in the first frame, sent right after the 101."""

    init: str = ""


def init_frame(
    contract: WebSocketContract,
    validator: FrameValidator,
    carrier: TokenCarrier,
    token: str | None,
) -> str:
    """The carrier's first frame as JSON text, with ``token`` at the carrier's pointer
    (``None``: the frame without a token there)."""
    kind = carrier.type or ""
    frame = base_frame(contract, validator, Flow(name=f"auth:{kind}", send=kind))
    pointer = carrier.pointer or "/token"
    frame = with_value(frame, pointer, token) if token is not None else without(frame, pointer)
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def message_presented(
    contract: WebSocketContract,
    validator: FrameValidator,
    url: str,
    carrier: TokenCarrier,
    token: str | None,
    origin: str | None,
) -> MessagePresented:
    protocols = (carrier.protocol,) if carrier.protocol else ()
    return MessagePresented(
        "message",
        url,
        subprotocols=protocols,
        expected_subprotocol=carrier.protocol,
        origin=origin,
        carrier=carrier,
        init=init_frame(contract, validator, carrier, token),
    )
