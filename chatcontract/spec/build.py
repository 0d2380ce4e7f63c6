"""Turning a validated OpenAPI document into the frozen model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from chatcontract.spec.model import (
    Channel,
    Correlation,
    EventKind,
    Flow,
    FlowCorrelation,
    Operation,
    OperationKind,
    OrderRule,
    Pair,
    Reaction,
    SequenceContract,
    Spec,
    StreamContract,
    StreamDeadlines,
    Tier,
    TokenCarrier,
    WebSocketContract,
    WebSocketDeadlines,
    WebSocketLimits,
)
from chatcontract.spec.refs import deref, inline, inline_or_deref, join
from chatcontract.spec.security import DEFAULT_REJECTION, security_carriers
from chatcontract.spec.streams import (
    SSE_MEDIA_TYPE,
    StreamDerivation,
    derive_stream,
    message_discriminator,
    unjudgeable_sequences,
)

__all__ = [
    "DEFAULT_TIER",
    "HTTP_METHODS",
    "SSE_MEDIA_TYPE",
    "build_spec",
    "iter_operations",
]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
DEFAULT_TIER: Tier = "P1"
"""The tier of an operation without ``x-tier``: a spec'd route holds unless it says otherwise."""
JSON = Any


def iter_operations(
    document: Mapping[str, JSON],
) -> Iterator[tuple[str, str, str, dict[str, JSON]]]:
    """Yield ``(path, method, pointer, operation)`` for every operation, path items resolved."""
    paths = document.get("paths") or {}
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if isinstance(item, dict) and isinstance(item.get("$ref"), str):
            item = deref(document, item)
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield path, method, join("/paths", path, method), op


def is_websocket(method: str, op: Mapping[str, JSON]) -> bool:
    """An upgrade operation: ``x-websocket``, or (standard HTTP) a GET documenting 101."""
    responses = op.get("responses")
    return "x-websocket" in op or (
        method.lower() == "get" and isinstance(responses, dict) and "101" in map(str, responses)
    )


def _responses(document: Mapping[str, JSON], op: Mapping[str, JSON]) -> dict[str, JSON]:
    raw = op.get("responses") or {}
    found = {str(code): deref(document, resp) for code, resp in raw.items()}
    return {code: resp if isinstance(resp, dict) else {} for code, resp in found.items()}


def _seconds(raw: Mapping[str, JSON], key: str, default: float) -> float:
    value = raw.get(key)
    return float(value) if isinstance(value, int | float) else default


def _sequence(name: str, raw: Mapping[str, JSON]) -> SequenceContract:
    return SequenceContract(
        name=name,
        description=str(raw.get("description", "")).strip(),
        events=tuple(raw.get("events", ())),
        first=tuple(raw.get("first", ())),
        terminal=tuple(raw.get("terminal", ())),
        pairs=tuple(Pair(p["open"], p["close"], p["key"]) for p in raw.get("pairs", ())),
        order=tuple(OrderRule(o["event"], tuple(o["after"])) for o in raw.get("order", ())),
        correlate=tuple(
            Correlation(c["pointer"], c["source"], c.get("request-pointer"))
            for c in raw.get("correlate", ())
        ),
        kinds=tuple(
            EventKind(name, k["type"], tuple((k.get("where") or {}).items()))
            for name, k in (raw.get("kinds") or {}).items()
        ),
    )


def _carrier(raw: Mapping[str, JSON]) -> TokenCarrier:
    return TokenCarrier(
        kind=raw["in"],
        name=raw.get("name"),
        scheme=raw.get("scheme"),
        protocol=raw.get("protocol"),
        token_prefix=raw.get("token-prefix", ""),
        encoding=raw.get("encoding", "plain"),
        type=raw.get("type"),
        pointer=raw.get("pointer"),
    )


def _reaction(raw: Mapping[str, JSON]) -> Reaction:
    return Reaction(
        error_code=raw.get("error-code"),
        close_code=raw.get("close-code"),
        ignored=bool(raw.get("ignored", False)),
        dropped=raw.get("dropped", "forbidden"),
    )


def _flow(raw: Mapping[str, JSON]) -> Flow:
    correlate = raw.get("correlate")
    channel = raw.get("channel")
    return Flow(
        name=raw["name"],
        send=raw["send"],
        example=raw.get("example"),
        needs_thread=bool(raw.get("needs-thread", False)),
        expect_first=raw.get("expect-first"),
        expect_sequence=raw.get("expect-sequence"),
        correlate=FlowCorrelation(correlate["sent"], correlate["received"]) if correlate else None,
        channel=Channel(channel["pointer"], channel["value"]) if channel else None,
        unsolicited=tuple(raw.get("unsolicited", ())),
    )


