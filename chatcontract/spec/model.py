"""The small frozen model every checker reads.

Schemas in the model are fully resolved (no ``$ref`` left), so checkers can
compile them without knowing where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Channel",
    "Correlation",
    "EventKind",
    "EventShape",
    "Flow",
    "FlowCorrelation",
    "Operation",
    "OperationKind",
    "OrderRule",
    "Pair",
    "Reaction",
    "SequenceContract",
    "Spec",
    "StreamContract",
    "StreamDeadlines",
    "Tier",
    "TierSource",
    "TokenCarrier",
    "WebSocketContract",
    "WebSocketDeadlines",
    "WebSocketLimits",
]

JSON = Any
Tier = Literal["P1", "P2"]
TierSource = Literal["spec", "default"]
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
    tier_source: TierSource = "spec"
    """``spec`` when ``x-tier`` set the tier, ``default`` when the operation has none (P1)."""
    request_media_types: tuple[str, ...] = ()
    request_body_required: bool = False
    request_example: JSON | None = None
    request_schema: Mapping[str, JSON] | None = None
    """Schema of the JSON request body, ``$ref``s inlined; None when there is none."""
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
class EventShape:
    """What the spec allows for one kind of SSE event (unnamed: for events no kind names).

    ``json`` and ``text`` are alternatives: an event is valid when its data is JSON
    valid against ``json``, or a string valid against ``text``. ``None`` rules a
    form out; a branch that says nothing about ``data`` has ``text=True``.
    """

    name: str
    json: Mapping[str, JSON] | bool | None = None
    """Schema of the decoded data (``contentMediaType: application/json``)."""
    text: Mapping[str, JSON] | bool | None = None
    """Schema of the data as a plain string (a sentinel such as ``[DONE]``)."""
    dataless: bool = False
    """The spec allows this event with no ``data`` line at all, a block that
    a browser's EventSource never dispatches (the wire still carries it)."""


@dataclass(frozen=True, slots=True)
class StreamContract:
    """A ``text/event-stream`` operation with what the spec says about its events."""

    operation: Operation
    item_schema: Mapping[str, JSON] | None
    """The inlined ``itemSchema``; ``None`` when the spec describes no event."""
    event_type_from: Literal["event", "data"] | None
    """Where an event's type is: the SSE ``event`` field, a property of the JSON
    data (``discriminator``), or nowhere (``None``: events are not typed)."""
    discriminator: str
    kinds: Mapping[str, EventShape]
    """Event type -> what the spec allows for events of that type."""
    sequences: tuple[str, ...]
    deadlines: StreamDeadlines
    heartbeat_seconds: float | None
    max_events: int
    resume_header: str | None
    success_status: int = 200
    sentinels: Mapping[str, str] = field(default_factory=dict)
    """Exact non-JSON data (``[DONE]``) -> the event type it stands for."""
    fallback: EventShape | None = None
    """What events no kind names are validated against (untyped itemSchema branches)."""
    skipped_sequences: tuple[tuple[str, str], ...] = ()
    """``(sequence, reason)`` for each ``x-sequence`` this stream's events cannot be
    judged by (they carry no type); they are not in ``sequences``."""

    @property
    def event_schemas(self) -> Mapping[str, Mapping[str, JSON] | bool]:
        """Event type -> schema of its decoded JSON data, for the types whose data is JSON."""
        return {name: kind.json for name, kind in self.kinds.items() if kind.json is not None}


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
class EventKind:
    """An event type refined by field values: ``status`` whose ``/content/execution_state``
    is ``busy``. Rules name the kind where they would name the type."""

    name: str
    type: str
    where: tuple[tuple[str, JSON], ...] = ()
    """``(JSON pointer, value)``: every one must hold."""


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
    kinds: tuple[EventKind, ...] = ()
    """Refinements of event types; an event matching none is named by its type."""


@dataclass(frozen=True, slots=True)
class TokenCarrier:
    """Where a token travels: ``header`` (name, scheme), ``subprotocol``
    (protocol, token-prefix, encoding), ``query`` or ``cookie`` (name)."""

    kind: Literal["header", "subprotocol", "query", "cookie", "message"]
    name: str | None = None
    scheme: str | None = None
    protocol: str | None = None
    token_prefix: str = ""
    encoding: Literal["plain", "base64url-nopad"] = "plain"
    type: str | None = None
    """``message``: the client frame type that carries the token (``connection_init``)."""
    pointer: str | None = None
    """``message``: where in that frame the token goes (``/payload/token``)."""

    @property
    def label(self) -> str:
        if self.kind == "subprotocol":
            return f"subprotocol {self.protocol}"
        if self.kind == "message":
            return f"message {self.type} {self.pointer}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Reaction:
    """The required reaction to bad input: an error frame, a close code, or ``ignored``
    (the connection stays usable and nothing answers); ``dropped`` says whether ending
    the connection without a close frame is ``forbidden`` (the default) or ``allowed``."""

    error_code: str | None = None
    close_code: int | None = None
    ignored: bool = False
    dropped: Literal["forbidden", "allowed"] = "forbidden"

    @property
    def declared(self) -> bool:
        """Whether the spec requires anything at all of this reaction."""
        return self.error_code is not None or self.close_code is not None or self.ignored


@dataclass(frozen=True, slots=True)
class FlowCorrelation:
    """Which received frames answer the sent one: equal values at the two pointers."""

    sent: str
    received: str


@dataclass(frozen=True, slots=True)
class Channel:
    """The logical channel a flow's expectations live on: frames whose ``pointer`` is ``value``."""

    pointer: str
    value: JSON


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    send: str
    example: Mapping[str, JSON] | None = None
    needs_thread: bool = False
    expect_first: str | None = None
    expect_sequence: str | None = None
    correlate: FlowCorrelation | None = None
    """Only frames answering what was sent are expected frames (others are unsolicited)."""
    channel: Channel | None = None
    """Only frames on this channel are judged by the flow's first and sequence rules."""
    unsolicited: tuple[str, ...] = ()
    """Types that may arrive unasked (status chatter) without breaking the flow."""


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
    unique: tuple[str, ...] = ()
    """JSON pointers into client frames made unique on every send (ids, timestamps)."""
    heartbeat_kind: Literal["message", "ping-frame"] = "message"
    """``ping-frame``: the heartbeat is WebSocket ping control frames, not JSON messages."""
    heartbeat_pong_expected: bool = False
    """``ping-frame``: the server answers our ping frames with pongs."""
    rejection_close_codes: tuple[int, ...] = ()
    """Close codes that refuse a connection after the 101 (a token in a message)."""
    origin_carriers: tuple[str, ...] = ()
    """The carrier kinds (``in``) the Origin rule applies to; empty: all."""
    messages_declared: bool = True
    """``False`` for a GET documenting 101 without ``x-websocket``: only the handshake and
    its auth matrix can be checked (frames have no schema to be judged by)."""
    auth_source: Literal["x-websocket", "security"] = "x-websocket"
    """``security``: carriers and refusal derived from the operation's security scheme."""

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
    warnings: tuple[tuple[str, str], ...] = ()
    """``(JSON pointer, message)`` of what lint could not derive (contracts skipped)."""

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
