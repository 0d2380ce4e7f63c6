"""Concrete requests for spec operations: examples, parameters and links, without I/O.

The inventory asks each operation one realistic question. Lookups should hit
real objects, so values produced by earlier answers (through the spec's
``links``, e.g. ``createThread`` -> ``thread_id``) win over examples, and
examples win over placeholders.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chatcontract.spec import Operation, Spec
from chatcontract.spec.build import iter_operations
from chatcontract.spec.refs import inline, resolve_pointer

__all__ = [
    "Link",
    "Parameter",
    "Sample",
    "build_sample",
    "evaluate_link",
    "inventory_order",
    "operation_links",
    "operation_parameters",
    "request_properties",
]

_PLACEHOLDER = "chatcontract0probe"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str
    required: bool
    example: Any = None


@dataclass(frozen=True, slots=True)
class Link:
    """A spec link: a value from ``source``'s answer feeds ``target``'s parameter."""

    source: str
    target: str
    parameter: str
    expression: str


@dataclass(frozen=True, slots=True)
class Sample:
    method: str
    path: str
    """The path with parameters filled in (what goes on the wire)."""
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    media_type: str | None = None


def _raw_operation(spec: Spec, op: Operation) -> tuple[dict[str, Any], dict[str, Any]]:
    document = spec.document
    for path, method, _, raw in iter_operations(document):
        if path == op.path and method.upper() == op.method.upper():
            item = document["paths"][path]
            item = inline(document, item) if "$ref" in item else item
            return item, raw
    raise KeyError(op.label)


def _example(param: Mapping[str, Any]) -> Any:
    if "example" in param:
        return param["example"]
    for example in (param.get("examples") or {}).values():
        if isinstance(example, dict) and "value" in example:
            return example["value"]
    schema = param.get("schema")
    if isinstance(schema, dict):
        for key in ("example", "default", "const"):
            if key in schema:
                return schema[key]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
    return None


def operation_parameters(spec: Spec, op: Operation) -> list[Parameter]:
    """Path-item and operation parameters (the operation's win), ``$ref``s resolved."""
    item, raw = _raw_operation(spec, op)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (item.get("parameters") or [], raw.get("parameters") or []):
        for param in source:
            resolved = inline(spec.document, param)
            if isinstance(resolved, dict) and "name" in resolved and "in" in resolved:
                merged[(resolved["in"], resolved["name"])] = resolved
    return [
        Parameter(
            name=p["name"],
            location=p["in"],
            required=bool(p.get("required")) or p["in"] == "path",
            example=_example(p),
        )
        for p in merged.values()
    ]


def operation_links(spec: Spec, op: Operation) -> list[Link]:
    """Links declared on the operation's success responses."""
    _, raw = _raw_operation(spec, op)
    links = []
    for status, response in (raw.get("responses") or {}).items():
        if not str(status).startswith("2"):
            continue
        resolved = inline(spec.document, response)
        for link in (resolved.get("links") or {}).values():
            target = link.get("operationId")
            if not isinstance(target, str):
                continue
            for name, expression in (link.get("parameters") or {}).items():
                if isinstance(expression, str):
                    # "path.thread_id" qualifies the location; the name is what matters here.
                    links.append(Link(op.operation_id, target, name.split(".")[-1], expression))
    return links


def request_properties(spec: Spec, op: Operation) -> dict[str, dict[str, Any]]:
    """The JSON request body's top-level property schemas, ``$ref``s inlined ({} without one)."""
    _, raw = _raw_operation(spec, op)
    body = inline(spec.document, raw.get("requestBody") or {})
    for media, content in (body.get("content") or {}).items():
        if media != "application/json" and not media.endswith("+json"):
            continue
        schema = inline(spec.document, (content or {}).get("schema") or {})
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(properties, dict):
            return {k: v for k, v in properties.items() if isinstance(v, dict)}
    return {}


def evaluate_link(expression: str, body: Any) -> Any:
    """The value of a ``$response.body#/pointer`` expression, or None."""
    prefix = "$response.body"
    if not expression.startswith(prefix):
        return None
    pointer = expression.removeprefix(prefix).removeprefix("#")
    try:
        value = resolve_pointer(body, pointer)
    except LookupError:
        return None
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _fill(value: Any) -> str:
    return quote(str(value), safe="")


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def build_sample(
    op: Operation,
    parameters: Sequence[Parameter],
    known: Mapping[str, Any],
    identifiers: Collection[str] = (),
) -> Sample:
    """A request for ``op``: ``known`` values (by parameter name) first, then examples.

    ``identifiers`` name parameters that point at objects (``thread_id``). An
    unsafe request (a PUT, DELETE, POST...) only ever targets an object we
    created: lacking one, it gets a placeholder, never the spec's example id,
    which might name someone's real thread on a shared staging server.
    """
    unsafe = op.method.upper() not in _SAFE_METHODS

    def value_of(name: str, example: Any) -> Any:
        if name in known:
            return known[name]
        return _PLACEHOLDER if unsafe and name in identifiers else example

    path = op.path
    query: dict[str, str] = {}
    for param in parameters:
        value = value_of(param.name, param.example)
        if param.location == "path":
            path = path.replace(
                "{" + param.name + "}", _fill(_PLACEHOLDER if value is None else value)
            )
        elif param.location == "query" and param.required:
            query[param.name] = str(_PLACEHOLDER if value is None else value)
    body = copy.deepcopy(op.request_example)
    if isinstance(body, dict):
        for name in body:
            if isinstance(body[name], str | int) and (name in known or name in identifiers):
                body[name] = value_of(name, body[name])
    media = None
    if body is not None or op.request_body_required:
        media = next(
            (m for m in op.request_media_types if m == "application/json" or m.endswith("+json")),
            op.request_media_types[0] if op.request_media_types else "application/json",
        )
        if body is None:
            body = {}
    return Sample(op.method.upper(), path, query, body, media)


def inventory_order(operations: Iterable[Operation], producers: Iterable[str]) -> list[Operation]:
    """Producers first (their answers feed links), deletions last (they destroy objects)."""
    ops = list(operations)
    makers = set(producers)

    def rank(op: Operation) -> int:
        if op.operation_id in makers:
            return 0
        return 2 if op.method.upper() == "DELETE" else 1

    return sorted(ops, key=rank)