def _websocket(
    document: Mapping[str, JSON],
    op: Operation,
    raw: JSON,
    schemes: Mapping[str, Mapping[str, JSON]],
) -> WebSocketContract:
    ws = inline(document, raw)
    auth = ws.get("auth") or {}
    # Without x-websocket.auth (or a part of it) the standard parts say it: the carriers
    # from the operation's security scheme, the refusal from its documented 401/403.
    derived = "carriers" not in auth
    if derived:
        carriers = () if op.is_public else security_carriers(schemes, op.security)
    else:
        carriers = tuple(_carrier(c) for c in auth["carriers"])
    rejection: Mapping[str, JSON] = auth.get("rejection") or {
        "status": [s for s in DEFAULT_REJECTION if op.documents_status(s)] or DEFAULT_REJECTION
    }
    after = auth.get("close-after-accept") or {}
    origin = ws.get("origin")
    # No x-websocket at all (a GET documenting 101): the handshake is all the spec says.
    declared = "messages" in ws
    messages: Mapping[str, JSON] = ws.get("messages") or {"client": {}, "server": {}}
    limits = ws.get("limits") or {}
    heartbeat = ws.get("heartbeat") or {}
    deadlines = ws.get("deadlines") or {}
    reactions = {kind: _reaction(r) for kind, r in (ws.get("on-invalid-input") or {}).items()}
    flows = tuple(_flow(f) for f in ws.get("flows", ()))
    return WebSocketContract(
        operation=op,
        carriers=carriers,
        forbidden_carriers=tuple(_carrier(c) for c in auth.get("forbidden-carriers", ())),
        rejection_statuses=tuple(rejection.get("status", ())),
        rejection_close_codes=tuple(rejection.get("close", ())),
        auth_source="security" if derived else "x-websocket",
        close_after_accept_code=after.get("code"),
        close_after_accept_severity=after.get("severity", "warning"),
        claims=dict(auth.get("claims") or {}),
        expiry_close_code=(auth.get("expiry") or {}).get("close-code"),
        origin_allowlist=tuple(origin["allow"]) if origin else None,
        origin_rejection_status=origin.get("rejection-status", 403) if origin else None,
        origin_carriers=tuple(origin.get("carriers", ())) if origin else (),
        welcome_type=(ws.get("welcome") or {}).get("type"),
        discriminator=message_discriminator(messages),
        client_schemas=dict(messages["client"]),
        server_schemas=dict(messages["server"]),
        flows=flows,
        limits=WebSocketLimits(
            max_message_bytes=limits.get("max-message-bytes"),
            connections_per_user=limits.get("connections-per-user"),
            messages_per_minute=limits.get("messages-per-minute"),
        ),
        heartbeat_interval=heartbeat.get("interval-seconds"),
        heartbeat_ping=heartbeat.get("ping"),
        heartbeat_pong=heartbeat.get("pong"),
        heartbeat_kind=heartbeat.get("kind", "message"),
        heartbeat_pong_expected=bool(heartbeat.get("pong-expected", False)),
        unique=tuple(messages.get("unique", ())),
        messages_declared=declared,
        on_invalid_input=reactions,
        deadlines=WebSocketDeadlines(
            handshake=_seconds(deadlines, "handshake-seconds", 5.0),
            first_frame=_seconds(deadlines, "first-frame-seconds", 5.0),
            idle=_seconds(deadlines, "idle-seconds", 30.0),
            total=_seconds(deadlines, "total-seconds", 120.0),
        ),
    )


def _request_example(document: Mapping[str, JSON], op: Mapping[str, JSON]) -> JSON | None:
    body = inline_or_deref(document, op.get("requestBody") or {})
    for media in (body.get("content") or {}).values():
        if not isinstance(media, dict):
            continue
        if "example" in media:
            return media["example"]
        for example in (media.get("examples") or {}).values():
            if isinstance(example, dict) and "value" in example:
                return example["value"]
        schema = media.get("schema") or {}
        if isinstance(schema, dict) and "example" in schema:
            return schema["example"]
    return None


