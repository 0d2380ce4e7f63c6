"""Hypothesis strategies for client frames, built from the contract's schemas (no I/O).

Valid frames are drawn by schemathesis' generator (:mod:`chatcontract.ws.generation`:
``allOf``, ``$ref``-inlined schemas, ``oneOf``, formats and patterns included),
then filtered through the compiled schema, so a gap can cost examples but never
produce a "valid" frame that is not. Malformed variants mutate a valid frame in one
way each, so a server's answer can be tied to a single defect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from chatcontract.spec import Reaction
from chatcontract.ws.frames import FrameValidator, fresh, with_value
from chatcontract.ws.generation import schema_strategy

__all__ = [
    "MUTATIONS",
    "Example",
    "client_frames",
    "from_schema",
    "fuzzed_mutations",
    "json_values",
]

Example = tuple[str, Any]
"""``(kind, frame)``: ``"valid"`` or the mutation that broke it."""

MUTATIONS = ("missing-field", "wrong-type", "extra-field", "unknown-type", "not-an-object")
_KEEPS_OPEN = Reaction()
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


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values for a resolved JSON Schema, drawn by schemathesis (``allOf``, ``oneOf``,
    ``anyOf``, formats, patterns); the caller filters them with the compiled schema."""
    if schema is True or schema == {}:
        return json_values
    if schema is False:
        return st.nothing()
    if not isinstance(schema, Mapping):
        return json_values
    return schema_strategy(schema)


def _other_type(value: Any) -> Any:
    if isinstance(value, str):
        return 12345
    if isinstance(value, dict):
        return "not an object"
    return "a string where the schema wants something else"


def _mutate(validator: FrameValidator, kind: str, frame: dict[str, Any], draw: st.DrawFn) -> Any:
    key = validator.discriminator
    top = key.split("/")[1] if key.startswith("/") else key
    if kind == "missing-field":
        droppable = [k for k in frame if k != top]
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
        return with_value(frame, key, f"x_{suffix}")
    return draw(st.lists(json_values, max_size=3) | st.integers() | st.text(max_size=8))


_BY_REACTION = {
    "unknown-type": ("unknown-type", "not-an-object"),
    "schema-mismatch": ("missing-field", "wrong-type", "extra-field", "not-an-object"),
}
"""The mutations a declared reaction covers: when it is a close, the hygiene rows judge
them, and a fuzz example that ends the connection as the spec says is no failure."""


def fuzzed_mutations(validator: FrameValidator) -> tuple[str, ...]:
    """The mutations worth fuzzing: those whose declared reaction keeps the channel open."""
    closing = {
        mutation
        for reaction, mutations in _BY_REACTION.items()
        if (validator.reactions.get(reaction) or _KEEPS_OPEN).close_code is not None
        for mutation in mutations
    }
    return tuple(m for m in MUTATIONS if m not in closing)


def client_frames(
    validator: FrameValidator, schemas: Mapping[str, Any]
) -> st.SearchStrategy[Example]:
    """Valid client frames of every declared type, and single-defect variants of them.

    The frame that carries the token (``{in: message}``) belongs to the handshake and
    is not drawn: sending it again is a protocol error by design.
    """

    def valid_of(kind: str) -> st.SearchStrategy[Any]:
        def ok(value: Any) -> bool:
            return isinstance(value, dict) and validator.check_client(value).ok

        return from_schema(schemas[kind]).filter(ok)

    # Declared ids and timestamps are new in every frame: a server that discards a
    # repeated message id would otherwise leave a valid frame unanswered.
    valid_by_type = {
        kind: valid_of(kind).map(lambda f: fresh(validator, f))
        for kind in schemas
        if kind not in validator.handshake_types
    }
    valid = st.sampled_from(sorted(valid_by_type)).flatmap(lambda k: valid_by_type[k])
    mutations = fuzzed_mutations(validator)

    @st.composite
    def examples(draw: st.DrawFn) -> Example:
        frame = draw(valid)
        kind = draw(st.sampled_from(("valid", *mutations)))
        if kind == "valid":
            return kind, frame
        return kind, _mutate(validator, kind, frame, draw)

    return examples()
