"""Spec validation and contract-quality checks.

Order matters: references first (the OpenAPI validator raises on a dangling
one instead of reporting it), then OpenAPI validity, then our meta-schema for
the ``x-`` extensions, then the cross-checks no schema can express.

Errors make a spec unusable: an invalid OpenAPI document, or our own ``x-``
extensions used wrongly. A valid document is never rejected for not matching
our dialect: what cannot be derived from it is a *warning* naming the
contracts that will be skipped and what would enable them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema_rs
from openapi_spec_validator.validation import (
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
    OpenAPIV32SpecValidator,
)

from chatcontract.spec.build import is_websocket, iter_operations
from chatcontract.spec.refs import (
    RefCycleError,
    find_refs,
    inline,
    inline_or_deref,
    join,
    resolve_pointer,
)
from chatcontract.spec.security import security_carriers
from chatcontract.spec.streams import (
    derive_stream,
    fixed_value,
    message_discriminator,
    pointer_tokens,
    schemas_at,
    unjudgeable_sequences,
)

__all__ = [
    "Diagnostic",
    "Problem",
    "close_code_problem",
    "diagnose_document",
    "lint_document",
]

Problem = tuple[str, str]
"""``(JSON pointer, message)`` of an error."""
JSON = Any
Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located lint finding; only errors make a spec unusable."""

    pointer: str
    message: str
    severity: Severity = "error"

    def line(self, where: str) -> str:
        """``FILE: /pointer: message``, with ``warning: `` before a warning's message."""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {self.pointer}: {prefix}{self.message}"


_VALIDATORS = {
    "3.0": OpenAPIV30SpecValidator,
    "3.1": OpenAPIV31SpecValidator,
    "3.2": OpenAPIV32SpecValidator,
}


@cache
def _meta_validator(definition: str) -> Any:
    text = resources.files("chatcontract.spec").joinpath("extensions.schema.json").read_text()
    meta = json.loads(text)
    return jsonschema_rs.validator_for(
        {"$ref": f"#/$defs/{definition}", "$defs": meta["$defs"]},
    )


def _meta(definition: str, instance: JSON, pointer: str) -> Iterator[Problem]:
    for error in _meta_validator(definition).iter_errors(instance):
        yield join(pointer, *error.instance_path), error.message


def _check_refs(document: JSON) -> list[Problem]:
    problems: list[Problem] = []
    for holder, ref in find_refs(document):
        where = join(holder, "$ref")
        if not isinstance(ref, str):
            problems.append((where, "$ref must be a string"))
        elif not ref.startswith("#"):
            problems.append((where, f"external $ref {ref!r} is not supported; bundle the spec"))
        else:
            try:
                resolve_pointer(document, ref[1:])
            except LookupError:
                problems.append((where, f"dangling $ref {ref!r}: nothing at that pointer"))
    return problems


_ITEM_KEYWORDS = ("itemSchema", "itemEncoding", "prefixEncoding")


def _item_schema_holders(node: JSON, pointer: str = "") -> Iterator[tuple[str, dict[str, JSON]]]:
    """``(pointer, media type object)`` of every media type using 3.2's sequential keywords."""
    if isinstance(node, dict):
        for key, value in node.items():
            at = join(pointer, key)
            if key == "content" and isinstance(value, dict):
                for media_type, media in value.items():
                    if isinstance(media, dict) and any(k in media for k in _ITEM_KEYWORDS):
                        yield join(at, media_type), media
            yield from _item_schema_holders(value, at)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _item_schema_holders(value, join(pointer, index))


def _without_item_schemas(
    document: Mapping[str, JSON], version: str
) -> tuple[Mapping[str, JSON], list[Diagnostic]]:
    """A 3.0/3.1 document minus 3.2's ``itemSchema``, and one warning saying so."""
    if version.startswith("3.2"):
        return document, []
    copy = json.loads(json.dumps(document))
    holders = list(_item_schema_holders(copy))
    if not holders:
        return document, []
    for _pointer, media in holders:
        for key in _ITEM_KEYWORDS:
            media.pop(key, None)
    streams = f" ({len(holders)} media types use it)" if len(holders) > 1 else ""
    warning = Diagnostic(
        holders[0][0],
        f"itemSchema needs OpenAPI 3.2; this document is {version[:3]}{streams}; "
        "it is read as 3.2 would read it, so each event is still validated",
        "warning",
    )
    return copy, [warning]


