"""WebSocket contracts: handshake auth matrix, frames, conversations, hygiene, limits,
isolation and fuzzing over ``websockets``.

Importing :mod:`chatcontract.ws.contracts` registers the ``websocket`` category.
"""

from __future__ import annotations

from chatcontract.ws.client import WsTarget
from chatcontract.ws.frames import FrameValidator, Transcript
from chatcontract.ws.handshake import Access

__all__ = ["Access", "FrameValidator", "Transcript", "WsTarget"]
