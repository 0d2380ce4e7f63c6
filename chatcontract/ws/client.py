"""The I/O edge: one WebSocket connection, observed frame by frame under deadlines.

Everything the ``websockets`` client can raise is translated here into one of
three observations (:class:`Received`, :class:`Closed`, :class:`Silence`) or a
:class:`Handshake` verdict, so the checks above never see a foreign exception.
The client never follows redirects, never reconnects and never retries: a
negative test that retried could turn a refusal into an acceptance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
    ProtocolError,
)
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol

from chatcontract import __version__
from chatcontract.context import RunContext
from chatcontract.errors import ChatContractError
from chatcontract.report.model import Finding
from chatcontract.spec import TokenCarrier, WebSocketContract, WebSocketDeadlines
from chatcontract.ws.frames import (
    FrameCheck,
    FrameLog,
    FrameValidator,
    Transcript,
    close_code_problem,
    describe_close,
    fresh,
)
from chatcontract.ws.outgoing import typed_frame
from chatcontract.ws.resources import Resources
from chatcontract.ws.stalls import Stalls
from chatcontract.ws.tokens import b64url
from chatcontract.ws.vocabulary import Vocabulary, derive

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "KEPT_FRAMES",
    "Closed",
    "Handshake",
    "OpenFailed",
    "Presented",
    "Received",
    "Silence",
    "Socket",
    "WsTarget",
    "handshake",
    "open_socket",
    "present",
    "session",
    "shown_url",
]

DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
"""A security limit on what we accept from the server: a frame above it is a finding."""
KEPT_FRAMES = 200
SETTLE_SECONDS = 0.5
"""Without a declared welcome: how long a new channel must stay open to count as opened."""
"""Frames a socket keeps for evidence (the latest ones): memory stays bounded under a flood."""
_CLOSE_TIMEOUT = 1.0
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_USER_AGENT = f"chatcontract/{__version__}"


@dataclass(frozen=True, slots=True)
class Presented:
    """How one connection presents a token (or withholds one): what the handshake carries."""

    label: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    expected_subprotocol: str | None = None
    origin: str | None = None
    carrier: TokenCarrier | None = None


def present(
    url: str,
    carrier: TokenCarrier | None,
    token: str | None,
    *,
    origin: str | None = None,
) -> Presented:
    """Put ``token`` where ``carrier`` says; no carrier or no token: an anonymous handshake."""
    if carrier is None or token is None:
        return Presented("no token", url, origin=origin)
    if carrier.kind == "header":
        name = carrier.name or "Authorization"
        value = f"{carrier.scheme} {token}" if carrier.scheme else token
        return Presented("header", url, headers=((name, value),), origin=origin, carrier=carrier)
    if carrier.kind == "subprotocol":
        encoded = b64url(token.encode()) if carrier.encoding == "base64url-nopad" else token
        protocol = carrier.protocol or ""
        return Presented(
            "subprotocol",
            url,
            subprotocols=(protocol, f"{carrier.token_prefix}{encoded}"),
            expected_subprotocol=protocol,
            origin=origin,
            carrier=carrier,
        )
    if carrier.kind == "query":
        sep = "&" if "?" in url else "?"
        query = f"{quote(carrier.name or 'token')}={quote(token, safe='')}"
        return Presented("query", f"{url}{sep}{query}", origin=origin, carrier=carrier)
    cookie = f"{carrier.name or 'token'}={token}"
    return Presented("cookie", url, headers=(("Cookie", cookie),), origin=origin, carrier=carrier)


@dataclass(slots=True)
class WsTarget:
    """One WebSocket contract of one run: where it lives and what it must do."""

    ctx: RunContext
    contract: WebSocketContract
    validator: FrameValidator
    frames: FrameLog = field(default_factory=FrameLog)
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    stalls: Stalls = field(default_factory=Stalls)
    """What the first contract that waited in vain learned, for the later ones."""
    vocab: Vocabulary = field(init=False)
    resources: Resources = field(init=False)
    """The URL's parameters per user, and the objects made for them."""
    _pong: dict[str, Any] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.vocab = derive(self.ctx.spec, self.contract)
        self.resources = Resources(self.ctx, self.contract)

    @classmethod
    def of(cls, ctx: RunContext, contract: WebSocketContract) -> WsTarget:
        return cls(ctx, contract, FrameValidator(contract))

    @property
    def url(self) -> str:
        """The URL the first user connects to (its parameters filled)."""
        return self.ctx.ws_base_url.rstrip("/") + self.resources.path()

    async def url_for(self, user: str | None) -> str:
        """The URL ``user`` connects to: with an object made for that user where the
        parameters name one, else the first user's."""
        await self.resources.fill(user)
        return self.ctx.ws_base_url.rstrip("/") + self.resources.path(user)

    @property
    def deadlines(self) -> WebSocketDeadlines:
        return self.contract.deadlines

    def pong(self) -> dict[str, Any]:
        """The heartbeat's pong frame, fresh: built once from its schema, unique fields new."""
        kind = self.contract.heartbeat_pong or ""
        if self._pong is None:
            self._pong = typed_frame(self.contract, self.validator, kind)
        frame: dict[str, Any] = fresh(self.validator, self._pong)
        return frame

    def transcript(self) -> Transcript:
        return Transcript(self.ctx.redactor)

    def secret(self, token: str) -> str:
        """Register a token (and its subprotocol encoding) with the redactor; return it."""
        self.ctx.redactor.add(token)
        self.ctx.redactor.add(b64url(token.encode()))
        return token

    async def token(self, user: str | None = None) -> str:
        return self.secret(await self.ctx.credentials.token(user))

    def presented(self, carrier: TokenCarrier | None, token: str | None) -> Presented:
        return present(self.url, carrier, token)