def _check_openapi(document: Mapping[str, JSON]) -> tuple[list[Problem], list[Diagnostic]]:
    version = document.get("openapi")
    if version is None:
        hint = " (Swagger 2.0 is not supported)" if "swagger" in document else ""
        return [("/openapi", f"missing: not an OpenAPI 3.x document{hint}")], []
    if not isinstance(version, str) or version[:3] not in _VALIDATORS:
        return [("/openapi", f"unsupported OpenAPI version {version!r}; use 3.0, 3.1 or 3.2")], []
    checked, warnings = _without_item_schemas(document, version)
    validator = _VALIDATORS[version[:3]](checked)
    problems: list[Problem] = []
    try:
        for error in validator.iter_errors():
            if type(error).__name__ == "DuplicateOperationIDError":
                continue  # reported by _check_operation_ids with a pointer
            path = list(getattr(error, "path", ()) or ())
            message = str(getattr(error, "message", error)).split("\n", 1)[0]
            problems.append((join("", *path) or "/", message))
    except Exception as exc:  # the validator raises on shapes it did not expect
        problems.append(("/", f"invalid OpenAPI document: {type(exc).__name__}: {exc}"[:300]))
    return problems, warnings


def _has_example(node: JSON) -> bool:
    return isinstance(node, dict) and ("example" in node or bool(node.get("examples")))


def _generatable(schema: JSON) -> bool:
    """A schema hypothesis-jsonschema can draw from: present and constraining something."""
    return isinstance(schema, dict | bool) and schema not in ({}, False)


def _check_operation_ids(document: Mapping[str, JSON]) -> Iterator[Problem]:
    seen_ids: dict[str, str] = {}
    for _path, _method, pointer, op in iter_operations(document):
        op_id = op.get("operationId")
        if not isinstance(op_id, str):
            continue
        if op_id in seen_ids:
            yield (
                join(pointer, "operationId"),
                f"duplicate operationId {op_id!r} (also at {seen_ids[op_id]})",
            )
        else:
            seen_ids[op_id] = pointer


def _check_operations(document: Mapping[str, JSON]) -> Iterator[Problem]:
    for path, method, pointer, op in iter_operations(document):
        label = f"{method.upper()} {path}"
        if not op.get("responses"):
            yield join(pointer, "responses"), f"{label} documents no responses"
        if "x-tier" in op:
            yield from _meta("tier", op["x-tier"], join(pointer, "x-tier"))
        body = inline_or_deref(document, op.get("requestBody") or {})
        for media_type, media in (body.get("content") or {}).items():
            if not _has_example(media) and not _generatable(media.get("schema")):
                yield (
                    join(pointer, "requestBody", "content", media_type),
                    f"{label} request body has neither an example nor a generatable schema",
                )
        item = inline_or_deref(document, document["paths"][path])
        params = [*(item.get("parameters") or ()), *(op.get("parameters") or ())]
        for index, param in enumerate(inline_or_deref(document, params)):
            if not _has_example(param) and not _generatable(param.get("schema")):
                name = param.get("name", index)
                yield (
                    join(pointer, "parameters", index),
                    f"{label} parameter {name!r} has neither an example nor a generatable schema",
                )


_TYPING_HINT = (
    "an itemSchema whose branches fix `event` or a data property (const, one-value enum or "
    "a discriminator mapping), or x-stream.event-type-from + discriminator, would enable it"
)


