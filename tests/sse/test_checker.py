"""EventStreamChecker: per-event JSON, type and schema checks plus sequences, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatcontract.spec import load_spec
from chatcontract.sse.checker import EVENTS, EventStreamChecker, compile_stream, sequence_aspect
from chatcontract.sse.parser import SSEEvent, SSEParser

SPEC = load_spec()
CHAT = SPEC.stream("POST /api/chat/stream")
AGENTS = SPEC.stream("POST /api/agents/stream")
RUN = "run_7c2e9a41b0d3"
THREAD = "thread_3f9a2c1b7d4e"

PAYLOADS: dict[str, dict[str, Any]] = {
    "stream_start": {"agent": "research"},
    "user_message": {"message_id": "msg_51d0c8e2aa97", "content": "hi"},
    "agent_started": {"agent_name": "research", "message": "hi"},
    "agent_thinking": {"thought": "hmm", "step_number": 1},
    "tool_executing": {"tool_call_id": "call_1", "tool_name": "search_docs", "parameters": {}},
    "tool_completed": {
        "tool_call_id": "call_1",
        "tool_name": "search_docs",
        "result": {"hits": []},
        "execution_time_ms": 3,
    },
    "response_chunk": {"content": "All good", "is_final": True},
    "response_complete": {"content": "All good"},
    "agent_completed": {"result": "All good", "duration_ms": 12},
    "stream_end": {"status": "completed"},
}
AGENT_RUN = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "response_chunk",
    "agent_completed",
]
CHAT_RUN = ["stream_start", "user_message", *AGENT_RUN, "response_complete", "stream_end"]


def envelope(kind: str, **changes: Any) -> dict[str, Any]:
    event = {
        "type": kind,
        "run_id": RUN,
        "thread_id": THREAD,
        "timestamp": "2025-09-07T13:10:00Z",
        "payload": dict(PAYLOADS[kind]),
    }
    event.update(changes)
    return event


def frames(events: list[dict[str, Any]], *, named: bool) -> bytes:
    out = []
    for number, event in enumerate(events, 1):
        head = f"event: {event['type']}\nid: {RUN}:{number}\n" if named else ""
        out.append(f"{head}data: {json.dumps(event)}\n\n")
    return "".join(out).encode()


def run_checker(
    stream: Any, body: bytes, request: dict[str, Any] | None = None
) -> EventStreamChecker:
    parser = SSEParser()
    parser.receive_data(body)
    parser.receive_eof()
    checker = EventStreamChecker(compile_stream(stream, SPEC), request)
    for item in parser.events_received():
        if isinstance(item, SSEEvent):
            checker.feed(item)
    checker.finish()
    return checker


def messages(checker: EventStreamChecker, aspect: str = EVENTS) -> list[str]:
    return [f.message for f in checker.findings[aspect]]


def all_messages(checker: EventStreamChecker) -> list[str]:
    return [f.message for found in checker.findings.values() for f in found]


@pytest.mark.parametrize(
    ("stream", "kinds", "named"), [(CHAT, CHAT_RUN, False), (AGENTS, AGENT_RUN, True)]
)
def test_a_valid_stream_has_no_findings_and_is_done(
    stream: Any, kinds: list[str], named: bool
) -> None:
    checker = run_checker(stream, frames([envelope(k) for k in kinds], named=named))
    assert all_messages(checker) == []
    assert checker.done
    assert checker.events == len(kinds)


def test_schema_error_names_operation_event_number_type_and_pointer() -> None:
    events = [envelope(k) for k in CHAT_RUN]
    events[3]["payload"]["step_number"] = "1"
    checker = run_checker(CHAT, frames(events, named=False))
    assert messages(checker) == [
        'POST /api/chat/stream event #4 (agent_thinking) /payload/step_number: "1" is not of '
        'type "integer"'
    ]
    assert checker.findings[EVENTS][0].location == "event #4 (agent_thinking) /payload/step_number"


def test_event_mode_selects_the_schema_by_the_sse_event_field() -> None:
    events = [envelope(k) for k in AGENT_RUN]
    events[1]["payload"]["step_number"] = 0
    checker = run_checker(AGENTS, frames(events, named=True))
    assert messages(checker) == [
        "POST /api/agents/stream event #2 (agent_thinking) /payload/step_number: 0 is less than "
        "the minimum of 1"
    ]


def test_event_field_alone_types_the_event_and_its_schema_judges_the_data() -> None:
    """The SSE event field names the type; `type` in the data is judged only by that
    type's declared schema (here it fixes `type`), never compared on its own."""
    body = frames([envelope(k) for k in AGENT_RUN], named=True).replace(
        b"event: agent_thinking", b"event: agent_started", 1
    )
    checker = run_checker(AGENTS, body)
    found = messages(checker)
    expected = 'event #2 (agent_started) /type: "agent_started" was expected'
    assert f"POST /api/agents/stream {expected}" in found
    assert not any("but the SSE event field says" in m for m in found)


