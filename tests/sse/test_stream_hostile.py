"""The stream reader against hostile servers: it always ends, in time, with a finding."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import httpx
import pytest

from chatcontract.errors import TargetUnreachable
from chatcontract.spec import load_spec
from chatcontract.spec.model import StreamDeadlines
from chatcontract.sse.checker import EVENTS, compile_stream
from chatcontract.sse.parser import ParserLimits
from chatcontract.sse.stream import DEADLINES, StreamRequest, StreamRun, read_stream

from . import hostile

SPEC = load_spec()
AGENTS = compile_stream(SPEC.stream("POST /api/agents/stream"), SPEC)
SHORT = StreamDeadlines(connect=1.0, first_event=1.0, idle=1.0, total=2.0)
SLACK = 1.0
"""The spec'd bound: every read ends within its deadline plus one second."""


async def read(
    base_url: str, deadlines: StreamDeadlines = SHORT, **options: Any
) -> tuple[StreamRun, float]:
    request = StreamRequest(
        "POST", base_url + "/api/agents/stream", {"agent": "research", "message": "hi"}, "tok"
    )
    async with httpx.AsyncClient() as client:
        started = time.monotonic()
        run = await read_stream(client, AGENTS, request, deadlines=deadlines, **options)
        return run, time.monotonic() - started


def serve_and_read(behaviour: hostile.Behaviour, **options: Any) -> tuple[StreamRun, float]:
    async def main() -> tuple[StreamRun, float]:
        async with hostile.hostile_server(behaviour) as url:
            return await read(url, **options)

    return asyncio.run(main())


def messages(run: StreamRun, aspect: str) -> list[str]:
    return [f.message for f in run.all_findings(aspect)]


def test_an_endless_stream_stops_at_the_total_deadline() -> None:
    """A stream that keeps sending events but never ends the run must not hold the checker."""
    run, elapsed = serve_and_read(hostile.endless_events(0.02))
    assert elapsed < SHORT.total + SLACK
    assert run.stop == "deadline"
    assert messages(run, DEADLINES) == [
        f"POST /api/agents/stream: total deadline 2.0 s missed after event #{len(run.events)} "
        "(agent_thinking)"
    ]
    assert len(run.events) > 10


def test_an_endless_fast_stream_stops_at_max_events() -> None:
    run, elapsed = serve_and_read(hostile.endless_events(0))
    assert elapsed < SHORT.total + SLACK
    assert run.stop == "max-events"
    assert len(run.events) == AGENTS.stream.max_events
    assert messages(run, DEADLINES) == [
        "POST /api/agents/stream: 1000 events (the spec's max-events) without the run's "
        "terminal event"
    ]
    assert any(
        "reading stopped early: max-events 1000 reached" in m
        for m in messages(run, "sequence:agent-run")
    )


def test_headers_then_silence_misses_the_first_event_deadline() -> None:
    run, elapsed = serve_and_read(hostile.headers_then_silence)
    assert elapsed < SHORT.first_event + SLACK
    assert run.status == 200
    assert messages(run, DEADLINES) == [
        "POST /api/agents/stream: first-event deadline 1.0 s missed before any event"
    ]


def test_a_server_that_never_answers_misses_the_first_event_deadline() -> None:
    run, elapsed = serve_and_read(hostile.never_answers)
    assert elapsed < SHORT.first_event + SLACK
    assert run.status is None
    assert messages(run, DEADLINES) == [
        "POST /api/agents/stream: first-event deadline 1.0 s missed waiting for the response "
        "headers"
    ]


def test_a_byte_at_a_time_stream_misses_its_deadline() -> None:
    """Bytes trickling in are not liveness: only complete events and comments are."""
    run, elapsed = serve_and_read(hostile.byte_at_a_time(0.01))
    assert elapsed < SHORT.total + SLACK
    assert run.stop == "deadline"
    found = messages(run, DEADLINES)
    assert len(found) == 1
    assert " deadline 1.0 s missed " in found[0]


def test_a_byte_at_a_time_stream_is_parsed_when_it_is_fast_enough() -> None:
    run, _ = serve_and_read(
        hostile.byte_at_a_time(0.0005),
        deadlines=StreamDeadlines(connect=1, first_event=3, idle=1, total=4),
    )
    assert [e.type for e in run.events] == ["agent_started", "agent_thinking"]
    assert messages(run, EVENTS) == []
    assert messages(run, DEADLINES) == [
        "POST /api/agents/stream: idle deadline 1.0 s missed after event #2 (agent_thinking)"
    ]


def test_a_100_mb_event_is_cut_by_the_parser_limits() -> None:
    """A hostile event must cost a bounded amount of memory, not its own size."""
    tracemalloc.start()
    try:
        run, elapsed = serve_and_read(hostile.huge_event())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
    assert elapsed < SHORT.total + SLACK
    assert run.stop == "parser"
    found = messages(run, EVENTS)
    assert len(found) == 1
    assert found[0].startswith(
        "POST /api/agents/stream: SSE framing: line longer than 1048576 bytes"
    )


def test_a_huge_event_of_many_lines_is_cut_by_the_event_limit() -> None:
    async def many_lines(request: hostile.Request, writer: Any) -> None:
        await hostile.send_head(writer)
        line = b"data: " + b"y" * 1000 + b"\n"
        while True:
            await hostile.chunk(writer, line * 64)

    run, elapsed = serve_and_read(many_lines, limits=ParserLimits(max_event_bytes=1 << 20))
    assert elapsed < SHORT.total + SLACK
    assert messages(run, EVENTS)[0].startswith(
        "POST /api/agents/stream: SSE framing: event data larger than 1048576 bytes"
    )