def _check_streams(
    document: Mapping[str, JSON], known: set[str], lenient: set[str]
) -> Iterator[Problem | Diagnostic]:
    """x-stream and x-sequence errors, then what each stream's events allow.

    Adds the event types the streams name to ``known``, and to ``lenient`` the
    sequences some stream cannot type its events for (a warning says so, and
    their unknown event types are no error).
    """
    sequences = ((document.get("components") or {}).get("x-sequences")) or {}
    for path, method, pointer, op in iter_operations(document):
        settings = op.get("x-stream")
        if settings is not None:
            yield from _meta("stream", settings, join(pointer, "x-stream"))
        names: list[str] = []
        if "x-sequence" in op:
            yield from _meta("sequenceRef", op["x-sequence"], join(pointer, "x-sequence"))
            raw = [op["x-sequence"]] if isinstance(op["x-sequence"], str) else op["x-sequence"]
            for name in raw if isinstance(raw, list) else ():
                if isinstance(name, str) and name not in sequences:
                    yield (
                        join(pointer, "x-sequence"),
                        f"names unknown sequence {name!r} (not under /components/x-sequences)",
                    )
                elif isinstance(name, str):
                    names.append(name)
        if is_websocket(method, op):
            continue
        label = f"{method.upper()} {path}"
        derived = derive_stream(document, op, pointer, label)
        if derived is None:
            continue
        for at, message in derived.notes:
            yield Diagnostic(at, message, "warning")
        events = {
            name: tuple(e for e in seq.get("events") or () if isinstance(e, str))
            for name, seq in sequences.items()
            if isinstance(seq, dict) and isinstance(seq.get("events"), list)
        }
        skipped = unjudgeable_sequences(derived, tuple(names), events)
        if skipped:
            shown = ", ".join(f"sequence:{name}" for name, _ in skipped)
            yield Diagnostic(
                join(pointer, "x-sequence"),
                f"{label}: {shown} will be skipped, {skipped[0][1]}; {_TYPING_HINT}",
                "warning",
            )
            lenient.update(name for name, _ in skipped)
        known.update(derived.types)


# RFC 6455 §7.4: codes an endpoint must never put in a close frame, and reserved ones.
_NEVER_SENT = {1005: "no status received", 1006: "abnormal closure", 1015: "TLS failure"}
_SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


def close_code_problem(code: JSON) -> str | None:
    """Why a server can never send ``code`` in a close frame (RFC 6455 §7.4), or ``None``."""
    if not isinstance(code, int) or isinstance(code, bool):
        return None  # the meta-schema reports it
    if code in _NEVER_SENT:
        return (
            f"close code {code} ({_NEVER_SENT[code]}) is never sent in a close frame "
            "(RFC 6455 §7.4.1); a server cannot meet this"
        )
    if code == 1004:
        return "close code 1004 is reserved (RFC 6455 §7.4.1); a server cannot send it"
    if code == 1010:
        return "close code 1010 (mandatory extension) is sent by clients only"
    if code in _SENDABLE or 3000 <= code <= 4999:
        return None
    return f"close code {code} is unassigned (RFC 6455 §7.4.2: use 3000-4999 for applications)"


def _declares(schemas: Mapping[str, JSON], names: JSON, pointer: str) -> bool:
    """Whether some schema of ``names`` (all when ``None``) declares ``pointer``."""
    chosen = schemas.values() if names is None else [schemas[n] for n in names if n in schemas]
    return any(schemas_at({}, schema, pointer_tokens(pointer)) for schema in chosen)


def _close_codes(ws: Mapping[str, JSON], where: str) -> Iterator[Problem]:
    auth = ws.get("auth") or {}
    found = [
        (
            join(where, "auth", "close-after-accept", "code"),
            (auth.get("close-after-accept") or {}).get("code"),
        ),
        (join(where, "auth", "expiry", "close-code"), (auth.get("expiry") or {}).get("close-code")),
    ]
    for index, code in enumerate((auth.get("rejection") or {}).get("close") or ()):
        found.append((join(where, "auth", "rejection", "close", index), code))
    for kind, reaction in (ws.get("on-invalid-input") or {}).items():
        found.append(
            (join(where, "on-invalid-input", kind, "close-code"), reaction.get("close-code"))
        )
    for at, code in found:
        problem = close_code_problem(code) if code is not None else None
        if problem:
            yield at, problem


