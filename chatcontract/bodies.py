"""Request bodies from the spec: its example, else one instance generated from its schema.

Every request a checker sends on its own (inventory probes, stream requests,
isolation objects) is built here, so none carries a field the schema does not
allow and an operation without a ``requestBody`` gets no body at all. The
spec's example wins when it is valid; otherwise schemathesis (through its
public ``schemathesis.openapi`` loader and ``APIOperation.as_strategy``)
generates the instance, with hypothesis derandomized: the same schema gives
the same body on every run, and the first instance hypothesis draws is its
simplest one.

Canaries (markers to look for in what other users receive) go only where the
schema allows a free string: a ``type: string`` property without ``enum``,
``const``, ``format``, ``pattern`` or content constraints, within its length
bounds, and the marked body must still be valid.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Mapping
from typing import Any, Final

import orjson

from chatcontract.schemas import Validator, compile_schema
from chatcontract.spec import Operation

__all__ = [
    "CONSTRAINED_STRING_KEYWORDS",
    "body_for",
    "carries",
    "free_strings",
    "generate_instance",
    "with_marker",
]

CONSTRAINED_STRING_KEYWORDS: Final = (
    "enum",
    "const",
    "format",
    "pattern",
    "contentEncoding",
    "contentMediaType",
)
"""A string property with any of these is not free text: a marker would break it."""
_ATTEMPTS: Final = 50
"""Generated candidates tried before a schema counts as one nothing valid comes from."""
_GENERATED: dict[bytes, Any] = {}
_VALIDATORS: dict[bytes, Validator | None] = {}
_LOCK = threading.Lock()
_NOTHING: Final = object()
"""Cached for a schema nothing valid could be generated for."""
_MISSING: Final = object()


def _key(schema: Mapping[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _validator(schema: Mapping[str, Any]) -> Validator | None:
    key = _key(schema)
    with _LOCK:
        if key not in _VALIDATORS:
            try:
                _VALIDATORS[key] = compile_schema(schema)
            except (ValueError, TypeError):
                # A schema jsonschema-rs cannot compile: no instance can be vouched for.
                _VALIDATORS[key] = None
        return _VALIDATORS[key]


def _is_valid(schema: Mapping[str, Any], instance: Any) -> bool:
    validator = _validator(schema)
    return validator is not None and validator.is_valid(instance)


def _generate(schema: Mapping[str, Any], media_type: str) -> Any:
    import schemathesis
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import HypothesisException

    document = {
        "openapi": "3.1.0",
        "info": {"title": "request body", "version": "1"},
        "paths": {
            "/body": {
                "post": {
                    "requestBody": {"required": True, "content": {media_type: {"schema": schema}}},
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    chosen = settings(
        database=None,
        derandomize=True,
        max_examples=_ATTEMPTS,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    validator = _validator(schema)
    if validator is None:
        return _NOTHING
    try:
        strategy = schemathesis.openapi.from_dict(document)["/body"]["POST"].as_strategy()
        case = find(strategy, lambda case: validator.is_valid(case.body), settings=chosen)
    except (HypothesisException, schemathesis.errors.SchemathesisError, ValueError, TypeError):
        return _NOTHING
    return case.body


def generate_instance(schema: Mapping[str, Any], media_type: str = "application/json") -> Any:
    """One valid instance of ``schema``, the same on every call; ``None`` when none is found.

    ``schema`` must be fully inlined (no ``$ref``), as :class:`Operation` holds it.
    """
    key = _key(schema) + media_type.encode()
    found = _GENERATED.get(key, _MISSING)
    if found is _MISSING:
        # Two threads may both generate: derandomized, they find the same instance.
        found = _GENERATED.setdefault(key, _generate(schema, media_type))
    return None if found is _NOTHING else copy.deepcopy(found)


def body_for(op: Operation) -> Any:
    """What to send as ``op``'s JSON body; ``None``: send no body at all.

    No ``requestBody``: nothing. Otherwise the spec's example when the schema
    accepts it, else an instance generated from the schema. An optional body
    without an example is left out; a required one nothing valid could be
    generated for becomes ``{}`` (the server's answer then shows why).
    """
    if not op.request_media_types:
        return None
    schema = op.request_schema
    example = op.request_example
    if example is not None and (schema is None or _is_valid(schema, example)):
        return copy.deepcopy(example)
    if not op.request_body_required:
        return None
    if schema is not None:
        media = next(
            (m for m in op.request_media_types if m == "application/json" or m.endswith("+json")),
            "application/json",
        )
        generated = generate_instance(schema, media)
        if generated is not None:
            return generated
    return copy.deepcopy(example) if example is not None else {}


def free_strings(schema: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The top-level properties of ``schema`` that hold free text, in schema order."""
    properties = (schema or {}).get("properties")
    if not isinstance(properties, dict):
        return {}
    return {
        name: prop
        for name, prop in properties.items()
        if isinstance(prop, dict)
        and prop.get("type") == "string"
        and not any(key in prop for key in CONSTRAINED_STRING_KEYWORDS)
    }


def _marked(value: str, marker: str, prop: Mapping[str, Any]) -> str | None:
    low, high = int(prop.get("minLength", 0)), int(prop.get("maxLength", 1 << 30))
    for candidate in (f"{value} {marker}" if value else marker, marker):
        if low <= len(candidate) <= high:
            return candidate
    return None


def with_marker(
    body: Any,
    schema: Mapping[str, Any] | None,
    marker: str,
    *,
    keep: Collection[str] = (),
    add: bool = False,
) -> Any:
    """``body`` with ``marker`` in each free-text field it holds (never in ``keep``).

    With ``add``, a body holding no free-text field gets the first optional
    one the schema declares, set to the marker. A marker that would make a
    valid body invalid against ``schema`` is left out.
    """
    if not isinstance(body, dict):
        return body
    fields = {name: prop for name, prop in free_strings(schema).items() if name not in keep}
    marked = _mark_nested(body, schema or {}, marker, depth=0, keep=keep)
    if add and marked == body:
        for name, prop in fields.items():
            candidate = None if name in body else _marked("", marker, prop)
            if candidate is not None:
                marked[name] = candidate
                break
    if schema is not None and marked != body and _is_valid(schema, body):
        # The marker must not be what makes a valid body invalid.
        return marked if _is_valid(schema, marked) else body
    return marked


_MAX_DEPTH = 4
"""How deep the marker follows nested objects and arrays (bounded: schemas may recurse)."""


def _properties(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = (schema or {}).get("properties")
    return found if isinstance(found, dict) else {}


def _mark_nested(
    value: Any,
    schema: Mapping[str, Any],
    marker: str,
    *,
    depth: int,
    keep: Collection[str] = (),
) -> Any:
    """``value`` with the marker in its free-text fields, following ``properties``/``items``
    (chat APIs nest their free text: ``messages[].content``, ``input.question``); top-level
    fields in ``keep`` are left alone."""
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [_mark_nested(v, items, marker, depth=depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    fields = free_strings(schema)
    marked = dict(value)
    for name, inner in value.items():
        if name in keep:
            continue
        prop = fields.get(name)
        if prop is not None and isinstance(inner, str):
            candidate = _marked(inner, marker, prop)
            if candidate is not None:
                marked[name] = candidate
        elif isinstance(inner, dict | list):
            nested = _properties(schema).get(name)
            if isinstance(nested, dict):
                marked[name] = _mark_nested(inner, nested, marker, depth=depth + 1)
    return marked


def carries(body: Any, marker: str) -> bool:
    """Whether ``marker`` is anywhere in ``body`` as sent."""
    if body is None:
        return False
    return marker.encode() in orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
