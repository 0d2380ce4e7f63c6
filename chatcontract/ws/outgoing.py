"""What we send: every client frame fresh, built from the spec and made unique per send.

A flow's frame is its example when the client schema accepts it, else one
instance generated from that schema by schemathesis (``allOf``, ``oneOf`` and
inlined ``$ref`` included; :func:`chatcontract.bodies.generate_instance`).
Before each send, the fields ``x-websocket.messages.unique`` names (message ids,
timestamps) get new values their schema accepts: a server that discards a
repeated message id answers the second run of a flow, and every fuzz barrier,
as it answered the first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from chatcontract.bodies import generate_instance
from chatcontract.spec import Flow, WebSocketContract
from chatcontract.ws.frames import FrameValidator, fresh, with_value

__all__ = ["base_frame", "fresh_flow_frame"]


def base_frame(
    contract: WebSocketContract, validator: FrameValidator, flow: Flow
) -> dict[str, Any]:
    """The flow's example when its client schema accepts it, else one generated from the
    schema; the bare ``{discriminator: type}`` when neither gives a valid frame."""
    example = dict(flow.example) if flow.example is not None else None
    if example is not None and validator.check_client(example).ok:
        return copy.deepcopy(example)
    schema = contract.client_schemas.get(flow.send)
    generated = generate_instance(schema) if isinstance(schema, Mapping) else None
    if isinstance(generated, dict):
        generated = with_value(generated, validator.discriminator, flow.send)
        if validator.check_client(generated).ok:
            return generated
    if example is not None:
        return copy.deepcopy(example)  # the send check then says what is wrong with it
    return with_value({}, validator.discriminator, flow.send)


def fresh_flow_frame(
    contract: WebSocketContract, validator: FrameValidator, flow: Flow
) -> dict[str, Any]:
    """The frame a flow sends now: :func:`base_frame`, made unique by :func:`fresh`."""
    frame: dict[str, Any] = fresh(validator, base_frame(contract, validator, flow))
    return frame
