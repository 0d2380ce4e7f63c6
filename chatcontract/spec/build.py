"""Turning a validated OpenAPI document into the frozen model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from chatcontract.spec.model import (
    Correlation,
    Flow,
    Operation,
    OperationKind,
    OrderRule,
    Pair,
    Reaction,
    SequenceContract,
    Spec,
    StreamContract,
    StreamDeadlines,
    TokenCarrier,
    WebSocketContract,
    WebSocketDeadlines,
    WebSocketLimits,
)
from chatcontract.spec.refs import inline, join

__all__ = [
    "HTTP_METHODS",
    "SSE_MEDIA_TYPE",
    "build_spec",
    "extract_event_schemas",
    "iter_operations",
]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
SSE_MEDIA_TYPE = "text/event-stream"
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
            item = inline(document, item)
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield path, method, join("/paths", path, method), op


def _responses(document: Mapping[str, JSON], op: Mapping[str, JSON]) -> dict[str, JSON]:
    raw = op.get("responses") or {}
    return {str(code): inline(document, resp) for code, resp in raw.items()}


def _sse_item_schema(responses: Mapping[str, JSON]) -> tuple[int, JSON] | None:
    for code, response in responses.items():
        if not (code.isdigit() and code.startswith("2")) or not isinstance(response, dict):
            continue
        media = (response.get("content") or {}).get(SSE_MEDIA_TYPE)
        if media is not None:
            return int(code), media.get("itemSchema") if isinstance(media, dict) else None
    return None


def _const_of(schema: JSON, prop: str) -> str | None:
    """The single value ``schema`` allows for ``prop`` (const or one-item enum), via allOf."""
    if not isinstance(schema, dict):
        return None
    spec = (schema.get("properties") or {}).get(prop)
    if isinstance(spec, dict):
        if isinstance(spec.get("const"), str):
            return cast(str, spec["const"])
        enum = spec.get("enum")
        if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
            return enum[0]
    for part in schema.get("allOf") or ():
        found = _const_of(part, prop)
        if found is not None:
            return found
    return None


def _branches(schema: JSON) -> list[JSON]:
    if isinstance(schema, dict):
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list):
                return list(schema[key])
    return [schema]


def _data_schema(item: JSON) -> JSON | None:
    data = (item.get("properties") or {}).get("data") if isinstance(item, dict) else None
    if isinstance(data, dict):
        return data.get("contentSchema", data)
    return None


def extract_event_schemas(
    item_schema: JSON, event_type_from: str | None, discriminator: str
) -> tuple[str, dict[str, JSON]]:
    """Return ``(mode, {event type: schema of the decoded data})`` for an inlined itemSchema.

    ``mode`` is ``event`` when the SSE ``event`` field names the type, ``data``
    when a property inside the JSON data does. Raises ``ValueError`` naming what
    is missing when no event type can be derived.
    """
    if event_type_from is None:
        has_event_const = any(_const_of(b, "event") for b in _branches(item_schema))
        event_type_from = "event" if has_event_const else "data"
    schemas: dict[str, JSON] = {}
    if event_type_from == "event":
        for branch in _branches(item_schema):
            name = _const_of(branch, "event")
            data = _data_schema(branch)
            if name is None or data is None:
                raise ValueError("an itemSchema branch has no const `event` and `data` schema")
            schemas[name] = data
        return "event", schemas
    content = _data_schema(item_schema)
    if content is None:
        raise ValueError("itemSchema has no `data` property (contentSchema) to discriminate")
    for branch in _branches(content):
        name = _const_of(branch, discriminator)
        if name is None:
            raise ValueError(
                f"a data schema branch does not fix its `{discriminator}` property to one value"
            )
        schemas[name] = branch
    return "data", schemas


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
    )


def _carrier(raw: Mapping[str, JSON]) -> TokenCarrier:
    return TokenCarrier(
        kind=raw["in"],
        name=raw.get("name"),
        scheme=raw.get("scheme"),
        protocol=raw.get("protocol"),
        token_prefix=raw.get("token-prefix", ""),
        encoding=raw.get("encoding", "plain"),
    )


def _websocket(document: Mapping[str, JSON], op: Operation, raw: JSON) -> WebSocketContract:
    ws = inline(document, raw)
    auth = ws["auth"]
    after = auth.get("close-after-accept") or {}
    origin = ws.get("origin")
    messages = ws["messages"]
    limits = ws.get("limits") or {}
    heartbeat = ws.get("heartbeat") or {}
    deadlines = ws.get("deadlines") or {}
    reactions = {
        kind: Reaction(error_code=r.get("error-code"), close_code=r.get("close-code"))
        for kind, r in (ws.get("on-invalid-input") or {}).items()
    }
    flows = tuple(
        Flow(
            name=f["name"],
            send=f["send"],
            example=f.get("example"),
            needs_thread=bool(f.get("needs-thread", False)),
            expect_first=f.get("expect-first"),
            expect_sequence=f.get("expect-sequence"),
        )
        for f in ws.get("flows", ())
    )
    return WebSocketContract(
        operation=op,
        carriers=tuple(_carrier(c) for c in auth["carriers"]),
        forbidden_carriers=tuple(_carrier(c) for c in auth.get("forbidden-carriers", ())),
        rejection_statuses=tuple(auth["rejection"]["status"]),
        close_after_accept_code=after.get("code"),
        close_after_accept_severity=after.get("severity", "warning"),
        claims=dict(auth.get("claims") or {}),
        expiry_close_code=(auth.get("expiry") or {}).get("close-code"),
        origin_allowlist=tuple(origin["allow"]) if origin else None,
        origin_rejection_status=origin.get("rejection-status", 403) if origin else None,
        welcome_type=(ws.get("welcome") or {}).get("type"),
        discriminator=messages.get("discriminator", "type"),
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
        on_invalid_input=reactions,
        deadlines=WebSocketDeadlines(
            handshake=_seconds(deadlines, "handshake-seconds", 5.0),
            first_frame=_seconds(deadlines, "first-frame-seconds", 5.0),
            idle=_seconds(deadlines, "idle-seconds", 30.0),
            total=_seconds(deadlines, "total-seconds", 120.0),
        ),
    )


def _request_example(document: Mapping[str, JSON], op: Mapping[str, JSON]) -> JSON | None:
    body = inline(document, op.get("requestBody") or {})
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


def _sequence_names(raw: JSON) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    return tuple(raw or ())


def build_spec(where: str, document: Mapping[str, JSON]) -> Spec:
    """Build the model from a document that already passed :func:`lint_document`."""
    default_security = document.get("security", [])
    operations: list[Operation] = []
    streams: list[StreamContract] = []
    websockets: list[WebSocketContract] = []
    for path, method, pointer, raw in iter_operations(document):
        responses = _responses(document, raw)
        sse = _sse_item_schema(responses)
        kind: OperationKind = "websocket" if "x-websocket" in raw else "stream" if sse else "rest"
        body = inline(document, raw.get("requestBody") or {})
        security = raw.get("security", default_security)
        op = Operation(
            operation_id=raw.get("operationId") or f"{method}_{path}",
            method=method.upper(),
            path=path,
            tier=raw.get("x-tier", "P2"),
            kind=kind,
            pointer=pointer,
            security=tuple(tuple(alt) for alt in security or ()),
            request_media_types=tuple(body.get("content") or ()),
            request_body_required=bool(body.get("required", False)),
            request_example=_request_example(document, raw),
            responses={code: tuple(r.get("content") or ()) for code, r in responses.items()},
            tags=tuple(raw.get("tags", ())),
        )
        operations.append(op)
        if kind == "websocket":
            websockets.append(_websocket(document, op, raw["x-websocket"]))
        elif sse is not None:
            status, item_raw = sse
            settings = raw.get("x-stream") or {}
            item = inline(document, item_raw)
            discriminator = settings.get("discriminator", "type")
            mode, events = extract_event_schemas(
                item, settings.get("event-type-from"), discriminator
            )
            deadlines = settings.get("deadlines") or {}
            streams.append(
                StreamContract(
                    operation=op,
                    item_schema=item,
                    event_type_from="event" if mode == "event" else "data",
                    discriminator=discriminator,
                    event_schemas=events,
                    sequences=_sequence_names(raw.get("x-sequence")),
                    deadlines=StreamDeadlines(
                        connect=_seconds(deadlines, "connect-seconds", 5.0),
                        first_event=_seconds(deadlines, "first-event-seconds", 10.0),
                        idle=_seconds(deadlines, "idle-seconds", 30.0),
                        total=_seconds(deadlines, "total-seconds", 120.0),
                    ),
                    heartbeat_seconds=settings.get("heartbeat-seconds"),
                    max_events=int(settings.get("max-events", 10_000)),
                    resume_header=(settings.get("resume") or {}).get("header"),
                    success_status=status,
                )
            )
    components = document.get("components") or {}
    sequences = {
        name: _sequence(name, raw) for name, raw in (components.get("x-sequences") or {}).items()
    }
    schemes = {
        name: inline(document, scheme)
        for name, scheme in (components.get("securitySchemes") or {}).items()
    }
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
    )