def _check_flows(
    ws: Mapping[str, JSON], where: str, kinds: dict[str, set[str]], sequences: Mapping[str, JSON]
) -> Iterator[Problem]:
    client, server = ws["messages"]["client"], ws["messages"]["server"]
    for index, flow in enumerate(ws.get("flows") or ()):
        at = join(where, "flows", index)
        if flow["send"] not in kinds["client"]:
            yield join(at, "send"), f"flow sends unknown client type {flow['send']!r}"
        first = flow.get("expect-first")
        if first and first not in kinds["server"]:
            yield join(at, "expect-first"), f"flow expects unknown server type {first!r}"
        seq = flow.get("expect-sequence")
        if seq and seq not in sequences:
            yield join(at, "expect-sequence"), f"flow names unknown sequence {seq!r}"
        correlate = flow.get("correlate") or {}
        sent = correlate.get("sent")
        if sent and flow["send"] in client and not _declares(client, [flow["send"]], sent):
            yield (
                join(at, "correlate", "sent"),
                f"{sent} is not declared by the client schema of {flow['send']!r}",
            )
        received = correlate.get("received")
        if received and not _declares(server, None, received):
            yield join(at, "correlate", "received"), f"{received} is declared by no server schema"
        channel = (flow.get("channel") or {}).get("pointer")
        if channel and not _declares(server, None, channel):
            yield join(at, "channel", "pointer"), f"{channel} is declared by no server schema"
        for i, name in enumerate(flow.get("unsolicited") or ()):
            if name not in kinds["server"]:
                yield join(at, "unsolicited", i), f"unsolicited type {name!r} has no server schema"


def _check_messages(
    document: Mapping[str, JSON], ws: Mapping[str, JSON], where: str
) -> Iterator[Problem]:
    """Frame typing: the discriminator resolves, each schema fixes its own type."""
    messages = ws["messages"]
    disc = message_discriminator(messages)
    schemas = {**messages["server"], **messages["client"]}
    if disc.startswith("/") and not _declares(schemas, None, disc):
        # One cause, one error: no schema can fix a type at a pointer none declares.
        yield (
            join(where, "messages", "discriminator"),
            f"discriminator {disc} is declared by no message schema: no frame can be typed",
        )
        return
    for side in ("client", "server"):
        for name, schema in messages[side].items():
            at = join(where, "messages", side, name)
            if not _generatable(schema):
                yield at, f"{side} message type {name!r} has no schema"
                continue
            if disc.startswith("/") and not schemas_at({}, schema, pointer_tokens(disc)):
                yield at, f"schema of {name!r} does not declare the discriminator {disc}"
                continue
            fixed = fixed_value(document, schema, disc)
            if fixed is not None and fixed != name:
                yield at, f"schema fixes {disc!r} to {fixed!r}, not {name!r}"
    for i, pointer in enumerate(messages.get("unique") or ()):
        if not _declares(messages["client"], None, pointer):
            yield join(where, "messages", "unique", i), f"{pointer} is declared by no client schema"


def _security_carriers(document: Mapping[str, JSON], op: Mapping[str, JSON]) -> list[str]:
    """The carrier kinds the operation's security gives a WebSocket without auth.carriers;
    ``["open"]`` for an open operation."""
    security = op.get("security", document.get("security", [])) or []
    if not security or any(not alternative for alternative in security):
        return ["open"]
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    resolved = {name: inline_or_deref(document, scheme) for name, scheme in schemes.items()}
    return [c.kind for c in security_carriers(resolved, security)]


def _check_carriers(
    document: Mapping[str, JSON], op: Mapping[str, JSON], ws: Mapping[str, JSON], where: str
) -> Iterator[Problem]:
    client = ws["messages"]["client"]
    auth = ws.get("auth") or {}
    for index, carrier in enumerate(auth.get("forbidden-carriers") or ()):
        if carrier["in"] == "message":
            yield (
                join(where, "auth", "forbidden-carriers", index, "in"),
                "a token in a message cannot be forbidden at the handshake; "
                "forbid header, query, cookie or subprotocol carriers",
            )
    if "carriers" in auth:
        kinds = [carrier["in"] for carrier in auth["carriers"]]
    else:
        kinds = _security_carriers(document, op)
        if not kinds:
            yield (
                join(where, "auth", "carriers"),
                "the operation's security scheme names no place one token can travel "
                "(basic, mutual TLS or combined schemes): declare x-websocket.auth.carriers",
            )
            return
    for index, carrier in enumerate(auth.get("carriers") or ()):
        if carrier["in"] != "message":
            continue
        at = join(where, "auth", "carriers", index)
        if carrier["type"] not in client:
            yield join(at, "type"), f"message carrier type {carrier['type']!r} has no client schema"
        elif not _declares(client, [carrier["type"]], carrier["pointer"]):
            yield (
                join(at, "pointer"),
                f"{carrier['pointer']} is not declared by the client schema of {carrier['type']!r}",
            )
    rejection = auth.get("rejection") or {}
    if kinds and set(kinds) == {"message"} and "close" not in rejection:
        yield (
            join(where, "auth", "rejection"),
            "the token travels in a message, after the 101: the server can only refuse it "
            "with a close; declare rejection.close (e.g. [4403])",
        )
    origin = ws.get("origin") or {}
    for index, kind in enumerate(origin.get("carriers") or ()):
        if kind not in kinds:
            yield (
                join(where, "origin", "carriers", index),
                f"the Origin rule names {kind!r}, which no carrier of this WebSocket is",
            )


