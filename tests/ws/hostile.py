"""Hostile WebSocket servers on 127.0.0.1, port 0, speaking raw RFC 6455.

A real server library would refuse to misbehave (no 100 MB frames, no invalid
UTF-8, no close code 1005), so these write the bytes themselves. Each server
runs one behaviour per connection; when the block ends every connection task
is cancelled and every transport still open is aborted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WELCOME = {
    "type": "connection_established",
    "connection_id": "conn_hostile",
    "user_id": "alice",
    "server_time": "2025-09-07T13:10:00Z",
    "heartbeat_interval": 30,
    "max_message_size": 8192,
}


def frame(opcode: int, payload: bytes, *, length: int | None = None) -> bytes:
    """An unmasked server frame; ``length`` may lie about the payload that follows."""
    size = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


class Peer:
    """One client connection as the hostile server sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.headers: dict[str, str] = {}
        self.path = ""

    async def request(self) -> dict[str, str]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        self.path = lines[0].split(" ")[1]
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        return self.headers

    async def accept(self) -> None:
        await self.request()
        await self.switch()

    async def switch(self) -> None:
        """Answer the request already read with 101 (choosing ``jwt-auth`` when offered)."""
        key = self.headers["sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept}",
        ]
        offered = [p.strip() for p in self.headers.get("sec-websocket-protocol", "").split(",")]
        if "jwt-auth" in offered:
            lines.append("Sec-WebSocket-Protocol: jwt-auth")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def reject(self, status: int) -> None:
        await self.request()
        self.writer.write(f"HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n\r\n".encode())
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_text(self, text: str | bytes) -> None:
        await self.send_raw(frame(0x1, text.encode() if isinstance(text, str) else text))

    async def send_json(self, value: Any) -> None:
        await self.send_text(json.dumps(value))

    async def send_close(self, code: int, reason: str = "") -> None:
        await self.send_raw(frame(0x8, struct.pack("!H", code) + reason.encode()))

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        mask = await self.reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
        data = await self.reader.readexactly(size)
        return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    async def wait_for_close(self) -> None:
        """Answer the client's close frame (so its close handshake completes), then stop."""
        while True:
            opcode, data = await self.read_frame()
            if opcode == 0x8:
                await self.send_raw(frame(0x8, data[:2]))
                return

    def abort(self) -> None:
        abort_transport(self.writer)


Behaviour = Callable[[Peer], Awaitable[None]]


def abort_transport(writer: asyncio.StreamWriter) -> None:
    """Drop the connection now, unless an earlier ``close()`` already ended it.

    A ``close()`` with bytes still buffered completes later, from the write
    callback, which clears the transport's loop without counting the connection
    as lost; an ``abort()`` after that raises ``AttributeError: 'NoneType' object
    has no attribute 'call_soon'`` (CPython's selector transport). A closing
    transport with nothing left to write is finished, or about to be.
    """
    transport = writer.transport
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()


@contextlib.asynccontextmanager
async def hostile_server(behaviour: Behaviour) -> AsyncIterator[str]:
    """Serve ``behaviour`` on 127.0.0.1; yields the base URL (``http://127.0.0.1:PORT``)."""
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []
    stopping = False

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            if not stopping:
                with contextlib.suppress(Exception):
                    await behaviour(Peer(reader, writer))
        finally:
            tasks.discard(task)
            if stopping:
                abort_transport(writer)
            else:
                # The server ends the TCP connection after its behaviour (RFC 6455 §7.1.1);
                # with bytes still buffered (the 100 MB frame's last chunk) this completes later.
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stopping = True
        server.close()
        for writer in writers:
            abort_transport(writer)
        # A connection accepted just before the close starts its task later: it sees
        # ``stopping`` and aborts at once, and this loop waits for it too.
        await asyncio.sleep(0)
        while tasks:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await server.wait_closed()


# ---- behaviours ---------------------------------------------------------------


async def never_answers(peer: Peer) -> None:
    await peer.request()
    await asyncio.sleep(3600)


async def accepts_then_silent(peer: Peer) -> None:
    await peer.accept()
    await asyncio.sleep(3600)


