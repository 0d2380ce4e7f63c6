"""Hypothesis strategies for client frames, built from the contract's schemas (no I/O).

A small builder that covers what frame schemas use (const, enum, objects with
required/optional properties, strings with patterns and formats, bounded
numbers, arrays, anyOf/oneOf); every drawn frame is then filtered through the
compiled schema, so a gap in the builder can cost examples but never produce
a "valid" frame that is not. Malformed variants mutate a valid frame in one
way each, so a server's answer can be tied to a single defect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from hypothesis import strategies as st

from chatcontract.ws.frames import FrameValidator

__all__ = [
    "MUTATIONS",
    "Example",
    "client_frames",
    "from_schema",
    "json_values",
]

Example = tuple[str, Any]
"""``(kind, frame)``: ``"valid"`` or the mutation that broke it."""

MUTATIONS = ("missing-field", "wrong-type", "extra-field", "unknown-type", "not-an-object")
_MAX_TEXT = 40
_MAX_ITEMS = 4

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=_MAX_TEXT),
    lambda inner: (
        st.lists(inner, max_size=_MAX_ITEMS)
        | st.dictionaries(st.text(max_size=12), inner, max_size=_MAX_ITEMS)
    ),
    max_leaves=8,
)


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, _MAX_TEXT)))
    high = min(high, max(low, _MAX_TEXT))
    if "pattern" in schema:
        return st.from_regex(str(schema["pattern"]), fullmatch=True).filter(
            lambda s: low <= len(s) <= int(schema.get("maxLength", 10**9))
        )
    if schema.get("format") == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return st.text(min_size=low, max_size=high)


def _object(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = [k for k in schema.get("required", ()) if isinstance(k, str)]
    if schema.get("maxProperties") == 0:
        return st.just({})
    fixed = {k: from_schema(properties.get(k, True)) for k in required}
    optional = {k: from_schema(v) for k, v in properties.items() if k not in fixed}
    base = st.fixed_dictionaries(fixed, optional=optional)
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return base
    extras = st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in properties),
        json_values if extra is True else from_schema(extra),
        max_size=2,
    )
    return st.tuples(base, extras).map(lambda pair: {**pair[1], **pair[0]})


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values for a resolved JSON Schema; a best effort the caller filters with the schema."""
    if schema is True or schema == {}:
        return json_values
    if schema is False:
        return st.nothing()
    if not isinstance(schema, Mapping):
        return json_values
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(branch) for branch in schema[key]])
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, Mapping):
                for k, v in part.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged["required"] = [*merged.get("required", []), *v]
                    else:
                        merged.setdefault(k, v)
        return from_schema(merged)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "object" or (kind is None and "properties" in schema):
        return _object(schema)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(
            schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = schema.get("items", True)
        low = int(schema.get("minItems", 0))
        return st.lists(from_schema(items), min_size=low, max_size=max(low, _MAX_ITEMS))
    return json_values


def _other_type(value: Any) -> Any:
    if isinstance(value, str):
        return 12345
    if isinstance(value, dict):
        return "not an object"
    return "a string where the schema wants something else"


def _mutate(validator: FrameValidator, kind: str, frame: dict[str, Any], draw: st.DrawFn) -> Any:
    key = validator.discriminator
    if kind == "missing-field":
        droppable = [k for k in frame if k != key]
        if not droppable:
            kind = "unknown-type"
        else:
            dropped = draw(st.sampled_from(sorted(droppable)))
            return {k: v for k, v in frame.items() if k != dropped}
    if kind == "wrong-type":
        field = draw(st.sampled_from(sorted(frame)))
        return {**frame, field: _other_type(frame[field])}
    if kind == "extra-field":
        return {**frame, "chatcontract_extra": draw(json_values)}
    if kind == "unknown-type":
        suffix = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
        return {**frame, key: f"x_{suffix}"}
    return draw(st.lists(json_values, max_size=3) | st.integers() | st.text(max_size=8))


def client_frames(
    validator: FrameValidator, schemas: Mapping[str, Any]
) -> st.SearchStrategy[Example]:
    """Valid client frames of every declared type, and single-defect variants of them."""

    def valid_of(kind: str) -> st.SearchStrategy[Any]:
        def ok(value: Any) -> bool:
            return isinstance(value, dict) and validator.check_client(value).ok

        return from_schema(schemas[kind]).filter(ok)

    valid_by_type = {kind: valid_of(kind) for kind in schemas}
    valid = st.sampled_from(sorted(valid_by_type)).flatmap(lambda k: valid_by_type[k])

    @st.composite
    def examples(draw: st.DrawFn) -> Example:
        frame = draw(valid)
        kind = draw(st.sampled_from(("valid", *MUTATIONS)))
        if kind == "valid":
            return kind, frame
        return kind, _mutate(validator, kind, frame, draw)

    return examples()
