"""Spec validation and contract-quality checks.

Order matters: references first (the OpenAPI validator raises on a dangling
one instead of reporting it), then OpenAPI validity, then our meta-schema for
the ``x-`` extensions, then the cross-checks no schema can express.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from openapi_spec_validator.validation import (
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
    OpenAPIV32SpecValidator,
)

from chatcontract.spec.build import (
    SSE_MEDIA_TYPE,
    _const_of,
    _sse_item_schema,
    extract_event_schemas,
    iter_operations,
)
from chatcontract.spec.refs import RefCycleError, find_refs, inline, join, resolve_pointer

__all__ = ["Problem", "lint_document"]

Problem = tuple[str, str]
"""``(JSON pointer, message)``."""
JSON = Any

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


def _check_openapi(document: Mapping[str, JSON]) -> list[Problem]:
    version = document.get("openapi")
    if version is None:
        hint = " (Swagger 2.0 is not supported)" if "swagger" in document else ""
        return [("/openapi", f"missing: not an OpenAPI 3.x document{hint}")]
    if not isinstance(version, str) or version[:3] not in _VALIDATORS:
        return [("/openapi", f"unsupported OpenAPI version {version!r}; use 3.0, 3.1 or 3.2")]
    validator = _VALIDATORS[version[:3]](document)
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
    return problems


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
        body = inline(document, op.get("requestBody") or {})
        for media_type, media in (body.get("content") or {}).items():
            if not _has_example(media) and not _generatable(media.get("schema")):
                yield (
                    join(pointer, "requestBody", "content", media_type),
                    f"{label} request body has neither an example nor a generatable schema",
                )
        params = [*(document["paths"][path].get("parameters") or ()), *(op.get("parameters") or ())]
        for index, param in enumerate(inline(document, params)):
            if not _has_example(param) and not _generatable(param.get("schema")):
                name = param.get("name", index)
                yield (
                    join(pointer, "parameters", index),
                    f"{label} parameter {name!r} has neither an example nor a generatable schema",
                )


def _stream_event_types(document: Mapping[str, JSON]) -> Iterator[Problem | set[str]]:
    sequences = ((document.get("components") or {}).get("x-sequences")) or {}
    for _path, _method, pointer, op in iter_operations(document):
        responses = {str(k): inline(document, v) for k, v in (op.get("responses") or {}).items()}
        sse = _sse_item_schema(responses)
        settings = op.get("x-stream")
        if settings is not None:
            yield from _meta("stream", settings, join(pointer, "x-stream"))
        if "x-sequence" in op:
            yield from _meta("sequenceRef", op["x-sequence"], join(pointer, "x-sequence"))
            names = [op["x-sequence"]] if isinstance(op["x-sequence"], str) else op["x-sequence"]
            for name in names if isinstance(names, list) else ():
                if isinstance(name, str) and name not in sequences:
                    yield (
                        join(pointer, "x-sequence"),
                        f"names unknown sequence {name!r} (not under /components/x-sequences)",
                    )
        if sse is None:
            continue
        status, item = sse
        where = join(pointer, "responses", str(status), "content", SSE_MEDIA_TYPE)
        if item is None:
            yield where, "stream operation has no itemSchema for its events"
            continue
        settings = settings if isinstance(settings, dict) else {}
        try:
            _mode, events = extract_event_schemas(
                inline(document, item),
                settings.get("event-type-from"),
                settings.get("discriminator", "type"),
            )
        except (ValueError, RefCycleError) as exc:
            yield join(where, "itemSchema"), f"cannot derive event types: {exc}"
            continue
        yield set(events)


def _check_websocket(document: Mapping[str, JSON]) -> Iterator[Problem | set[str]]:
    sequences = ((document.get("components") or {}).get("x-sequences")) or {}
    for _path, method, pointer, op in iter_operations(document):
        if "x-websocket" not in op:
            continue
        where = join(pointer, "x-websocket")
        if method != "get":
            yield where, "x-websocket belongs on a GET operation (the upgrade request)"
        raw = op["x-websocket"]
        problems = list(_meta("websocket", raw, where))
        if problems:
            yield from problems
            continue
        ws = inline(document, raw)
        disc = ws["messages"].get("discriminator", "type")
        kinds: dict[str, set[str]] = {}
        for side in ("client", "server"):
            kinds[side] = set(ws["messages"][side])
            for name, schema in ws["messages"][side].items():
                at = join(where, "messages", side, name)
                if not _generatable(schema):
                    yield at, f"{side} message type {name!r} has no schema"
                    continue
                fixed = _const_of(schema, disc)
                if fixed is not None and fixed != name:
                    yield at, f"schema fixes {disc!r} to {fixed!r}, not {name!r}"
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
        yield kinds["server"]


def _check_sequences(document: Mapping[str, JSON], known: set[str]) -> Iterator[Problem]:
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
        for event in seq["events"]:
            if event not in known:
                yield join(at, "events"), f"sequence {name!r} names unknown event type {event!r}"
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


def lint_document(document: Mapping[str, JSON]) -> list[Problem]:
    """Every problem found, in document order; empty when the spec is usable."""
    problems = _check_refs(document)
    if problems:
        return problems
    problems = _check_openapi(document) + list(_check_operation_ids(document))
    if problems:
        return problems
    problems = list(_check_operations(document))
    known: set[str] = set()
    for found in (*_stream_event_types(document), *_check_websocket(document)):
        if isinstance(found, set):
            known |= found
        else:
            problems.append(found)
    problems.extend(_check_sequences(document, known))
    if not problems:
        _check_inlinable(document, problems)
    return problems


def _check_inlinable(document: Mapping[str, JSON], problems: list[Problem]) -> None:
    """Schemas the checkers compile must not be recursive."""
    for _path, _method, pointer, op in iter_operations(document):
        if "x-websocket" in op:
            try:
                inline(document, op["x-websocket"])
            except RefCycleError as exc:
                problems.append((join(pointer, "x-websocket"), f"recursive $ref: {exc}"))