def _plain_websocket(
    document: Mapping[str, JSON], op: Mapping[str, JSON], pointer: str, label: str
) -> Iterator[Diagnostic]:
    """A GET documenting 101 without x-websocket: what will and will not be checked."""
    kinds = _security_carriers(document, op)
    if not kinds:
        yield Diagnostic(
            join(pointer, "security"),
            f"{label}: its security scheme names no place one token can travel (basic, mutual "
            "TLS or combined schemes): its handshake auth rows will be skipped; declare "
            "x-websocket.auth.carriers",
            "warning",
        )
    yield Diagnostic(
        join(pointer, "responses", "101"),
        f"{label} is a WebSocket without x-websocket: its handshake"
        + ("" if kinds == ["open"] else " and auth matrix (from its security scheme)")
        + " are checked; describe its messages in x-websocket to check frames, flows, "
        "hygiene and fuzzing",
        "warning",
    )


def _check_websocket(
    document: Mapping[str, JSON], known: set[str], lenient: set[str]
) -> Iterator[Problem | Diagnostic]:
    """x-websocket errors; adds its server types to ``known``. An x-websocket that cannot be
    read makes every sequence lenient, so its one error is not repeated by each sequence."""
    sequences = ((document.get("components") or {}).get("x-sequences")) or {}
    for path, method, pointer, op in iter_operations(document):
        if "x-websocket" not in op:
            if is_websocket(method, op):
                yield from _plain_websocket(document, op, pointer, f"GET {path}")
            continue
        where = join(pointer, "x-websocket")
        if method != "get":
            yield where, "x-websocket belongs on a GET operation (the upgrade request)"
        raw = op["x-websocket"]
        problems = list(_meta("websocket", raw, where))
        if problems:
            yield from problems
            lenient.update(sequences if isinstance(sequences, dict) else ())
            continue
        try:
            ws = inline(document, raw)
        except RefCycleError as exc:
            # Frame schemas are compiled inlined: they must not be recursive.
            yield where, f"recursive $ref: {exc}"
            lenient.update(sequences if isinstance(sequences, dict) else ())
            continue
        kinds = {side: set(ws["messages"][side]) for side in ("client", "server")}
        yield from _check_messages(document, ws, where)
        yield from _check_carriers(document, op, ws, where)
        welcome = (ws.get("welcome") or {}).get("type")
        if welcome and welcome not in kinds["server"]:
            yield join(where, "welcome", "type"), f"welcome type {welcome!r} has no server schema"
        heartbeat = ws.get("heartbeat") or {}
        for key, side in (("ping", "server"), ("pong", "client")):
            if key in heartbeat and heartbeat[key] not in kinds[side]:
                yield (
                    join(where, "heartbeat", key),
                    f"heartbeat {key} type {heartbeat[key]!r} has no {side} schema",
                )
        yield from _check_flows(ws, where, kinds, sequences)
        yield from _close_codes(ws, where)
        known |= kinds["server"]


def _server_schemas(document: Mapping[str, JSON]) -> dict[str, JSON]:
    """Every WebSocket server message schema by type (for pointers sequences name)."""
    found: dict[str, JSON] = {}
    for _path, _method, _pointer, op in iter_operations(document):
        raw = op.get("x-websocket")
        try:
            server = inline(document, raw)["messages"]["server"] if raw else None
        except (RefCycleError, KeyError, TypeError):
            server = None
        if isinstance(server, dict):
            found.update(server)
    return found


