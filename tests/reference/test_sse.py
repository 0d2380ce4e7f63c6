"""Both SSE routes, read with the project's sans-I/O parser over real HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from chatcontract.sse.parser import SSEComment, SSEEvent, SSEParser

from .conftest import Api, ApiFactory
from .helpers import (
    assert_agent_run,
    assert_valid_events,
    parse_sse,
    spec_errors,
    sse_events,
    sse_payloads,
    types,
)


def _stream(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[SSEEvent | SSEComment]]:
    with client.stream("POST", path, json=body, headers=headers) as response:
        raw = b"".join(response.iter_bytes())
    items = parse_sse(raw) if response.status_code == 200 else []
    assert not spec_errors(response, raw), spec_errors(response, raw)
    return response, items


def test_chat_stream_sends_the_whole_chat_sequence(api: Api) -> None:
    me = api.client()
    response, items = _stream(me, "/api/chat/stream", {"message": "status of payments?"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    events = sse_events(items)
    assert not any(e.has_event_field for e in events), "chat frames are data-only"
    payloads = sse_payloads(items)
    assert_valid_events(payloads)
    kinds = types(payloads)
    assert kinds[:2] == ["stream_start", "user_message"]
    assert kinds[-3:] == ["agent_completed", "response_complete", "stream_end"]
    assert payloads[-1]["payload"]["status"] == "completed"
    thread_id = payloads[0]["thread_id"]
    assert_agent_run(payloads[2:-2], thread_id=thread_id)
    assert {p["run_id"] for p in payloads} == {payloads[0]["run_id"]}
    # The stream created the thread and kept both sides of the conversation.
    history = me.get(f"/api/threads/{thread_id}/messages").json()["items"]
    assert [m["role"] for m in history] == ["user", "assistant"]


def test_chat_stream_into_an_existing_thread_and_a_failing_run(api: Api) -> None:
    me = api.client()
    thread_id = me.post("/api/threads", json={"title": "t"}).json()["id"]
    body = {"message": "break it #fail", "thread_id": thread_id, "agent": "data_helper"}
    _, items = _stream(me, "/api/chat/stream", body)
    payloads = sse_payloads(items)
    assert {p["thread_id"] for p in payloads} == {thread_id}
    kinds = types(payloads)
    assert kinds[-2:] == ["agent_error", "stream_end"]
    assert "response_complete" not in kinds
    assert payloads[-2]["payload"]["error_code"] == "AGENT_FAILED"
    assert payloads[-1]["payload"]["status"] == "error"


def test_stream_routes_answer_404_before_streaming(api: Api) -> None:
    me = api.client()
    missing = {"message": "m", "thread_id": "thread_000000000000"}
    assert _stream(me, "/api/chat/stream", missing)[0].status_code == 404
    assert (
        _stream(me, "/api/chat/stream", {"message": "m", "agent": "nobody"})[0].status_code == 404
    )
    assert (
        _stream(me, "/api/agents/stream", {"agent": "nobody", "message": "m"})[0].status_code == 404
    )
    bob_thread = api.client("bob").post("/api/threads", json={"title": "b"}).json()["id"]
    theirs = {"agent": "triage", "message": "m", "thread_id": bob_thread}
    assert _stream(me, "/api/agents/stream", theirs)[0].status_code == 404


def test_agents_stream_names_each_event_and_numbers_it(api: Api) -> None:
    response, items = _stream(
        api.client(), "/api/agents/stream", {"agent": "research", "message": "compare regions"}
    )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(items)
    payloads = sse_payloads(items)
    assert_agent_run(payloads)
    run_id = payloads[0]["run_id"]
    assert [e.event for e in events] == types(payloads)
    assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]


def test_heartbeats_fill_quiet_stretches(api_for: ApiFactory) -> None:
    api = api_for(event_delay_seconds=0.25, sse_heartbeat_seconds=0.05)
    _, items = _stream(api.client(), "/api/agents/stream", {"agent": "triage", "message": "slow"})
    comments = [i for i in items if isinstance(i, SSEComment)]
    assert comments
    assert all(c.text.strip() == "keepalive" for c in comments)
    assert_agent_run(sse_payloads(items))


def test_events_are_written_as_they_happen(api_for: ApiFactory) -> None:
    """No buffering: the first event arrives long before the run is over."""
    api = api_for(event_delay_seconds=0.1)
    parser = SSEParser()
    started = time.monotonic()
    first_at = None
    body = {"agent": "triage", "message": "paced"}
    with api.client().stream("POST", "/api/agents/stream", json=body) as response:
        for chunk in response.iter_bytes():
            parser.receive_data(chunk)
            if first_at is None and any(isinstance(i, SSEEvent) for i in parser.events_received()):
                first_at = time.monotonic() - started
    total = time.monotonic() - started
    assert first_at is not None
    assert total > 0.5
    assert first_at < total / 2


def test_resume_with_last_event_id_replays_only_later_events(api_for: ApiFactory) -> None:
    api = api_for(event_delay_seconds=0.05)
    me = api.client()
    body = {"agent": "research", "message": "resume me"}
    parser = SSEParser()
    seen: list[SSEEvent] = []
    with me.stream("POST", "/api/agents/stream", json=body) as response:
        for chunk in response.iter_bytes():
            parser.receive_data(chunk)
            seen += [i for i in parser.events_received() if isinstance(i, SSEEvent)]
            if len(seen) >= 3:
                break  # the client drops the connection mid-run
    last_id = seen[2].id
    assert last_id is not None
    run_id = last_id.split(":")[0]
    _, items = _stream(me, "/api/agents/stream", body, headers={"Last-Event-ID": last_id})
    rest = sse_events(items)
    assert [e.id for e in rest] == [f"{run_id}:{n}" for n in range(4, 4 + len(rest))]
    full = [json.loads(e.data) for e in seen[:3]] + sse_payloads(items)
    assert_agent_run(full)
    # A finished run can still be resumed; nothing newer is left to send.
    _, again = _stream(
        me, "/api/agents/stream", body, headers={"Last-Event-ID": f"{run_id}:{len(full)}"}
    )
    assert sse_events(again) == []
    # Another user cannot resume it.
    other, _ = _stream(
        api.client("bob"), "/api/agents/stream", body, headers={"Last-Event-ID": last_id}
    )
    assert other.status_code == 404


def test_cancel_ends_a_streaming_run_with_agent_error_cancelled(api_for: ApiFactory) -> None:
    api = api_for(event_delay_seconds=0.1)
    me = api.client()
    parser = SSEParser()
    cancelled = False
    with me.stream("POST", "/api/chat/stream", json={"message": "long one"}) as response:
        for chunk in response.iter_bytes():
            parser.receive_data(chunk)
            if not cancelled:
                first = next(i for i in parser.events_received() if isinstance(i, SSEEvent))
                rid = json.loads(first.data)["run_id"]
                answer = me.post(f"/api/agents/runs/{rid}/cancel")
                assert answer.status_code == 200
                assert answer.json()["status"] == "cancelled"
                cancelled = True
    parser.receive_eof()
    payloads = sse_payloads(parser.events_received())
    kinds = types(payloads)
    assert kinds[-2:] == ["agent_error", "stream_end"]
    assert payloads[-2]["payload"]["error_code"] == "CANCELLED"
    assert payloads[-1]["payload"]["status"] == "cancelled"
    assert me.get(f"/api/agents/runs/{rid}").json()["status"] == "cancelled"
