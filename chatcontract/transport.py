"""The run's HTTP transport: one client shape, a total deadline, failures named.

Every HTTP request a checker sends itself goes through a client from
:func:`new_client`: httpx with the run's connect and read timeouts, no
redirects, and ``trust_env=False``: a proxy from ``HTTPS_PROXY`` would answer
in the target's place, and its timeouts and refusals would be judged as the
server's.

httpx's timeouts are per phase: a read timeout restarts at every byte, so a
server sending one byte per second holds a request for as long as it likes.
Every request therefore also runs under a :class:`Deadline`, a wall-clock
bound on connect + the whole response (:func:`request_deadline` for REST,
the spec's own deadlines where a route declares them).

When no usable answer comes, :func:`classify` says what happened instead, as
a :class:`TransportFailure`: no answer, too slow, not HTTP, 101 on an HTTP
route, connection reset or closed, refused, TLS mismatch. It reads the
exception chain of httpx, requests or websockets alike, plus the bytes the
reply began with: h11 discards a reply it cannot parse, so clients from
:func:`new_client` read through a recording network stream and
:func:`recording` hands a request its bytes.

A run writes nothing into the working directory: whatever state a library
keeps (hypothesis' constants cache and charmap) goes to :func:`cache_folder`
(``RunSettings.cache_dir``, else ``$XDG_CACHE_HOME/chatcontract``, else
``~/.cache/chatcontract``) through :func:`hypothesis_home`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpcore
import httpx

from chatcontract.context import RunSettings

__all__ = [
    "USER_AGENT",
    "Deadline",
    "FailureKind",
    "Received",
    "TransportFailure",
    "cache_folder",
    "caused_by",
    "classify",
    "hypothesis_home",
    "new_client",
    "recording",
    "request_deadline",
]

USER_AGENT = "chatcontract"
_HEAD_BYTES = 64
"""Bytes of a reply kept to show what it began with."""
# What OpenSSL says when the "TLS server" answered in plain text (an HTTP error page).
_PLAINTEXT_TLS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
)


def request_deadline(settings: RunSettings) -> float:
    """Seconds one request may take in total, connect + whole response."""
    return settings.connect_timeout + settings.read_timeout


@dataclass(frozen=True, slots=True)
class Deadline:
    """A wall-clock bound that does not restart: ``seconds`` from ``started``."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    @property
    def expired(self) -> bool:
        return self.elapsed() >= self.seconds

    def scope(self) -> asyncio.Timeout:
        """``async with deadline.scope():`` cancels the block when the deadline passes."""
        return asyncio.timeout(self.left())


class FailureKind(StrEnum):
    NO_ANSWER = "no answer"
    TOO_SLOW = "too slow"
    NOT_HTTP = "not HTTP"
    SWITCHED = "switched protocols"
    RESET = "connection reset"
    CLOSED = "connection closed"
    REFUSED = "connection refused"
    UNRESOLVED = "host not found"
    TLS_MISMATCH = "TLS mismatch"
    TLS = "TLS failure"
    BROKEN = "transport error"


_UNREACHABLE = frozenset(
    {FailureKind.REFUSED, FailureKind.UNRESOLVED, FailureKind.TLS_MISMATCH, FailureKind.TLS}
)


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """Why a request got no usable HTTP answer."""

    kind: FailureKind
    detail: str
    """What happened, with the real limit and elapsed time: ``the response took longer than
    2 s (17 bytes received)``."""
    elapsed: float
    received: int = 0
    """Bytes of the reply that did arrive (status line and headers included, where known)."""

    @property
    def unreachable(self) -> bool:
        """No exchange with the target is possible at all (not this route's fault)."""
        return self.kind in _UNREACHABLE

    @classmethod
    def switched(cls, elapsed: float, received: int = 0) -> TransportFailure:
        """101 Switching Protocols to a request that asked for no upgrade."""
        detail = (
            "answered 101 Switching Protocols to a plain HTTP request that asked for no upgrade"
        )
        return cls(FailureKind.SWITCHED, detail, elapsed, received)

    def line(self) -> str:
        """The finding: :attr:`detail` says what happened in words (the kind is its code)."""
        return self.detail

    @property
    def code(self) -> str:
        """A stable finding code: ``transport-too-slow``, ``transport-not-http``..."""
        return "transport-" + self.kind.name.lower().replace("_", "-")


@dataclass(slots=True)
class Received:
    """The bytes one request's reply brought: how many, and the first few."""

    count: int = 0
    head: bytearray = field(default_factory=bytearray)

    def add(self, data: bytes) -> None:
        self.count += len(data)
        if len(self.head) < _HEAD_BYTES:
            self.head += data[: _HEAD_BYTES - len(self.head)]