def _conflict(a: Mapping[str, JSON], b: Mapping[str, JSON]) -> bool:
    """Whether two kinds' ``where`` clauses can never hold for the same event."""
    return any(p in b and b[p] != v for p, v in a.items())


def _check_kinds(
    document: Mapping[str, JSON],
    at: str,
    name: str,
    seq: Mapping[str, JSON],
    known: set[str],
    lenient: set[str],
) -> Iterator[Problem]:
    kinds = seq.get("kinds") or {}
    server = _server_schemas(document) if kinds else {}
    for kind, spec in kinds.items():
        if spec["type"] not in known and name not in lenient:
            yield (
                join(at, "kinds", kind, "type"),
                f"kind {kind!r} refines unknown type {spec['type']!r}",
            )
            continue
        for pointer in spec["where"]:
            schema = server.get(spec["type"])
            if schema is not None and not schemas_at({}, schema, pointer_tokens(pointer)):
                yield (
                    join(at, "kinds", kind, "where"),
                    f"{pointer} is not declared by the schema of {spec['type']!r}",
                )

    def shape(event: str) -> tuple[str, Mapping[str, JSON]]:
        spec = kinds.get(event)
        return (spec["type"], spec["where"]) if spec else (event, {})

    for event in seq.get("first") or ():
        for terminal in seq["terminal"]:
            (ft, fw), (tt, tw) = shape(event), shape(terminal)
            both_kinds = event in kinds and terminal in kinds
            if event == terminal or (ft == tt and both_kinds and not _conflict(fw, tw)):
                yield (
                    join(at, "terminal"),
                    f"{terminal!r} is also a first event and nothing tells them apart: one "
                    f"{ft} would start and end the run; name kinds (kinds: {{NAME: "
                    "{type, where}}) that differ in a field value",
                )


def _check_sequences(
    document: Mapping[str, JSON], known: set[str], lenient: set[str]
) -> Iterator[Problem]:
    raw = (document.get("components") or {}).get("x-sequences")
    if raw is None:
        return
    base = "/components/x-sequences"
    problems = list(_meta("sequences", raw, base))
    if problems:
        yield from problems
        return
    for name, seq in raw.items():
        at = join(base, name)
        scope = set(seq["events"])
        refined = set(seq.get("kinds") or ())
        for event in seq["events"]:
            if event not in known and event not in refined and name not in lenient:
                yield join(at, "events"), f"sequence {name!r} names unknown event type {event!r}"
        yield from _check_kinds(document, at, name, seq, known, lenient)
        named: list[tuple[str, str]] = [(join(at, "first"), e) for e in seq.get("first", ())]
        named += [(join(at, "terminal"), e) for e in seq["terminal"]]
        for i, pair in enumerate(seq.get("pairs", ())):
            named += [(join(at, "pairs", i, "open"), pair["open"])]
            named += [(join(at, "pairs", i, "close"), pair["close"])]
        for i, rule in enumerate(seq.get("order", ())):
            named += [(join(at, "order", i, "event"), rule["event"])]
            named += [(join(at, "order", i, "after"), e) for e in rule["after"]]
        for where, event in named:
            if event not in scope:
                yield where, f"event type {event!r} is not among the sequence's events"


def diagnose_document(document: Mapping[str, JSON]) -> list[Diagnostic]:
    """Every error (in document order), then every warning; no error: the spec is usable."""
    problems = _check_refs(document)
    if problems:
        return _errors(problems)
    problems, warnings = _check_openapi(document)
    problems += list(_check_operation_ids(document))
    if problems:
        return _errors(problems) + warnings
    problems = list(_check_operations(document))
    known: set[str] = set()
    lenient: set[str] = set()
    for found in (
        *_check_streams(document, known, lenient),
        *_check_websocket(document, known, lenient),
    ):
        if isinstance(found, Diagnostic):
            warnings.append(found)
        else:
            problems.append(found)
    problems.extend(_check_sequences(document, known, lenient))
    return _errors(problems) + warnings


def lint_document(document: Mapping[str, JSON]) -> list[Problem]:
    """Every error found, in document order; empty when the spec is usable."""
    return [(d.pointer, d.message) for d in diagnose_document(document) if d.severity == "error"]


def _errors(problems: list[Problem]) -> list[Diagnostic]:
    return [Diagnostic(pointer, message) for pointer, message in problems]
