"""False alarms found on foreign streams, each pinned by the exact spec shape and bytes.

Sans-I/O: bytes through the parser into the checker, no sockets.
"""

from __future__ import annotations

from typing import Any

from chatcontract.sequence import SequenceChecker
from chatcontract.spec import load_spec
from chatcontract.spec.model import SequenceContract, Spec, StreamContract
from chatcontract.sse.checker import EVENTS, EventStreamChecker, compile_stream, sequence_aspect
from chatcontract.sse.parser import SSEComment, SSEParser, SSEUndispatched

JSON_DATA = {"type": "string", "contentMediaType": "application/json"}


def spec_for(
    item: Any,
    *,
    stream: dict[str, Any] | None = None,
    sequences: dict[str, Any] | None = None,
    media: dict[str, Any] | None = None,
) -> Spec:
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
    if sequences:
        op["x-sequence"] = list(sequences)
    return load_spec(
        {
            "openapi": "3.2.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/stream": {"post": op}},
            "components": {"x-sequences": sequences or {}},
        }
    )


def check(spec: Spec, body: bytes) -> EventStreamChecker:
    """Parse ``body`` and feed it as the reader does (declared data-less blocks included)."""
    stream: StreamContract = spec.streams[0]
    compiled = compile_stream(stream, spec)
    checker = EventStreamChecker(compiled)
    parser = SSEParser()
    parser.receive_data(body)
    parser.receive_eof()
    for item in parser.events_received():
        if isinstance(item, SSEComment):
            continue
        if isinstance(item, SSEUndispatched) and not (
            item.reason == "no-data" and compiled.declares_dataless(item.event)
        ):
            continue
        checker.feed(item)
    checker.finish()
    return checker


def messages(checker: EventStreamChecker, aspect: str = EVENTS) -> list[str]:
    return [f.message for f in checker.findings[aspect]]


CHUNK = {
    "type": "object",
    "required": ["id", "object", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion.chunk"},
        "choices": {"type": "array"},
    },
}
OPENAI_ITEM = {
    "oneOf": [
        {"required": ["data"], "properties": {"data": {**JSON_DATA, "contentSchema": CHUNK}}},
        {"required": ["data"], "properties": {"data": {"type": "string", "const": "[DONE]"}}},
    ]
}
OPENAI_BYTES = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"delta":'
    b'{"content":"Hi"}}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[]}\n\n'
    b"data: [DONE]\n\n"
)
COMPLETION = {
    "completion": {
        "events": ["chat.completion.chunk", "[DONE]"],
        "first": ["chat.completion.chunk"],
        "terminal": ["[DONE]"],
        "correlate": [{"pointer": "/id", "source": "consistent"}],
    }
}


def test_done_sentinel_is_not_reported_as_data_that_is_not_json() -> None:
    """The bug: every OpenAI-style run said `data is not JSON` for `data: [DONE]`."""
    checker = check(spec_for(OPENAI_ITEM), OPENAI_BYTES)
    assert messages(checker) == []
    assert checker.last_type == "[DONE]"


def test_done_sentinel_is_the_terminal_of_a_sequence_and_needs_no_correlation() -> None:
    spec = spec_for(OPENAI_ITEM, stream={"discriminator": "object"}, sequences=COMPLETION)
    checker = check(spec, OPENAI_BYTES)
    assert messages(checker) == []
    assert messages(checker, sequence_aspect("completion")) == []
    assert checker.done


def test_a_wrong_sentinel_is_still_data_that_is_not_json() -> None:
    [found] = messages(check(spec_for(OPENAI_ITEM), b"data: [DONE!]\n\n"))
    assert found.startswith("POST /stream event #1: data is not JSON (")
    assert found.endswith("): '[DONE!]'")


def test_an_untyped_event_is_validated_against_the_whole_item_schema() -> None:
    checker = check(spec_for(OPENAI_ITEM), b'data: {"id": 1, "object": "x", "choices": []}\n\n')
    assert messages(checker) == [
        'POST /stream event #1 /id: 1 is not of type "string"',
        'POST /stream event #1 /object: "chat.completion.chunk" was expected',
    ]


