"""Every valid itemSchema shape is read, by one derivation shared by lint and the model.

Each spec here is valid OpenAPI; none may be rejected. What chatcontract
cannot derive is a warning naming the contracts it skips.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chatcontract.spec import diagnose, load_spec
from chatcontract.spec.lint import diagnose_document, lint_document
from chatcontract.spec.model import EventShape

Doc = dict[str, Any]
JSON_DATA = {"type": "string", "contentMediaType": "application/json"}


def _json(schema: Any) -> dict[str, Any]:
    return {**JSON_DATA, "contentSchema": schema}


def doc(
    item: Any,
    *,
    openapi: str = "3.2.0",
    stream: dict[str, Any] | None = None,
    sequence: list[str] | None = None,
    sequences: dict[str, Any] | None = None,
    media: dict[str, Any] | None = None,
    schemas: dict[str, Any] | None = None,
) -> Doc:
    """A one-stream spec: ``POST /stream`` answering ``item`` as its itemSchema."""
    op: dict[str, Any] = {
        "operationId": "stream",
        "responses": {
            "200": {
                "description": "events",
                "content": {"text/event-stream": media or {"itemSchema": item}},
            }
        },
    }
    if stream is not None:
        op["x-stream"] = stream
    if sequence is not None:
        op["x-sequence"] = sequence
    document: Doc = {
        "openapi": openapi,
        "info": {"title": "t", "version": "1"},
        "paths": {"/stream": {"post": op}},
        "components": {"schemas": schemas or {}},
    }
    if sequences is not None:
        document["components"]["x-sequences"] = sequences
    return document


def errors(document: Doc) -> list[tuple[str, str]]:
    return lint_document(document)


def warnings(document: Doc) -> list[str]:
    return [d.message for d in diagnose_document(document) if d.severity == "warning"]


def stream_of(document: Doc) -> Any:
    return load_spec(document).streams[0]


OPENAI_ITEM = {
    "oneOf": [
        {
            "type": "object",
            "required": ["data"],
            "properties": {"data": _json({"$ref": "#/components/schemas/Chunk"})},
        },
        {
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "string", "const": "[DONE]"}},
        },
    ]
}
CHUNK = {
    "type": "object",
    "required": ["id", "object"],
    "properties": {"id": {"type": "string"}, "object": {"const": "chat.completion.chunk"}},
}


def test_an_untyped_item_schema_is_no_error_and_validates_each_event() -> None:
    """The bug: a valid spec whose itemSchema is not a oneOf of consts made `run` exit 2."""
    item = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": _json({"type": "object"})},
    }
    document = doc(item)
    assert errors(document) == []
    assert warnings(document) == []
    stream = stream_of(document)
    assert stream.event_type_from is None
    assert stream.kinds == {}
    assert stream.fallback == EventShape("", {"type": "object"}, None, False)


def test_done_sentinel_is_a_typed_non_json_event() -> None:
    document = doc(OPENAI_ITEM, schemas={"Chunk": CHUNK})
    assert errors(document) == []
    stream = stream_of(document)
    assert stream.sentinels == {"[DONE]": "[DONE]"}
    assert stream.kinds["[DONE]"] == EventShape(
        "[DONE]", None, {"type": "string", "const": "[DONE]"}
    )
    assert stream.fallback is not None
    assert stream.fallback.json == CHUNK


def test_a_discriminator_naming_a_data_property_types_the_chunks() -> None:
    document = doc(OPENAI_ITEM, schemas={"Chunk": CHUNK}, stream={"discriminator": "object"})
    stream = stream_of(document)
    assert stream.event_type_from == "data"
    assert set(stream.kinds) == {"chat.completion.chunk", "[DONE]"}
    assert stream.fallback is None


def test_the_standard_discriminator_mapping_types_events_without_consts() -> None:
    plain = {"type": "object", "properties": {"kind": {"type": "string"}}}
    content = {
        "oneOf": [
            {"$ref": "#/components/schemas/Started"},
            {"$ref": "#/components/schemas/Finished"},
            {"$ref": "#/components/schemas/Implicit"},
        ],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {"started": "#/components/schemas/Started", "finished": "Finished"},
        },
    }
    document = doc(
        {"type": "object", "properties": {"data": _json(content)}},
        schemas={"Started": plain, "Finished": plain, "Implicit": plain},
    )
    assert errors(document) == []
    stream = stream_of(document)
    assert stream.event_type_from == "data"
    assert stream.discriminator == "kind"
    # Unmapped branches take their component name, as OpenAPI's implicit mapping says.
    assert list(stream.kinds) == ["started", "finished", "Implicit"]


def test_event_field_types_by_const_one_value_enum_or_mapping() -> None:
    def branch(event: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {"event": event, "data": _json({"type": "object"})}}

    item = {"oneOf": [branch({"const": "a"}), branch({"enum": ["b"]}), branch({"type": "string"})]}
    stream = stream_of(doc(item))
    assert stream.event_type_from == "event"
    assert set(stream.kinds) == {"a", "b"}
    assert stream.fallback is not None  # the branch that fixes no event
    mapped = {
        "oneOf": [{"$ref": "#/components/schemas/Start"}],
        "discriminator": {"propertyName": "event", "mapping": {"go": "#/components/schemas/Start"}},
    }
    start = {"type": "object", "properties": {"data": _json({"type": "object"})}}
    assert set(stream_of(doc(mapped, schemas={"Start": start})).kinds) == {"go"}


def test_a_branch_without_data_is_a_dataless_kind() -> None:
    item = {
        "oneOf": [
            {
                "properties": {"event": {"const": "data"}, "data": _json({"type": "object"})},
                "required": ["data"],
            },
            {"properties": {"event": {"const": "end"}}, "required": ["event"]},
        ]
    }
    stream = stream_of(doc(item))
    assert stream.kinds["end"] == EventShape("end", None, True, True)
    assert stream.kinds["data"].dataless is False


def test_event_type_from_event_ignores_the_data_discriminator() -> None:
    """Type from one place: with `event-type-from: event`, data branches are not split."""
    content = {
        "oneOf": [
            {"properties": {"type": {"const": "AIMessageChunk"}}},
            {"properties": {"type": {"const": "HumanMessageChunk"}}},
        ]
    }
    item = {"oneOf": [{"properties": {"event": {"const": "data"}, "data": _json(content)}}]}
    stream = stream_of(doc(item, stream={"event-type-from": "event"}))
    assert list(stream.kinds) == ["data"]
    assert stream.kinds["data"].json == content


def test_an_untyped_stream_skips_its_sequences_with_a_warning_naming_the_cure() -> None:
    item = {"properties": {"data": _json({"type": "object"})}}
    document = doc(
        item,
        sequence=["run"],
        sequences={"run": {"events": ["start", "stop"], "terminal": ["stop"]}},
    )
    assert errors(document) == []
    [warning] = warnings(document)
    assert warning.startswith(
        "POST /stream: sequence:run will be skipped, its events carry no type"
    )
    assert "run needs start, stop" in warning
    assert "x-stream.event-type-from + discriminator" in warning
    stream = stream_of(document)
    assert stream.sequences == ()
    assert [name for name, _ in stream.skipped_sequences] == ["run"]
    assert load_spec(document).warnings[0][1] == warning


def test_a_sentinel_only_sequence_still_runs_on_an_untyped_stream() -> None:
    document = doc(
        OPENAI_ITEM,
        schemas={"Chunk": CHUNK},
        sequence=["done"],
        sequences={"done": {"events": ["[DONE]"], "terminal": ["[DONE]"]}},
    )
    assert warnings(document) == []
    assert stream_of(document).sequences == ("done",)


def test_no_item_schema_is_a_warning_not_an_error() -> None:
    document = doc(None, media={"schema": {"type": "string"}})
    assert errors(document) == []
    assert warnings(document) == [
        "POST /stream documents no itemSchema: its events are checked for SSE framing only "
        "(an itemSchema, OpenAPI 3.2, describes each event)"
    ]
    stream = stream_of(document)
    assert stream.item_schema is None
    assert stream.kinds == {}
    assert stream.fallback is None


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_item_schema_in_an_older_document_is_one_warning(version: str) -> None:
    item = {"type": "object", "properties": {"data": _json({"type": "object"})}}
    document = doc(item, openapi=version)
    document["paths"]["/other"] = copy.deepcopy(document["paths"]["/stream"])
    document["paths"]["/other"]["post"]["operationId"] = "other"
    assert errors(document) == []
    assert warnings(document) == [
        f"itemSchema needs OpenAPI 3.2; this document is {version[:3]} (2 media types use it); "
        "it is read as 3.2 would read it, so each event is still validated"
    ]
    assert len(load_spec(document).streams) == 2


def test_a_pre_32_event_schema_is_read_as_one_event() -> None:
    """Before 3.2, `schema` of an event stream describes one event (as schemathesis reads it)."""
    event = {"type": "object", "properties": {"data": _json({"type": "object"})}}
    document = doc(None, openapi="3.1.0", media={"schema": event})
    assert errors(document) == []
    assert warnings(document) == []
    fallback = stream_of(document).fallback
    assert fallback is not None
    assert fallback.json == {"type": "object"}


def test_an_openapi_30_event_schema_is_read_with_nullable() -> None:
    event = {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["tick"]},
            "data": {"type": "string", "maxLength": 5, "nullable": True},
        },
    }
    document = doc(None, openapi="3.0.3", media={"schema": event})
    assert errors(document) == []
    assert warnings(document) == []
    stream = stream_of(document)
    assert stream.event_type_from == "event"
    assert stream.kinds["tick"].text == {"type": ["string", "null"], "maxLength": 5}


def test_a_recursive_content_schema_is_a_warning_not_a_crash() -> None:
    tree = {
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}
        },
    }
    item = {
        "properties": {
            "event": {"const": "tree"},
            "data": _json({"$ref": "#/components/schemas/Tree"}),
        }
    }
    document = doc(item, schemas={"Tree": tree})
    assert errors(document) == []
    [warning] = warnings(document)
    assert warning.startswith("recursive $ref")
    assert stream_of(document).kinds["tree"].json is True


def test_operations_without_x_tier_are_p1_and_say_so() -> None:
    document = doc({"properties": {"data": {"type": "string"}}})
    op = load_spec(document).operations[0]
    assert (op.tier, op.tier_source) == ("P1", "default")
    document["paths"]["/stream"]["post"]["x-tier"] = "P2"
    op = load_spec(document).operations[0]
    assert (op.tier, op.tier_source) == ("P2", "spec")


def test_warning_lines_are_located_and_marked(tmp_path: Any) -> None:
    path = tmp_path / "spec.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc(None, media={"schema": {"type": "string"}})))
    where, found = diagnose(path)
    assert [d.line(where) for d in found] == [
        f"{path}: /paths/~1stream/post/responses/200/content/text~1event-stream: warning: "
        "POST /stream documents no itemSchema: its events are checked for SSE framing only "
        "(an itemSchema, OpenAPI 3.2, describes each event)"
    ]


def test_the_chat_api_spec_has_no_warning() -> None:
    assert load_spec().warnings == ()