@dataclass(frozen=True, slots=True)
class Received:
    """One application frame from the server, judged against the server schemas."""

    index: int
    """1-based position among the frames of this connection (the welcome is #1)."""
    value: Any
    text: str
    check: FrameCheck

    @property
    def type(self) -> str | None:
        return self.check.type

    @property
    def label(self) -> str:
        return f"frame #{self.index} ({self.type or 'untyped'})"


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection ended: who closed it, with which code, and what was wrong with that."""

    code: int | None
    reason: str = ""
    by: Literal["server", "client", "nobody"] = "server"
    problem: str | None = None
    """A contract problem in the way it ended (illegal code, invalid UTF-8, oversize frame)."""

    def describe(self) -> str:
        if self.by == "client":
            return f"we closed it ({describe_close(self.code, self.reason)}): {self.problem}"
        return describe_close(self.code, self.reason)


@dataclass(frozen=True, slots=True)
class Silence:
    waited: float


Observation = Received | Closed | Silence


@dataclass(frozen=True, slots=True)
class Handshake:
    outcome: Literal["accepted", "rejected", "timeout", "broken", "unreachable"]
    status: int | None = None
    detail: str = ""
    socket: Socket | None = None


class OpenFailed(Exception):
    """A connection that should have opened did not: refused, silent, or no welcome frame."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