def test_heartbeat_comments_keep_the_stream_alive_past_the_idle_deadline() -> None:
    run, elapsed = serve_and_read(hostile.comments_forever(0.2))
    assert elapsed < SHORT.total + SLACK
    assert run.comments >= 5
    assert messages(run, DEADLINES) == [
        "POST /api/agents/stream: total deadline 2.0 s missed after event #1 (agent_started)"
    ]


def test_a_dropped_connection_is_a_transport_finding() -> None:
    run, _ = serve_and_read(hostile.drops_mid_stream)
    assert run.stop == "transport"
    found = messages(run, EVENTS)
    assert found[0].startswith(
        "POST /api/agents/stream: transport error after event #2 (agent_thinking): "
        "RemoteProtocolError"
    )


def test_wrong_content_type_is_a_finding() -> None:
    run, _ = serve_and_read(hostile.wrong_content_type)
    assert run.stop == "content-type"
    assert not run.opened
    assert messages(run, EVENTS) == [
        "POST /api/agents/stream: Content-Type is application/json, expected text/event-stream"
    ]


def test_missing_cache_control_is_a_finding_when_documented() -> None:
    async def no_cache_header(request: hostile.Request, writer: Any) -> None:
        await hostile.send_head(writer, extra="")
        await hostile.chunk(writer, hostile.agent_frame(1, "agent_started"))
        await hostile.end(writer)

    run, _ = serve_and_read(no_cache_header, check_cache=True)
    assert messages(run, EVENTS) == [
        "POST /api/agents/stream: Cache-Control is missing; the spec documents it and a stream "
        "must not be cached (no-cache or no-store)"
    ]


def test_an_error_status_keeps_an_excerpt_of_the_body() -> None:
    run, _ = serve_and_read(hostile.status(404))
    assert run.status == 404
    assert run.stop == "status"
    assert '"Not Found"' in run.body_excerpt


def test_refused_first_connection_raises_target_unreachable() -> None:
    async def main() -> None:
        url = await hostile.refused_url()
        await read(url, unreachable_raises=True)

    with pytest.raises(TargetUnreachable, match=r"cannot connect to http://127\.0\.0\.1"):
        asyncio.run(main())


def test_refused_later_connection_is_a_finding() -> None:
    async def main() -> StreamRun:
        url = await hostile.refused_url()
        run, _ = await read(url)
        return run

    run = asyncio.run(main())
    assert run.stop == "transport"
    assert messages(run, EVENTS)[0].startswith(
        "POST /api/agents/stream: cannot connect: ConnectError"
    )


def test_repro_never_contains_the_token() -> None:
    request = StreamRequest(
        "POST", "http://127.0.0.1:1/api/agents/stream", {"message": "it's"}, "secret-token"
    )
    curl = request.curl()
    assert "secret-token" not in curl
    assert '"Authorization: Bearer $CHATCONTRACT_TOKEN"' in curl
    assert curl.startswith("curl -N ")
    assert request.http_headers()["Authorization"] == "Bearer secret-token"


def test_a_utf8_sequence_cut_off_at_eof_is_a_framing_finding() -> None:
    """The decoder only notices a truncated character when the body ends."""

    async def truncated(request: hostile.Request, writer: Any) -> None:
        await hostile.send_head(writer)
        await hostile.chunk(writer, hostile.agent_frame(1, "agent_started") + b": \xe2\x82")
        await hostile.end(writer)

    run, _ = serve_and_read(truncated)
    assert run.stop == "parser"
    assert run.stop_detail == "SSE framing error (invalid-utf8)"
    found = messages(run, EVENTS)
    assert len(found) == 1
    assert found[0].startswith(
        "POST /api/agents/stream: SSE framing: invalid UTF-8 (unexpected end of data: e2 82)"
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (
            ("agent_thinking",),
            "event #4 (agent_thinking): arrives after the terminal event #3 (agent_completed)",
        ),
        (("agent_completed",), "a second terminal event after event #3 (agent_completed)"),
    ],
)
def test_events_after_the_terminal_event_are_judged(after: tuple[str, ...], expected: str) -> None:
    """A reader that stopped at the terminal event could never see what follows it."""
    run, _ = serve_and_read(hostile.complete_run(after=after))
    assert run.stop == "terminal"
    assert run.terminal == 3
    assert len(run.events) == 4
    found = messages(run, "sequence:agent-run")
    assert len(found) == 1
    assert expected in found[0]
    assert [f.message for f in run.late_findings()] == found


def test_listening_after_the_terminal_event_is_bounded() -> None:
    """A server that keeps the connection open after the run costs only the short grace."""
    run, elapsed = serve_and_read(hostile.complete_run(then="silence"))
    assert elapsed < 0.5 + SLACK
    assert run.stop == "terminal"
    assert messages(run, DEADLINES) == []
    assert messages(run, "sequence:agent-run") == []


def test_a_connection_dropped_after_the_run_ended_is_only_a_warning() -> None:
    run, _ = serve_and_read(hostile.complete_run(then="drop"))
    assert run.stop == "terminal"
    found = run.all_findings(EVENTS)
    assert [f.severity for f in found] == ["warning"]
    assert found[0].message.startswith(
        "POST /api/agents/stream: transport error after event #3 (agent_completed): "
    )
    assert found[0].message.endswith(", after the run had ended")