def _json_schema(body: Mapping[str, JSON]) -> Mapping[str, JSON] | None:
    """The schema of an (inlined) request body's JSON content, if it has one."""
    for media, content in (body.get("content") or {}).items():
        if (media == "application/json" or media.endswith("+json")) and isinstance(content, dict):
            schema = content.get("schema")
            if isinstance(schema, dict):
                return schema
    return None


def _sequence_names(raw: JSON) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    return tuple(raw or ())


def _stream(
    op: Operation,
    raw: Mapping[str, JSON],
    derived: StreamDerivation,
    sequences: Mapping[str, SequenceContract],
) -> StreamContract:
    settings = raw.get("x-stream") or {}
    deadlines = settings.get("deadlines") or {}
    names = tuple(n for n in _sequence_names(raw.get("x-sequence")) if n in sequences)
    skipped = unjudgeable_sequences(
        derived, names, {name: sequences[name].events for name in names}
    )
    dropped = {name for name, _ in skipped}
    return StreamContract(
        operation=op,
        item_schema=derived.item_schema,
        event_type_from=derived.type_from,
        discriminator=derived.discriminator,
        kinds=dict(derived.kinds),
        sequences=tuple(n for n in names if n not in dropped),
        deadlines=StreamDeadlines(
            connect=_seconds(deadlines, "connect-seconds", 5.0),
            first_event=_seconds(deadlines, "first-event-seconds", 10.0),
            idle=_seconds(deadlines, "idle-seconds", 30.0),
            total=_seconds(deadlines, "total-seconds", 120.0),
        ),
        heartbeat_seconds=settings.get("heartbeat-seconds"),
        max_events=int(settings.get("max-events", 10_000)),
        resume_header=(settings.get("resume") or {}).get("header"),
        success_status=derived.status,
        sentinels=dict(derived.sentinels),
        fallback=derived.fallback,
        skipped_sequences=tuple(skipped),
    )


def build_spec(
    where: str, document: Mapping[str, JSON], warnings: tuple[tuple[str, str], ...] = ()
) -> Spec:
    """Build the model from a document that already passed :func:`lint_document`.

    ``warnings`` are lint's ``(pointer, message)`` warnings, kept on the model.
    """
    components = document.get("components") or {}
    sequences = {
        name: _sequence(name, raw) for name, raw in (components.get("x-sequences") or {}).items()
    }
    schemes = {
        name: inline(document, scheme)
        for name, scheme in (components.get("securitySchemes") or {}).items()
    }
    default_security = document.get("security", [])
    operations: list[Operation] = []
    streams: list[StreamContract] = []
    websockets: list[WebSocketContract] = []
    for path, method, pointer, raw in iter_operations(document):
        responses = _responses(document, raw)
        label = f"{method.upper()} {path}"
        upgrade = is_websocket(method, raw)
        derived = None if upgrade else derive_stream(document, raw, pointer, label)
        kind: OperationKind = "websocket" if upgrade else "stream" if derived else "rest"
        body = inline_or_deref(document, raw.get("requestBody") or {})
        security = raw.get("security", default_security)
        op = Operation(
            operation_id=raw.get("operationId") or f"{method}_{path}",
            method=method.upper(),
            path=path,
            tier=raw.get("x-tier", DEFAULT_TIER),
            tier_source="spec" if "x-tier" in raw else "default",
            kind=kind,
            pointer=pointer,
            security=tuple(tuple(alt) for alt in security or ()),
            request_media_types=tuple(body.get("content") or ()),
            request_body_required=bool(body.get("required", False)),
            request_example=_request_example(document, raw),
            request_schema=_json_schema(body),
            responses={code: tuple(r.get("content") or ()) for code, r in responses.items()},
            tags=tuple(raw.get("tags", ())),
        )
        operations.append(op)
        if kind == "websocket":
            websockets.append(_websocket(document, op, raw.get("x-websocket") or {}, schemes))
        elif derived is not None:
            streams.append(_stream(op, raw, derived, sequences))
    token_url = None
    for scheme in schemes.values():
        flow = (scheme.get("flows") or {}).get("clientCredentials")
        if scheme.get("type") == "oauth2" and flow:
            token_url = flow.get("tokenUrl")
            break
    info = document.get("info") or {}
    return Spec(
        source=where,
        document=document,
        title=str(info.get("title", "")),
        version=str(info.get("version", "")),
        openapi=str(document.get("openapi", "")),
        operations=tuple(operations),
        streams=tuple(streams),
        websockets=tuple(websockets),
        sequences=sequences,
        token_url=token_url,
        security_schemes=schemes,
        warnings=warnings,
    )