class _NoRedirects(connect):
    """``connect`` that reports a redirect as the refusal it is instead of following it."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class Socket:
    """An open connection whose every incoming frame is recorded and validated."""

    def __init__(
        self,
        target: WsTarget,
        conn: ClientConnection,
        transcript: Transcript,
        *,
        user: str | None = None,
    ) -> None:
        self.target = target
        self.conn = conn
        self.transcript = transcript
        self.user = user
        self.received: deque[Received] = deque(maxlen=KEPT_FRAMES)
        """The latest frames, for evidence; :attr:`index` counts them all."""
        self.count = 0
        self.findings: list[Finding] = []
        self.heartbeats = 0
        self.welcome: Mapping[str, Any] | None = None
        self.closed: Closed | None = None
        self.send_failures = 0
        """Sends that failed (the connection was gone or would not take the frame)."""
        self._unread: deque[Observation] = deque()
        """Seen while opening a channel without a declared welcome: the next receive's."""

    def unread(self, seen: Observation) -> None:
        """Give ``seen`` back: the next :meth:`receive` returns it first."""
        self._unread.append(seen)

    @property
    def subprotocol(self) -> str | None:
        return self.conn.subprotocol

    @property
    def index(self) -> int:
        return self.count

    async def send_frame(self, value: Mapping[str, Any]) -> None:
        """Send a frame that must keep the client schemas: a failure is then never our input.

        Raises :class:`ChatContractError` when it does not (a bad spec example, or a bug here).
        """
        check = self.target.validator.check_client(value)
        if not check.ok:
            raise ChatContractError(
                "chatcontract would send a frame that breaks the client schemas: "
                + "; ".join(check.problems)
            )
        await self.send_json(value)

    async def send_json(self, value: Any) -> None:
        """Send any JSON value as a text frame, unchecked (hostile and fuzzed input)."""
        await self.send_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    async def send_text(self, text: str) -> None:
        self.transcript.sent(text)
        await self._send(text)

    async def send_bytes_as_text(self, data: bytes) -> None:
        """A TEXT frame whose payload is ``data`` unchecked: how invalid UTF-8 reaches a server."""
        self.transcript.sent(data)
        await self._send(data, text=True)

    async def _send(self, data: str | bytes, *, text: bool | None = None) -> None:
        # A send only blocks on a full write buffer; the deadline keeps a server
        # that stopped reading from stalling the check forever.
        try:
            async with asyncio.timeout(self.target.deadlines.idle):
                await self.conn.send(data, text=text)
        except (ConnectionClosed, TimeoutError) as exc:
            self.send_failures += 1
            self.transcript.note(f"send failed: {type(exc).__name__}")

    async def drain(self) -> Closed | Silence:
        """Read (and judge) what is still buffered until the connection's end, or silence
        at the first-frame deadline: after a send failed, the end is the news."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.target.deadlines.first_frame
        while True:
            seen = await self.receive(deadline, answer_heartbeats=False)
            if not isinstance(seen, Received):
                return seen

    async def receive(self, deadline: float, *, answer_heartbeats: bool = True) -> Observation:
        """The next application frame before ``deadline`` (loop time), the close, or silence.

        Server heartbeat pings are answered with the contract's pong and skipped.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            if self._unread:
                seen = self._unread.popleft()
                if not isinstance(seen, Received):
                    return seen
                frame = seen
            else:
                if self.closed is not None:
                    return self.closed
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await self.conn.recv()
                except TimeoutError:
                    ended = await self._closing_at_deadline()
                    return ended if ended is not None else Silence(loop.time() - started)
                except ConnectionClosed as exc:
                    return self._ended(exc)
                frame = self._judge(data)
            contract = self.target.contract
            if (
                answer_heartbeats
                and contract.heartbeat_ping is not None
                and frame.type == contract.heartbeat_ping
                and self.welcome is not None
            ):
                self.heartbeats += 1
                if contract.heartbeat_pong is not None:
                    await self.send_frame(self.target.pong())
                continue
            return frame

    async def _closing_at_deadline(self) -> Closed | None:
        """At a deadline, a connection already closing is a close, not silence.

        ``recv`` waits up to the close timeout for the TCP connection to end after
        a close frame; a peer that never ends it must not turn its close (or our
        protocol error) into "no answer".
        """
        if self.conn.protocol.state is State.OPEN:
            return None
        self._drop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await asyncio.shield(self.conn.connection_lost_waiter)
        if self.conn.protocol.state is not State.CLOSED:
            return None
        return self._ended(self.conn.protocol.close_exc)

    def _judge(self, data: str | bytes) -> Received:
        self.count += 1
        index = self.count
        self.transcript.received(data)
        value: Any = None
        text = data if isinstance(data, str) else ""
        if not self.target.validator.judges_server:
            # The spec describes no frames (a plain 101): nothing to judge them by.
            check = FrameCheck(None, ())
        elif isinstance(data, bytes):
            check = FrameCheck(None, ("/: a binary frame; the contract's frames are JSON text",))
        else:
            text = data
            value, check = self.target.validator.check_server_text(data)
        frame = Received(index, value, text, check)
        self.received.append(frame)
        finding = None
        if not check.ok:
            finding = Finding(
                f"{check.type or 'a frame'} does not match the server frame schemas: "
                + "; ".join(check.problems),
                location=frame.label,
            )
            self.findings.append(finding)
        self.target.frames.record(check, finding)
        return frame

    def _ended(self, exc: ConnectionClosed) -> Closed:
        cause = self.conn.protocol.parser_exc or exc.__cause__
        closed: Closed
        if isinstance(cause, UnicodeDecodeError):
            closed = Closed(
                1007, by="client", problem="the server sent invalid UTF-8 in a text frame"
            )
        elif isinstance(cause, PayloadTooBig):
            closed = Closed(
                1009,
                by="client",
                problem="the server sent a message larger than "
                f"{self.target.max_frame_bytes} bytes",
            )
        elif isinstance(cause, ProtocolError) and "status code" in str(cause):
            closed = Closed(
                1002,
                by="client",
                problem="the server's close frame carries a code that must never be sent "
                "(1005, 1006, 1015 or a reserved code)",
            )
        elif isinstance(cause, ProtocolError):
            closed = Closed(1002, by="client", problem=f"the server broke the framing: {cause}")
        elif exc.rcvd is not None:
            closed = Closed(
                exc.rcvd.code, exc.rcvd.reason, "server", close_code_problem(exc.rcvd.code)
            )
        elif exc.sent is not None:
            closed = Closed(exc.sent.code, exc.sent.reason, "client", "we closed the connection")
        else:
            closed = Closed(
                None, by="nobody", problem="the server dropped the connection without a close frame"
            )
        self.closed = closed
        self.transcript.note(f"connection ended: {closed.describe()}")
        return closed

    def _drop(self) -> None:
        # Only a live transport: one whose deferred close already completed (from the
        # write callback, after a buffered write) has no loop left, and ``abort()``
        # would raise AttributeError instead of doing nothing.
        if not self.conn.connection_lost_waiter.done():
            self.conn.transport.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (for unresponsive servers)."""
        self.transcript.note("we drop the connection (no answer expected)")
        self._drop()
        if self.closed is None:
            self.closed = Closed(None, by="client", problem="dropped by us")

    async def close(self) -> None:
        if self.closed is None:
            self.transcript.note("we close the connection (1000)")
        if self.closed is not None and self.closed.problem == "dropped by us":
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT + 0.5):
                await self.conn.close()
        if self.closed is None:
            self.closed = Closed(1000, by="client", problem="closed by us")


async def handshake(
    target: WsTarget,
    presented: Presented,
    transcript: Transcript,
    *,
    user: str | None = None,
) -> Handshake:
    """One opening handshake, exactly one attempt, bounded by the handshake deadline."""
    transcript.note(_describe_request(presented))
    shown = shown_url(presented.url)
    await target.ctx.services.pacer.wait()  # --rate-limit paces handshakes like requests
    target.ctx.services.budget.note()
    started = time.monotonic()
    deadline = target.deadlines.handshake
    try:
        conn = await _NoRedirects(
            presented.url,
            origin=Origin(presented.origin) if presented.origin is not None else None,
            subprotocols=[Subprotocol(p) for p in presented.subprotocols] or None,
            additional_headers=list(presented.headers) or None,
            user_agent_header=_USER_AGENT,
            compression=None,
            proxy=None,
            open_timeout=deadline,
            ping_interval=None,
            ping_timeout=None,
            close_timeout=_CLOSE_TIMEOUT,
            max_size=target.max_frame_bytes,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace")[:200] if exc.response.body else ""
        transcript.note(
            f"HTTP {status} {exc.response.reason_phrase}" + (f": {body}" if body else "")
        )
        return Handshake("rejected", status, f"HTTP {status}")
    except TimeoutError:
        transcript.note(f"no handshake response within {deadline:g} s")
        return Handshake("timeout", detail=f"no handshake response within {deadline:g} s")
    except InvalidMessage as exc:
        transcript.note(f"no valid HTTP response: {exc}")
        return Handshake("broken", detail=f"no valid HTTP response to the handshake ({exc})")
    except InvalidHandshake as exc:
        transcript.note(f"invalid handshake response: {exc}")
        return Handshake("broken", detail=f"invalid handshake response: {exc}")
    except OSError as exc:
        transcript.note(f"cannot connect: {exc}")
        return Handshake("unreachable", detail=f"cannot connect to {shown}: {exc}")
    except (InvalidURI, ValueError) as exc:
        # A bad port or bracket in the configured URL: one line, never a traceback.
        reason = _one_line(str(exc)).replace(presented.url, shown)
        transcript.note(f"invalid URL {shown}: {reason}")
        return Handshake("broken", detail=f"invalid WebSocket URL {shown}: {reason}")
    elapsed = time.monotonic() - started
    chosen = f", subprotocol {conn.subprotocol}" if conn.subprotocol else ""
    transcript.note(f"HTTP 101 Switching Protocols after {elapsed:.3f} s{chosen}")
    sock = Socket(target, conn, transcript, user=user)
    # A message carrier (graphql-transport-ws' connection_init) presents the token in the
    # first frame: part of the handshake for every row, refusal rows included.
    init = getattr(presented, "init", "")
    if isinstance(init, str) and init:
        await sock.send_text(init)
    return Handshake("accepted", 101, "HTTP 101", sock)


def shown_url(url: str) -> str:
    """``url`` without userinfo (``user:password@``), fit for messages and transcripts."""
    return _USERINFO.sub(r"\1", url)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"


def _describe_request(presented: Presented) -> str:
    parts = [f"GET {shown_url(presented.url)}"]
    parts += [f"{name}: {value}" for name, value in presented.headers]
    if presented.subprotocols:
        parts.append("Sec-WebSocket-Protocol: " + ", ".join(presented.subprotocols))
    if presented.origin is not None:
        parts.append(f"Origin: {presented.origin}")
    return "handshake " + " | ".join(parts)


async def open_socket(
    target: WsTarget,
    presented: Presented,
    transcript: Transcript,
    *,
    user: str | None = None,
) -> Socket:
    """Handshake and wait for the welcome frame; raise :class:`OpenFailed` otherwise.

    Without a declared welcome, nothing is owed: the channel is open once it has
    stayed open for :data:`SETTLE_SECONDS` (a server that refuses after the 101
    closes at once), and a frame that arrives meanwhile is kept for the caller.
    """
    result = await handshake(target, presented, transcript, user=user)
    if result.socket is None:
        raise OpenFailed(result.outcome, result.detail, result.status)
    sock = result.socket
    wanted = target.contract.welcome_type
    first_frame = target.deadlines.first_frame
    loop = asyncio.get_running_loop()
    if wanted is None:
        settle = min(first_frame, SETTLE_SECONDS)
        first = await sock.receive(loop.time() + settle, answer_heartbeats=False)
        if isinstance(first, Closed):
            raise OpenFailed(
                "closed", f"the connection ended at once: {first.problem or first.describe()}"
            )
        if isinstance(first, Received):
            sock.unread(first)
        sock.welcome = {}
        return sock
    first = await sock.receive(loop.time() + first_frame, answer_heartbeats=False)
    if isinstance(first, Silence):
        # A server that stays silent would not answer a close frame either.
        sock.abort()
        raise OpenFailed("no-welcome", f"no frame within {first_frame:g} s after the 101")
    if isinstance(first, Closed):
        raise OpenFailed(
            "closed", f"the connection ended before any frame: {first.problem or first.describe()}"
        )
    if wanted is not None and first.type != wanted:
        await sock.close()
        what = repr(first.type) if first.type is not None else "; ".join(first.check.problems)
        raise OpenFailed("no-welcome", f"the first frame is {what}, not {wanted!r}")
    sock.welcome = first.value if isinstance(first.value, dict) else {}
    return sock


@contextlib.asynccontextmanager
async def session(
    target: WsTarget,
    presented: Presented,
    transcript: Transcript,
    *,
    user: str | None = None,
) -> AsyncIterator[Socket]:
    """:func:`open_socket` that always closes the connection on the way out."""
    sock = await open_socket(target, presented, transcript, user=user)
    try:
        yield sock
    finally:
        await sock.close()
