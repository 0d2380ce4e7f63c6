"""The hostile HTTP zoo: raw asyncio servers on 127.0.0.1, port 0, that misbehave on purpose.

A real server library would refuse to trickle its status line, answer a GET
with 101 or speak SSH on an HTTP port, so these write the bytes themselves.
Each behaviour is an ``async (request, writer)`` function; :func:`hostile_server`
serves it on the running loop and :func:`serving` on a loop of its own in a
thread (for the synchronous schemathesis engine and for ``asyncio.run`` callers).
When the block ends every handler is cancelled and every connection aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HEALTHY",
    "Behaviour",
    "Request",
    "Zoo",
    "close_mid_body",
    "garbage",
    "hostile_server",
    "not_found",
    "ok",
    "refused_url",
    "reset_at_once",
    "reset_mid_body",
    "response",
    "routes",
    "serving",
    "slow_body",
    "switching_protocols",
    "tarpit",
    "trickle",
]

HEALTHY = {
    "status": "healthy",
    "service": "zoo",
    "version": "1",
    "timestamp": "2025-09-07T13:10:00Z",
}
"""A body that keeps the spec's ``GET /health`` contract."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass(slots=True)
class Zoo:
    """A running zoo server: its URL and what it saw."""

    url: str
    requests: list[Request] = field(default_factory=list)

    @property
    def https_url(self) -> str:
        """The same plain-HTTP port, addressed as https:// (a TLS mismatch)."""
        return "https://" + self.url.removeprefix("http://")


class _NotHTTP(Exception):
    """The client spoke something else (a TLS ClientHello to this plain port)."""


async def _read_request(reader: asyncio.StreamReader) -> Request:
    first = await reader.readexactly(1)
    if first == b"\x16":
        raise _NotHTTP  # a TLS handshake record
    head = first + await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "X")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _rst(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- behaviours ---------------------------------------------------------------------------


async def tarpit(request: Request, writer: asyncio.StreamWriter) -> None:
    """Accepts, reads the request, never answers a byte."""
    await asyncio.Event().wait()


def ok(body: Any = HEALTHY, status: int = 200) -> Behaviour:
    data = json.dumps(body).encode()

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(status, data))
        await writer.drain()

    return behave


def not_found() -> Behaviour:
    """What a plain framework answers for a route it does not have."""
    return ok({"detail": "Not Found"}, 404)


def trickle(interval: float, body: Any = HEALTHY) -> Behaviour:
    """A valid response, status line included, one byte every ``interval`` seconds."""
    data = response(200, json.dumps(body).encode())

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(interval)

    return behave


def slow_body(interval: float, body: Any = HEALTHY) -> Behaviour:
    """Status line and headers at once, then the body one byte every ``interval`` seconds."""
    data = json.dumps(body).encode()

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        head = response(200, data)[: -len(data)]
        writer.write(head)
        await writer.drain()
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(interval)

    return behave


def garbage(data: bytes = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n") -> Behaviour:
    """Not HTTP at all (an SSH banner by default), then the connection is closed."""

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()

    return behave


async def reset_at_once(request: Request, writer: asyncio.StreamWriter) -> None:
    """Reads the request, then resets the connection without a byte of answer."""
    _rst(writer)


async def reset_mid_body(request: Request, writer: asyncio.StreamWriter) -> None:
    """Headers promising 200 bytes, 10 of them, then a TCP reset."""
    writer.write(response(200, b"x" * 200)[:-190])
    await writer.drain()
    await asyncio.sleep(0.05)
    _rst(writer)


async def close_mid_body(request: Request, writer: asyncio.StreamWriter) -> None:
    """Headers promising 200 bytes, 10 of them, then a polite close (FIN)."""
    writer.write(response(200, b"x" * 200)[:-190])
    await writer.drain()
    writer.close()


async def switching_protocols(request: Request, writer: asyncio.StreamWriter) -> None:
    """101 to a plain request nobody asked to upgrade, then silence."""
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    await writer.drain()
    await asyncio.Event().wait()


def routes(table: dict[str, Behaviour], default: Behaviour | None = None) -> Behaviour:
    """Dispatch on ``METHOD path`` or just ``path`` (query ignored); others answer 404."""
    fallback = default or not_found()

    async def behave(request: Request, writer: asyncio.StreamWriter) -> None:
        path = request.path.split("?", 1)[0]
        chosen = table.get(f"{request.method} {path}") or table.get(path) or fallback
        await chosen(request, writer)

    return behave


# -- servers ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def hostile_server(behaviour: Behaviour) -> AsyncIterator[Zoo]:
    """Serve ``behaviour`` on 127.0.0.1 (port 0) on the running loop."""
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []
    stopping = False
    zoo = Zoo("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        try:
            while not stopping and not writer.is_closing():
                try:
                    request = await _read_request(reader)
                except _NotHTTP:
                    # What uvicorn, nginx... answer to a TLS handshake on a plain port.
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    return
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    return
                zoo.requests.append(request)
                await behaviour(request, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    zoo.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield zoo
    finally:
        stopping = True
        server.close()
        for writer in writers:
            if not writer.transport.is_closing():
                writer.transport.abort()
        await asyncio.sleep(0)
        while tasks:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await server.wait_closed()


@contextlib.contextmanager
def serving(behaviour: Behaviour) -> Iterator[Zoo]:
    """:func:`hostile_server` on its own event loop in a daemon thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: list[Zoo] = []
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        async with hostile_server(behaviour) as zoo:
            found.append(zoo)
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        yield found[0]
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


def refused_url() -> str:
    """A loopback URL nothing listens on (a port bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