def test_event_mode_without_event_field_is_a_finding() -> None:
    body = b"data: " + json.dumps(envelope("agent_started")).encode() + b"\n\n"
    checker = run_checker(AGENTS, body)
    assert messages(checker)[0] == (
        "POST /api/agents/stream event #1: has no SSE event field; this stream names each "
        "event's type there"
    )


def test_unknown_type_is_a_finding_naming_the_known_types() -> None:
    event = envelope("agent_started", type="agent_dreaming")
    checker = run_checker(CHAT, frames([event], named=False))
    found = messages(checker)[0]
    assert found.startswith(
        "POST /api/chat/stream event #1 (agent_dreaming): unknown event type 'agent_dreaming'; "
        "the spec defines stream_start, user_message"
    )


def test_data_that_is_not_json_is_a_finding() -> None:
    checker = run_checker(CHAT, b"data: {not json\n\n")
    assert messages(checker)[0].startswith("POST /api/chat/stream event #1: data is not JSON (")
    assert "'{not json'" in messages(checker)[0]


def test_data_mode_needs_a_string_discriminator() -> None:
    checker = run_checker(CHAT, b'data: {"kind": "stream_start"}\n\ndata: [1, 2]\n\n')
    assert messages(checker) == [
        "POST /api/chat/stream event #1: data is a JSON object without a string 'type' "
        "naming its event type",
        "POST /api/chat/stream event #2: data is JSON list without a string 'type' naming "
        "its event type",
    ]


def test_sequence_violations_go_to_their_sequence_aspect() -> None:
    kinds = [k for k in CHAT_RUN if k not in ("agent_completed", "stream_end")]
    checker = run_checker(CHAT, frames([envelope(k) for k in kinds], named=False))
    assert messages(checker) == []
    assert messages(checker, sequence_aspect("agent-run")) == [
        "POST /api/chat/stream the events ended without a terminal agent-run event "
        "(agent_completed or agent_error) after 5 agent-run events"
    ]
    assert len(messages(checker, sequence_aspect("chat-stream"))) == 1
    assert not checker.done


def test_request_thread_id_is_correlated() -> None:
    events = [envelope(k) for k in AGENT_RUN]
    checker = run_checker(AGENTS, frames(events, named=True), {"thread_id": "thread_other00"})
    found = messages(checker, sequence_aspect("agent-run"))
    assert len(found) == len(AGENT_RUN)
    assert found[0] == (
        f"POST /api/agents/stream event #1 (agent_started): /thread_id is '{THREAD}' but the "
        "request has 'thread_other00'"
    )


def test_findings_per_aspect_are_capped_with_a_note() -> None:
    events = [envelope("agent_thinking", payload={"thought": 1, "step_number": "x"})] * 40
    checker = EventStreamChecker(compile_stream(CHAT, SPEC), max_findings=5)
    parser = SSEParser()
    parser.receive_data(frames(events, named=False))
    for item in parser.events_received():
        assert isinstance(item, SSEEvent)
        checker.feed(item)
    checker.finish()
    found = checker.findings[EVENTS]
    assert len(found) == 6
    assert found[-1].severity == "warning"
    assert "more findings of this kind not shown" in found[-1].message


def test_validators_are_compiled_once_per_stream_and_spec() -> None:
    assert compile_stream(CHAT, SPEC) is compile_stream(CHAT, SPEC)
    assert compile_stream(CHAT, SPEC).sequences == (
        SPEC.sequences["chat-stream"],
        SPEC.sequences["agent-run"],
    )
    assert compile_stream(CHAT).sequences == ()
    assert compile_stream(CHAT, SPEC).run_pointers == ("/run_id",)
