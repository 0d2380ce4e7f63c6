"""Operations, parameters and links of a spec, without I/O: shared by every checker.

Lookups should hit real objects, so values produced by earlier answers
(through the spec's ``links``, e.g. ``createThread`` -> ``thread_id``) win over
examples, and examples win over placeholders. A body is the spec's example,
else an instance generated from its schema (:func:`chatcontract.bodies.body_for`);
an operation without a ``requestBody`` is sent none.

The same links say what a created object is called and, read backwards, which
operation made the object an operation needs (:func:`links_into`); the
``DELETE`` on the path template a creation feeds removes it again
(:func:`delete_for`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chatcontract.bodies import body_for
from chatcontract.spec import Operation, Spec
from chatcontract.spec.build import iter_operations
from chatcontract.spec.refs import inline, resolve_pointer

__all__ = [
    "PLACEHOLDER",
    "Link",
    "Parameter",
    "Sample",
    "build_sample",
    "delete_for",
    "evaluate_link",
    "fill_path",
    "link_values",
    "links_into",
    "operation_links",
    "operation_parameters",
    "path_names",
    "producers_of",
    "request_properties",
]

PLACEHOLDER = "chatcontract0probe"
"""What fills a parameter nothing else can: easy to spot in a server's logs."""
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_TEMPLATE = re.compile(r"\{([^{}/]+)\}")


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


def links_into(spec: Spec, op: Operation) -> list[tuple[Operation, Link]]:
    """Every ``(producer, link)`` whose answer feeds one of ``op``'s parameters.

    Producers that change state come first (a ``POST`` creates what a lookup
    needs); a link from ``op`` to itself is no source of values.
    """
    found = [
        (producer, link)
        for producer in spec.operations
        if producer.operation_id != op.operation_id
        for link in operation_links(spec, producer)
        if link.target == op.operation_id
    ]
    return sorted(found, key=lambda pair: pair[0].method.upper() in _SAFE_METHODS)


def producers_of(spec: Spec, op: Operation, name: str) -> list[tuple[Operation, Link]]:
    """Where a value for ``op``'s parameter ``name`` can come from: links into ``op``
    first, then links that feed a parameter of that name to another operation
    (a spec often links ``createKernel`` to ``getKernel`` and not to the channel)."""
    direct = [(p, link) for p, link in links_into(spec, op) if link.parameter == name]
    seen = {p.operation_id for p, _ in direct}
    others: list[tuple[Operation, Link]] = []
    for producer in spec.operations:
        if producer.operation_id in seen or producer.operation_id == op.operation_id:
            continue
        link = next((k for k in operation_links(spec, producer) if k.parameter == name), None)
        if link is not None:
            seen.add(producer.operation_id)
            others.append((producer, link))
    others.sort(key=lambda pair: pair[0].method.upper() in _SAFE_METHODS)
    return direct + others


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


def link_values(spec: Spec, producer: Operation, body: Any) -> dict[str, Any]:
    """Parameter name -> value, for every link of ``producer`` its answer ``body`` resolves."""
    values: dict[str, Any] = {}
    for link in operation_links(spec, producer):
        value = evaluate_link(link.expression, body)
        if value is not None:
            values.setdefault(link.parameter, value)
    return values


def path_names(template: str) -> list[str]:
    """The parameter names of a path template, in order: ``/a/{x}/b/{y}`` -> ``[x, y]``."""
    return _TEMPLATE.findall(template)


def _fill(value: Any) -> str:
    return quote(str(value), safe="")


def fill_path(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with every ``{name}`` in ``values`` replaced by its percent-encoded value."""
    return _TEMPLATE.sub(
        lambda m: _fill(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _is_prefix(short: str, long: str) -> bool:
    head, tail = _segments(short), _segments(long)
    return len(head) < len(tail) and tail[: len(head)] == head


def delete_for(spec: Spec, producer: Operation, values: Mapping[str, Any]) -> Operation | None:
    """The ``DELETE`` that removes what ``producer`` created, found through the spec.

    The creation's values (``values``, from its links) must fill every path
    parameter of the ``DELETE``. In order of evidence: a ``DELETE`` the
    creation links to; one on the path template a link of the creation feeds
    (``getKernel``'s ``/kernels/{kernel_id}``); one on the created collection's
    item path (``POST /kernels`` -> ``/kernels/{kernel_id}``); one on an item
    path a fed operation lives under (``/kernels/{kernel_id}/channels``).
    """
    deletes = [
        op
        for op in spec.operations
        if op.method.upper() == "DELETE"
        and path_names(op.path)
        and all(name in values for name in path_names(op.path))
    ]
    linked = {link.target for link in operation_links(spec, producer)}
    fed = [op.path for op in spec.operations if op.operation_id in linked]
    collection = _segments(producer.path)

    def item_of_collection(op: Operation) -> bool:
        segments = _segments(op.path)
        return segments[:-1] == collection and bool(_TEMPLATE.fullmatch(segments[-1]))

    rules = (
        lambda op: op.operation_id in linked,
        lambda op: op.path in fed,
        item_of_collection,
        lambda op: any(_is_prefix(op.path, path) for path in fed),
    )
    for rule in rules:
        found = next((op for op in deletes if rule(op)), None)
        if found is not None:
            return found
    return None


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
        return PLACEHOLDER if unsafe and name in identifiers else example

    path = op.path
    query: dict[str, str] = {}
    for param in parameters:
        value = value_of(param.name, param.example)
        if param.location == "path":
            path = path.replace(
                "{" + param.name + "}", _fill(PLACEHOLDER if value is None else value)
            )
        elif param.location == "query" and param.required:
            query[param.name] = str(PLACEHOLDER if value is None else value)
    body = body_for(op)
    if isinstance(body, dict):
        for name in body:
            if isinstance(body[name], str | int) and (name in known or name in identifiers):
                body[name] = value_of(name, body[name])
    media = None
    if body is not None:
        media = next(
            (m for m in op.request_media_types if m == "application/json" or m.endswith("+json")),
            op.request_media_types[0],
        )
    return Sample(op.method.upper(), path, query, body, media)