_RECEIVED: ContextVar[Received | None] = ContextVar("chatcontract_received", default=None)


@contextlib.contextmanager
def recording() -> Iterator[Received]:
    """Count the bytes a request on a :func:`new_client` client receives in this block."""
    received = Received()
    token = _RECEIVED.set(received)
    try:
        yield received
    finally:
        _RECEIVED.reset(token)


class _RecordingStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._inner.read(max_bytes, timeout)
        received = _RECEIVED.get()
        if received is not None:
            received.add(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _RecordingStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _RecordingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with every stream's reads counted (see :func:`recording`)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _RecordingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _RecordingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _transport() -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    # httpx offers no way to pass httpcore a network backend (httpcore's own extension
    # point), so the pool httpx built is replaced by the same one reading through ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_RecordingBackend(),
    )
    return transport


def new_client(settings: RunSettings, base_url: str = "") -> httpx.AsyncClient:
    """The run's httpx client: its timeouts, no redirects, no proxy or CA from the environment."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        follow_redirects=False,
        trust_env=False,
        transport=_transport(),
        headers={"User-Agent": USER_AGENT},
    )


# -- state on disk ------------------------------------------------------------------------


def cache_folder(configured: str | os.PathLike[str] | None = None) -> Path:
    """The one folder a run may keep state in: ``configured``, else the user's cache folder."""
    if configured is not None:
        return Path(configured)
    root = os.environ.get("XDG_CACHE_HOME") or ""
    base = Path(root) if Path(root).is_absolute() else Path.home() / ".cache"
    return base / "chatcontract"


_HOME_LOCK = threading.Lock()
_HOME_USERS: list[Path] = []
_HOME_SAVED: list[Path] = []


@contextlib.contextmanager
def hypothesis_home(folder: Path) -> Iterator[Path]:
    """Hypothesis keeps its files under ``folder / "hypothesis"`` while the block runs.

    Hypothesis' storage folder (default: ``.hypothesis`` in the working
    directory) is one per process; blocks may overlap (the REST engine and the
    WebSocket fuzzer run on threads): the first block's folder holds until the
    last one ends, then the folder the process had before is restored.
    """
    from hypothesis import configuration

    home = folder / "hypothesis"
    with _HOME_LOCK:
        _seed_codec_table(home)
        if not _HOME_USERS:
            previous = configuration.storage_directory(intent_to_write=False).home_directory
            _HOME_SAVED[:] = [previous]
            configuration.set_hypothesis_home_dir(home)
        _HOME_USERS.append(home)
    try:
        yield home
    finally:
        with _HOME_LOCK:
            _HOME_USERS.remove(home)
            if not _HOME_USERS:
                configuration.set_hypothesis_home_dir(_HOME_SAVED.pop())


def _seed_codec_table(home: Path, codec: str = "utf-8") -> None:
    """Write hypothesis' table of the characters ``codec`` encodes, computed in O(runs) memory.

    Hand-written, with a reason: on a first run hypothesis builds this table as a list
    of one tuple per code point (1.1 million), a ~200 MB peak for a 64-byte answer. The
    file name and format are hypothesis' cache (``unicode_data/<version>/codec-v2-utf-8``);
    if a hypothesis upgrade renames it, this file is ignored and hypothesis computes its
    own: slower and bigger on the first run, never wrong.
    """
    target = home / "unicode_data" / unicodedata.unidata_version / f"codec-v2-{codec}.json.gz"
    if target.exists():
        return
    encodable: list[list[int]] = []
    lossy: list[list[int]] = []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        try:
            encoded = char.encode(codec)
        except UnicodeError:
            continue
        _extend(encodable, point)
        try:
            same = encoded.decode(codec) == char
        except UnicodeError:
            same = False
        if not same:
            _extend(lossy, point)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        with gzip.GzipFile(partial, "wb", mtime=1) as out:
            out.write(json.dumps([encodable, lossy]).encode())
        partial.replace(target)
    except OSError:
        return  # an unwritable cache folder: hypothesis computes the table itself


def _extend(intervals: list[list[int]], point: int) -> None:
    if intervals and intervals[-1][1] == point - 1:
        intervals[-1][1] = point
    else:
        intervals.append([point, point])


# -- naming what went wrong ---------------------------------------------------------------