LANGSERVE_ITEM = {
    "oneOf": [
        {
            "required": ["event", "data"],
            "properties": {
                "event": {"const": "data"},
                "data": {
                    **JSON_DATA,
                    "contentSchema": {
                        "type": "object",
                        "required": ["content", "type"],
                        "properties": {"content": {"type": "string"}, "type": {"type": "string"}},
                    },
                },
            },
        },
        {"required": ["event"], "properties": {"event": {"const": "end"}}},
    ]
}
LANGSERVE_BYTES = (
    b'event: data\r\ndata: {"content":"Hel","type":"AIMessageChunk"}\r\n\r\n'
    b'event: data\r\ndata: {"content":"lo","type":"AIMessageChunk"}\r\n\r\n'
    b"event: end\r\n\r\n"
)
CHAIN = {"chain": {"events": ["data", "end"], "terminal": ["end"]}}


def test_with_event_type_from_event_a_type_inside_data_is_not_compared() -> None:
    """The bug: `type: AIMessageChunk` in the data was compared with `event: data`."""
    spec = spec_for(LANGSERVE_ITEM, stream={"event-type-from": "event"}, sequences=CHAIN)
    checker = check(spec, LANGSERVE_BYTES)
    assert messages(checker) == []
    assert messages(checker, sequence_aspect("chain")) == []
    assert checker.done
    assert checker.events == 3


def test_an_undeclared_end_block_is_not_an_event() -> None:
    item = {"oneOf": [LANGSERVE_ITEM["oneOf"][0]]}
    chain = {"chain": {"events": ["data"], "terminal": ["data"]}}
    spec = spec_for(item, stream={"event-type-from": "event"}, sequences=chain)
    checker = check(spec, LANGSERVE_BYTES)
    assert checker.events == 2
    assert not spec.streams[0].kinds["data"].dataless


def test_a_text_kind_named_by_the_event_field_is_validated_as_a_string() -> None:
    item = {
        "oneOf": [
            {
                "properties": {
                    "event": {"const": "tick"},
                    "data": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        ]
    }
    checker = check(spec_for(item), b"event: tick\ndata: 12\n\nevent: tick\ndata: x\n\n")
    assert messages(checker) == [
        'POST /stream event #2 (tick) data: \'x\': "x" does not match "^[0-9]+$"'
    ]


def test_a_stream_without_item_schema_accepts_any_well_framed_event() -> None:
    spec = spec_for(None, media={"schema": {"type": "string"}})
    checker = check(spec, b'data: plain text\n\ndata: {"a": 1}\n\nevent: x\ndata: [1]\n\n')
    assert messages(checker) == []
    assert checker.events == 3


def test_name_of_names_blocks_for_messages() -> None:
    spec = spec_for(OPENAI_ITEM, stream={"discriminator": "object"})
    checker = EventStreamChecker(compile_stream(spec.streams[0], spec))
    block = SSEUndispatched("message", "[DONE]", None, None, False, "unterminated")
    assert checker.name_of(block) == "[DONE]"
    chunk = SSEUndispatched(
        "message", '{"object":"chat.completion.chunk"}', None, None, False, "unterminated"
    )
    assert checker.name_of(chunk) == "chat.completion.chunk"
    assert checker.name_of(SSEUndispatched("end", "", None, None, True, "no-data")) == "end"


def test_a_sequence_event_without_json_counts_for_rules_but_correlations() -> None:
    contract = SequenceContract(
        name="s",
        events=("start", "stop"),
        first=("start",),
        terminal=("stop",),
        correlate=(),
    )
    checker = SequenceChecker(contract)
    assert checker.feed("start", {"run_id": "r"}, 1) == []
    assert checker.feed("stop", None, 2) == []
    assert checker.terminated
    assert checker.finish() == []