async def huge_frame(peer: Peer) -> None:
    """Announce a 100 MB text frame and stream it until the client gives up."""
    await peer.accept()
    total = 100 * 1024 * 1024
    await peer.send_raw(frame(0x1, b"", length=total))
    chunk = b"x" * 65536
    for _ in range(total // len(chunk)):
        await peer.send_raw(chunk)


async def invalid_utf8(peer: Peer) -> None:
    await peer.accept()
    await peer.send_text(b'{"type":"connection_established","user_id":"\xff\xfe"}')
    await peer.wait_for_close()


async def drops_mid_conversation(peer: Peer) -> None:
    await peer.accept()
    await peer.send_json(WELCOME)
    await peer.read_frame()
    peer.abort()


def close_after_accept(*, frames: tuple[dict[str, Any], ...] = (), code: int = 1008) -> Behaviour:
    """Accept anonymous handshakes, maybe send frames, then close with ``code``."""

    async def behaviour(peer: Peer) -> None:
        await peer.accept()
        if "authorization" in peer.headers or "jwt." in peer.headers.get(
            "sec-websocket-protocol", ""
        ):
            await peer.send_json(WELCOME)
            await peer.wait_for_close()
            return
        for value in frames:
            await peer.send_json(value)
        await peer.send_close(code, "no token")
        await peer.wait_for_close()

    return behaviour


def illegal_close_code(code: int) -> Behaviour:
    async def behaviour(peer: Peer) -> None:
        await peer.accept()
        await peer.send_json(WELCOME)
        opcode, data = await peer.read_frame()
        if opcode == 0x8:
            # The positive control closing its connection: answer it like a server should.
            await peer.send_raw(frame(0x8, data[:2]))
            return
        await peer.send_close(code)
        await peer.wait_for_close()

    return behaviour


def fuzz_victim(trigger: str) -> Behaviour:
    """A server that keeps the basics (welcome, ping -> pong) but closes with 1011 whenever a
    frame carries the key ``trigger``: a bug only generated frames are likely to find."""

    async def behaviour(peer: Peer) -> None:
        await peer.accept()
        await peer.send_json(WELCOME)
        while True:
            opcode, data = await peer.read_frame()
            if opcode == 0x8:
                await peer.send_raw(frame(0x8, data[:2]))
                return
            try:
                value = json.loads(data)
            except ValueError:
                value = None
            if isinstance(value, dict) and trigger in value:
                await peer.send_close(1011, "internal error")
                await peer.wait_for_close()
                return
            if isinstance(value, dict) and value.get("type") == "ping":
                await peer.send_json({"type": "pong"})
            elif isinstance(value, dict) and value.get("type") == "pong":
                continue
            else:
                await peer.send_json(
                    {"type": "error", "error_code": "VALIDATION_ERROR", "message": "no"}
                )

    return behaviour


def counting(behaviour: Behaviour, calls: list[str]) -> Behaviour:
    """``behaviour``, recording the request path of every connection it serves."""

    async def wrapped(peer: Peer) -> None:
        calls.append("connection")
        await behaviour(peer)

    return wrapped


async def redirects(peer: Peer) -> None:
    await peer.request()
    peer.writer.write(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
    await peer.writer.drain()


async def header_only(peer: Peer) -> None:
    """Accepts the Authorization header carrier, refuses everything else with 403."""
    await peer.request()
    if "authorization" not in peer.headers:
        peer.writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await peer.writer.drain()
        return
    key = peer.headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    peer.writer.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )
    await peer.send_json(WELCOME)
    await peer.wait_for_close()


async def stalls_after_welcome(peer: Peer) -> None:
    """Refuses anonymous handshakes, accepts the rest and sends the welcome, then answers
    nothing but the closing handshake: an application stuck after its first frame."""
    await peer.request()
    token = "authorization" in peer.headers or "jwt." in peer.headers.get(
        "sec-websocket-protocol", ""
    )
    if not token:
        peer.writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await peer.writer.drain()
        return
    await peer.switch()
    await peer.send_json(WELCOME)
    await peer.wait_for_close()