def caused_by(exc: BaseException, *kinds: type[BaseException]) -> bool:
    """Whether ``exc`` or anything behind it is one of ``kinds``."""
    return any(isinstance(error, kinds) for error in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, urllib3 reasons, wrapped args)."""
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is f for f in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += list(current.args)
    return found


def _text(chain: list[BaseException]) -> str:
    return " | ".join(f"{type(e).__name__}: {e}" for e in chain)


def _show(data: bytes) -> str:
    shown = repr(bytes(data[:_HEAD_BYTES]))
    return shown + ("…" if len(data) > _HEAD_BYTES else "")


def _is_timeout(error: BaseException) -> bool:
    # requests, urllib3 and websockets all chain the socket's or asyncio's TimeoutError.
    return isinstance(error, TimeoutError | httpx.TimeoutException)


def _tls(error: ssl.SSLError, elapsed: float) -> TransportFailure:
    reason = str(getattr(error, "reason", "") or "").lower().replace("_", " ")
    text = f"{reason} {error}".upper().replace(" ", "_")
    if any(marker in text for marker in _PLAINTEXT_TLS):
        return TransportFailure(
            FailureKind.TLS_MISMATCH,
            "TLS mismatch: an https:// URL, but the port answers plain HTTP (use http://); "
            f"the TLS handshake failed: {reason or error}",
            elapsed,
        )
    return TransportFailure(
        FailureKind.TLS, f"the TLS handshake failed: {reason or error}", elapsed
    )


_NOT_HTTP = ("illegal status line", "unsupported protocol", "invalid http")
_INCOMPLETE = re.compile(r"IncompleteRead\((\d+) bytes read")
_CLOSED = (
    "IncompleteRead",
    "RemoteDisconnected",
    "Server disconnected",
    "peer closed connection",
    "EndOfStream",
    "BrokenResourceError",
    "Connection broken",
    "ended prematurely",
)


def classify(
    exc: BaseException,
    *,
    elapsed: float | None,
    limit: float,
    received: Received | None = None,
    timed_out: bool = False,
) -> TransportFailure:
    """Name why a request failed, from its exception chain and the bytes it received.

    ``limit`` is the deadline (or timeout) that applied, ``elapsed`` the time
    the request took (None: unknown), ``timed_out`` that the caller's own
    deadline cut it.
    """
    chain = _chain(exc)
    text = _text(chain)
    got = received or Received()
    count, head = got.count, bytes(got.head)
    took = 0.0 if elapsed is None else elapsed
    at = "" if elapsed is None else f" (at {elapsed:.2f} s)"
    if head and not (head.startswith(b"HTTP/") or b"HTTP/".startswith(head)):
        detail = f"the reply is not HTTP: it began {_show(head)}{at}"
        return TransportFailure(FailureKind.NOT_HTTP, detail, took, count)
    if head[9:12] == b"101" or "_SWITCH_UPGRADE" in text:  # h11's word for an unasked 101
        return TransportFailure.switched(took, count)
    if timed_out or any(_is_timeout(e) for e in chain):
        waited = "" if elapsed is None else f" (waited {elapsed:.2f} s)"
        if any(type(e).__name__ in ("ConnectTimeout", "ConnectTimeoutError") for e in chain):
            detail = f"no connection within {limit:g} s{waited}"
            return TransportFailure(FailureKind.NO_ANSWER, detail, took)
        if count:
            detail = f"the response took longer than {limit:g} s ({count} bytes received)"
            return TransportFailure(FailureKind.TOO_SLOW, detail, took, count)
        detail = f"no answer within {limit:g} s{waited}"
        return TransportFailure(FailureKind.NO_ANSWER, detail, took)
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return TransportFailure(FailureKind.REFUSED, "the connection was refused", took)
        if isinstance(error, socket.gaierror):
            return TransportFailure(FailureKind.UNRESOLVED, "the host name did not resolve", took)
        if isinstance(error, ssl.SSLError):
            return _tls(error, took)
        if isinstance(error, http.client.BadStatusLine):
            line = str(error).encode("latin-1", "replace")
            detail = f"the reply is not HTTP: it began {_show(line)}{at}"
            return TransportFailure(FailureKind.NOT_HTTP, detail, took, count or len(line))
    if any(marker in text.lower() for marker in _NOT_HTTP):
        detail = f"the reply is not HTTP ({exc}){at}"
        return TransportFailure(FailureKind.NOT_HTTP, detail, took, count)
    partial = _INCOMPLETE.search(text)
    if partial and not count:
        count = int(partial.group(1))
    if count:
        after = f"mid-response, after {count} bytes of the reply"
    elif partial is not None or "Connection broken" in text:
        after = "mid-response"
    else:
        after = "before any answer"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "reset by peer" in text:
        detail = f"the server reset the connection {after}{at}"
        return TransportFailure(FailureKind.RESET, detail, took, count)
    if any(marker in text for marker in _CLOSED):
        detail = f"the server closed the connection {after}{at}"
        return TransportFailure(FailureKind.CLOSED, detail, took, count)
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ") + at
    return TransportFailure(FailureKind.BROKEN, detail, took, count)
