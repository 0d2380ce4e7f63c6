"""The two SSE routes: ``POST /api/chat/stream`` and ``POST /api/agents/stream``.

Frames are written as the run emits events (an async generator behind a
StreamingResponse, nothing buffered); while the run is quiet a comment
heartbeat keeps intermediaries from timing the stream out. The run itself
lives in the RunRegistry, so a client that drops the connection can come
back with ``Last-Event-ID`` and get only what it missed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse

from chatcontract.reference.agent import AGENTS, AgentSpec
from chatcontract.reference.problems import problem
from chatcontract.reference.routing import Call, handles
from chatcontract.reference.runs import Delivery, QueueListener, Run, envelope
from chatcontract.reference.services import Services

__all__ = [
    "DEFAULT_AGENT",
    "KEEPALIVE",
    "data_frame",
    "named_frame",
]

DEFAULT_AGENT = "triage"
KEEPALIVE = b": keepalive\n\n"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_LAST_EVENT_ID = re.compile(r"^(run_[A-Za-z0-9]{6,64}):(\d{1,9})$")
_END_STATUS = {"completed": "completed", "failed": "error", "cancelled": "cancelled"}


def _json(event: Mapping[str, Any]) -> str:
    # Compact JSON never contains a raw newline, so one `data:` line carries it.
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def data_frame(event: Mapping[str, Any]) -> bytes:
    """A ``data:``-only frame (the chat stream: the type lives in the JSON)."""
    return f"data: {_json(event)}\n\n".encode()


def named_frame(event: Mapping[str, Any], event_id: str) -> bytes:
    """A frame naming its type in ``event`` with a resumable ``id`` (the agents stream)."""
    return f"event: {event['type']}\nid: {event_id}\ndata: {_json(event)}\n\n".encode()


def _stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=_SSE_HEADERS)


async def _deliveries(
    listener: QueueListener, own: Run, heartbeat: float
) -> AsyncIterator[Delivery | None]:
    """Deliveries until ``own`` ends; None whenever ``heartbeat`` seconds pass quietly."""
    while True:
        try:
            delivery = await asyncio.wait_for(listener.queue.get(), heartbeat)
        except TimeoutError:
            yield None
            continue
        if delivery.run is own and delivery.event is None:
            return
        if delivery.event is not None:
            yield delivery


async def _stall() -> None:
    # `stream-stall`: hold the response open, silent, until the client gives up
    # (Starlette cancels this generator when the client disconnects).
    await asyncio.Event().wait()


def _resolve_thread(call: Call, thread_id: str | None, message: str) -> str | None:
    store = call.services.store
    if thread_id is None:
        return store.create_thread(call.user, message.strip()[:80] or "chat").id
    thread = store.get_thread(thread_id, call.user)
    return thread.id if thread is not None else None


def _agent(name: str | None) -> AgentSpec | None:
    return AGENTS.get(name or DEFAULT_AGENT)


@handles("streamChat")
async def stream_chat(call: Call) -> Response:
    body = call.body
    agent = _agent(body.get("agent"))
    if agent is None:
        return problem(404, "no such agent")
    thread_id = _resolve_thread(call, body.get("thread_id"), body["message"])
    if thread_id is None:
        return problem(404, "no such thread")
    services = call.services
    message = services.store.add_message(thread_id, "user", body["message"])
    run = services.runs.create(call.user, agent, body["message"], thread_id)
    heartbeat = services.heartbeat_seconds(call.operation)

    async def frames() -> AsyncIterator[bytes]:
        listener = QueueListener(call.user)
        services.runs.add_listener(listener)
        try:
            yield data_frame(envelope("stream_start", run.run_id, thread_id, {"agent": agent.name}))
            if "stream-stall" in services.faults:
                await _stall()
            yield data_frame(
                envelope(
                    "user_message",
                    run.run_id,
                    thread_id,
                    {"message_id": message.id, "content": message.content},
                )
            )
            services.runs.follow(run, listener)
            services.runs.start(run)
            async for delivery in _deliveries(listener, run, heartbeat):
                yield KEEPALIVE if delivery is None else data_frame(delivery.event or {})
            if "missing-terminal" in services.faults:
                return
            if run.status == "completed":
                yield data_frame(
                    envelope(
                        "response_complete", run.run_id, thread_id, {"content": run.plan.response}
                    )
                )
            status = _END_STATUS.get(run.status, "error")
            yield data_frame(envelope("stream_end", run.run_id, thread_id, {"status": status}))
        finally:
            services.runs.remove_listener(listener)
            if run.task is None:
                # The client left (or the stream stalled) before the run began: it
                # will never run, so it must not stay "running" in the run status.
                services.runs.cancel(run)

    return _stream(frames())


def _resume_point(call: Call) -> tuple[Run, int] | Response | None:
    """The run and event number a ``Last-Event-ID`` asks to resume after, if any."""
    raw = call.request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    match = _LAST_EVENT_ID.match(raw.strip())
    run = call.services.runs.get(match.group(1), call.user) if match else None
    if match is None or run is None:
        return problem(404, "no event of yours to resume after (unknown or expired run)")
    return run, int(match.group(2))


@handles("streamAgent")
async def stream_agent(call: Call) -> Response:
    services = call.services
    resume = _resume_point(call)
    if isinstance(resume, Response):
        return resume
    if resume is not None:
        run, after = resume
        fresh = False
    else:
        body = call.body
        agent = AGENTS.get(body["agent"])
        if agent is None:
            return problem(404, "no such agent")
        thread_id = _resolve_thread(call, body.get("thread_id"), body["message"])
        if thread_id is None:
            return problem(404, "no such thread")
        services.store.add_message(thread_id, "user", body["message"])
        run, after, fresh = (
            services.runs.create(call.user, agent, body["message"], thread_id),
            0,
            True,
        )
    return _stream(_agent_frames(call, services, run, after, fresh=fresh))


async def _agent_frames(
    call: Call, services: Services, run: Run, after: int, *, fresh: bool
) -> AsyncIterator[bytes]:
    listener = QueueListener(call.user)
    services.runs.add_listener(listener)
    heartbeat = services.heartbeat_seconds(call.operation)
    try:
        services.runs.follow(run, listener, after)
        if fresh:
            services.runs.start(run)
        sent = False
        async for delivery in _deliveries(listener, run, heartbeat):
            if delivery is None:
                yield KEEPALIVE
                continue
            sent = True
            yield named_frame(delivery.event or {}, f"{delivery.run.run_id}:{delivery.seq}")
            if "stream-stall" in services.faults:
                await _stall()
        if not sent:
            # Resuming after a finished run's last event: nothing is left, but an
            # empty 200 body reads as a broken response to many clients.
            yield f": {run.run_id} ended; no events after {after}\n\n".encode()
    finally:
        services.runs.remove_listener(listener)
        if fresh and run.task is None:
            services.runs.cancel(run)  # never started: see stream_chat
