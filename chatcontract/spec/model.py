"""The small frozen model every checker reads.

Schemas in the model are fully resolved (no ``$ref`` left), so checkers can
compile them without knowing where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Correlation",
    "Flow",
    "Operation",
    "OperationKind",
    "OrderRule",
    "Pair",
    "Reaction",
    "SequenceContract",
    "Spec",
    "StreamContract",
    "StreamDeadlines",
    "TokenCarrier",
    "WebSocketContract",
    "WebSocketDeadlines",
    "WebSocketLimits",
]

JSON = Any
Tier = Literal["P1", "P2"]
OperationKind = Literal["rest", "stream", "websocket"]


@dataclass(frozen=True, slots=True)
class Operation:
    """One OpenAPI operation."""

    operation_id: str
    method: str
    path: str
    tier: Tier
    kind: OperationKind
    pointer: str
    security: tuple[tuple[str, ...], ...]
    """Alternatives of required scheme names; ``()`` means public."""
    request_media_types: tuple[str, ...] = ()
    request_body_required: bool = False
    request_example: JSON | None = None
    responses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Status code (or ``default``/``4XX``) -> documented media types."""
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_public(self) -> bool:
        return not self.security or any(not alt for alt in self.security)

    def documents_status(self, status: int) -> bool:
        codes = self.responses
        return str(status) in codes or f"{str(status)[0]}XX" in codes or "default" in codes


@dataclass(frozen=True, slots=True)
class StreamDeadlines:
    connect: float = 5.0
    first_event: float = 10.0
    idle: float = 30.0
    total: float = 120.0


@dataclass(frozen=True, slots=True)
class StreamContract:
    """A ``text/event-stream`` operation with its per-event schemas."""

    operation: Operation
    item_schema: Mapping[str, JSON]
    event_type_from: Literal["event", "data"]
    discriminator: str
    event_schemas: Mapping[str, Mapping[str, JSON]]
    """Event type -> schema of the decoded JSON ``data`` of that event."""
    sequences: tuple[str, ...]
    deadlines: StreamDeadlines
    heartbeat_seconds: float | None
    max_events: int
    resume_header: str | None
    success_status: int = 200


@dataclass(frozen=True, slots=True)
class Pair:
    open: str
    close: str
    key: str


@dataclass(frozen=True, slots=True)
class OrderRule:
    event: str
    after: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Correlation:
    pointer: str
    source: Literal["consistent", "request"]
    request_pointer: str | None = None


@dataclass(frozen=True, slots=True)
class SequenceContract:
    """A conversation rule over typed events, independent of transport."""

    name: str
    events: tuple[str, ...]
    terminal: tuple[str, ...]
    first: tuple[str, ...] = ()
    pairs: tuple[Pair, ...] = ()
    order: tuple[OrderRule, ...] = ()
    correlate: tuple[Correlation, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class TokenCarrier:
    """Where a token travels: ``header`` (name, scheme), ``subprotocol``
    (protocol, token-prefix, encoding), ``query`` or ``cookie`` (name)."""

    kind: Literal["header", "subprotocol", "query", "cookie"]
    name: str | None = None
    scheme: str | None = None
    protocol: str | None = None
    token_prefix: str = ""
    encoding: Literal["plain", "base64url-nopad"] = "plain"

    @property
    def label(self) -> str:
        if self.kind == "subprotocol":
            return f"subprotocol {self.protocol}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Reaction:
    """The required reaction to bad input: an error frame or a close code."""

    error_code: str | None = None
    close_code: int | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    send: str
    example: Mapping[str, JSON] | None = None
    needs_thread: bool = False
    expect_first: str | None = None
    expect_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    max_message_bytes: int | None = None
    connections_per_user: int | None = None
    messages_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class WebSocketDeadlines:
    handshake: float = 5.0
    first_frame: float = 5.0
    idle: float = 30.0
    total: float = 120.0


@dataclass(frozen=True, slots=True)
class WebSocketContract:
    """The executable contract of one WebSocket endpoint (``x-websocket``)."""

    operation: Operation
    carriers: tuple[TokenCarrier, ...]
    forbidden_carriers: tuple[TokenCarrier, ...]
    rejection_statuses: tuple[int, ...]
    close_after_accept_code: int | None
    close_after_accept_severity: Literal["warning", "failure"]
    claims: Mapping[str, str]
    expiry_close_code: int | None
    origin_allowlist: tuple[str, ...] | None
    origin_rejection_status: int | None
    welcome_type: str | None
    discriminator: str
    client_schemas: Mapping[str, Mapping[str, JSON]]
    server_schemas: Mapping[str, Mapping[str, JSON]]
    flows: tuple[Flow, ...]
    limits: WebSocketLimits
    heartbeat_interval: float | None
    heartbeat_ping: str | None
    heartbeat_pong: str | None
    on_invalid_input: Mapping[str, Reaction]
    deadlines: WebSocketDeadlines

    @property
    def path(self) -> str:
        return self.operation.path


@dataclass(frozen=True, slots=True)
class Spec:
    """A loaded, validated spec."""

    source: str
    document: Mapping[str, JSON]
    """The document as parsed, ``$ref``s intact (what schemathesis and openapi-core get)."""
    title: str
    version: str
    openapi: str
    operations: tuple[Operation, ...]
    streams: tuple[StreamContract, ...]
    websockets: tuple[WebSocketContract, ...]
    sequences: Mapping[str, SequenceContract]
    token_url: str | None
    security_schemes: Mapping[str, Mapping[str, JSON]]

    @property
    def rest_operations(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.kind == "rest")

    def operation(self, key: str) -> Operation:
        """Find an operation by operationId or by label (``"GET /api/threads"``)."""
        for op in self.operations:
            if key in (op.operation_id, op.label):
                return op
        raise KeyError(key)

    def stream(self, key: str) -> StreamContract:
        for stream in self.streams:
            if key in (stream.operation.operation_id, stream.operation.label):
                return stream
        raise KeyError(key)
