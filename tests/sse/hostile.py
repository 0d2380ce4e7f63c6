"""Hostile SSE servers on 127.0.0.1, port 0: raw asyncio, so they can misbehave freely.

Each behaviour is an ``async (request, writer)`` function; :func:`hostile_server`
serves it until the block ends, cancelling whatever a handler still does
(a silent handler would otherwise hold the server open forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Behaviour",
    "Request",
    "agent_frame",
    "byte_at_a_time",
    "comments_forever",
    "complete_run",
    "drops_mid_stream",
    "endless_events",
    "headers_then_silence",
    "hostile_server",
    "huge_event",
    "never_answers",
    "refused_url",
    "routes",
    "send_head",
    "status",
    "wrong_content_type",
]

RUN = "run_7c2e9a41b0d3"
THREAD = "thread_3f9a2c1b7d4e"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def agent_frame(number: int, kind: str = "agent_thinking", run: str = RUN) -> bytes:
    """A valid agents-stream frame (event field, id, envelope)."""
    payloads: dict[str, Any] = {
        "agent_started": {"agent_name": "research", "message": "hi"},
        "agent_thinking": {"thought": "still thinking", "step_number": number},
        "response_chunk": {"content": "done", "is_final": True},
        "agent_completed": {"result": "done", "duration_ms": 5},
    }
    data = {
        "type": kind,
        "run_id": run,
        "thread_id": THREAD,
        "timestamp": "2025-09-07T13:10:00Z",
        "payload": payloads[kind],
    }
    return f"event: {kind}\nid: {run}:{number}\ndata: {json.dumps(data)}\n\n".encode()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


async def send_head(
    writer: asyncio.StreamWriter,
    code: int = 200,
    content_type: str = "text/event-stream",
    extra: str = "Cache-Control: no-cache\r\n",
) -> None:
    writer.write(
        f"HTTP/1.1 {code} X\r\nContent-Type: {content_type}\r\n{extra}"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    await writer.drain()


async def chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def end(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


# -- behaviours ---------------------------------------------------------------------------


def endless_events(interval: float) -> Behaviour:
    """A stream that never ends: one valid event every ``interval`` seconds (0: flat out)."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer)
        await chunk(writer, agent_frame(1, "agent_started"))
        number = 1
        while True:
            number += 1
            await chunk(writer, agent_frame(number))
            await asyncio.sleep(interval)

    return behave


def complete_run(*, after: tuple[str, ...] = (), then: str = "end", run: str = RUN) -> Behaviour:
    """A whole agent run, then the ``after`` event kinds; then ``end``, ``silence`` or ``drop``."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer)
        kinds = ("agent_started", "response_chunk", "agent_completed", *after)
        for number, kind in enumerate(kinds, 1):
            await chunk(writer, agent_frame(number, kind, run))
        if then == "silence":
            await asyncio.Event().wait()
        elif then == "drop":
            writer.transport.abort()
        else:
            await end(writer)

    return behave


async def headers_then_silence(request: Request, writer: asyncio.StreamWriter) -> None:
    await send_head(writer)
    await asyncio.Event().wait()


async def never_answers(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


def byte_at_a_time(interval: float) -> Behaviour:
    """Valid events, trickled one byte every ``interval`` seconds."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer)
        body = agent_frame(1, "agent_started") + agent_frame(2)
        for index in range(len(body)):
            await chunk(writer, body[index : index + 1])
            await asyncio.sleep(interval)
        await asyncio.Event().wait()

    return behave


def huge_event(size: int = 100 << 20, piece: int = 1 << 20) -> Behaviour:
    """One event of ``size`` bytes of data, streamed as fast as the socket takes it."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer)
        await chunk(writer, agent_frame(1, "agent_started") + b"event: agent_thinking\ndata: ")
        filler = b"x" * piece
        for _ in range(size // piece):
            await chunk(writer, filler)
        await chunk(writer, b"\n\n")
        await end(writer)

    return behave


def comments_forever(interval: float) -> Behaviour:
    """One event, then only heartbeat comments: alive, but the run never ends."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer)
        await chunk(writer, agent_frame(1, "agent_started"))
        while True:
            await asyncio.sleep(interval)
            await chunk(writer, b": keepalive\n\n")

    return behave


async def drops_mid_stream(request: Request, writer: asyncio.StreamWriter) -> None:
    await send_head(writer)
    await chunk(writer, agent_frame(1, "agent_started") + agent_frame(2))
    writer.transport.abort()


async def wrong_content_type(request: Request, writer: asyncio.StreamWriter) -> None:
    await send_head(writer, content_type="application/json")
    await chunk(writer, b'{"detail": "not a stream"}')
    await end(writer)


def status(code: int, body: bytes = b'{"detail":"Not Found"}') -> Behaviour:
    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_head(writer, code, "application/json", extra="")
        await chunk(writer, body)
        await end(writer)

    return behave


def routes(table: dict[str, Behaviour], default: Behaviour) -> Behaviour:
    """Dispatch on ``METHOD path`` (query string ignored)."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        key = f"{request.method} {request.path.split('?', 1)[0]}"
        await table.get(key, default)(request, writer)

    return behave


@contextlib.asynccontextmanager
async def hostile_server(behaviour: Behaviour) -> AsyncIterator[str]:
    """Serve ``behaviour`` on 127.0.0.1 (port 0); yield the base URL."""
    handlers: set[asyncio.Task[None]] = set()
    requests: list[Request] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                requests.append(request)
                await behaviour(request, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def refused_url() -> str:
    """A loopback URL nothing listens on (a port bound, then released)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"http://127.0.0.1:{port}"
