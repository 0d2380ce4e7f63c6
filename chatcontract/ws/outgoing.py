"""What we send: every client frame fresh, built from the spec and made unique per send.

A flow's frame is its example, else one instance generated from its client
schema by schemathesis (``allOf``, ``oneOf`` and
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

__all__ = ["base_frame", "fresh_flow_frame", "typed_frame"]


def base_frame(
    contract: WebSocketContract, validator: FrameValidator, flow: Flow
) -> dict[str, Any]:
    """The flow's example; without one, an instance generated from its client schema (the
    bare ``{discriminator: type}`` when none can be). An example the schema refuses is
    kept, so the check that sends it can say so instead of sending something else."""
    if flow.example is not None:
        return copy.deepcopy(dict(flow.example))
    schema = contract.client_schemas.get(flow.send)
    generated = generate_instance(schema) if isinstance(schema, Mapping) else None
    if isinstance(generated, dict):
        generated = with_value(generated, validator.discriminator, flow.send)
        if validator.check_client(generated).ok:
            return generated
    return with_value({}, validator.discriminator, flow.send)


def fresh_flow_frame(
    contract: WebSocketContract, validator: FrameValidator, flow: Flow
) -> dict[str, Any]:
    """The frame a flow sends now: :func:`base_frame`, made unique by :func:`fresh`."""
    frame: dict[str, Any] = fresh(validator, base_frame(contract, validator, flow))
    return frame


def typed_frame(
    contract: WebSocketContract, validator: FrameValidator, kind: str
) -> dict[str, Any]:
    """A frame of type ``kind`` that no flow sends (a heartbeat's pong): generated from its
    client schema, the type set at the discriminator, pointer or name (never
    ``{"<pointer>": kind}``); made unique by the caller with :func:`fresh`."""
    return base_frame(contract, validator, Flow(name=f"frame:{kind}", send=kind))
