"""Reading one SSE response over httpx, within deadlines, into an :class:`EventStreamChecker`.

This is the I/O shell around the sans-I/O parser and checker: it sends the
request, checks the status and headers, feeds body chunks to the parser and
parsed events to the checker, and stops at the end of the body, at
``max-events``, at a parser violation or at the first missed deadline. After
the run's terminal event it listens only for a short grace, so that events
the server sends after the end of the run are still judged. Every
read is bounded (``asyncio.timeout`` per read, a total deadline, and the
parser's size limits), so an endless, stalled, trickling or huge stream ends
with a finding instead of a hang or a memory blow-up.

Blocks a browser's EventSource never dispatches (no ``data`` line, or cut off
by the end of the body) are what the wire says all the same: each kind is one
warning, and a block without data whose type the spec declares without data
is judged as an event (so an ``event: end`` block can end a sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
import orjson

from chatcontract.errors import TargetUnreachable
from chatcontract.presentation import BEARER, Presentation
from chatcontract.report.model import Finding, TranscriptEntry
from chatcontract.spec.model import StreamDeadlines
from chatcontract.spec.refs import inline, resolve_pointer
from chatcontract.sse.checker import EVENTS, CompiledStream, EventStreamChecker
from chatcontract.sse.parser import (
    ParserLimits,
    SSEComment,
    SSEEvent,
    SSEParser,
    SSEUndispatched,
)

__all__ = [
    "CUT_SHORT",
    "DEADLINES",
    "ReceivedEvent",
    "StopReason",
    "StreamRequest",
    "StreamRun",
    "Transcript",
    "documented_cache_control",
    "read_stream",
    "seconds",
]

DEADLINES: Final = "deadlines"
"""Aspect of findings about time and size bounds: connect, first event, idle, total, max-events."""

StopReason = Literal[
    "terminal",
    "eof",
    "max-events",
    "stop-after",
    "deadline",
    "transport",
    "parser",
    "status",
    "content-type",
]
CUT_SHORT: Final = frozenset({"max-events", "deadline", "transport", "parser"})
"""Stop reasons after which the run's own end was never seen."""

_TOKEN_PLACEHOLDER = "$CHATCONTRACT_TOKEN"
_EXCERPT = 300
_BODY_EXCERPT = 2048
_KEPT_DATA_BYTES = 16 << 20
_CLOSE_SECONDS = 1.0
_GRACE_SECONDS = 0.5


def seconds(value: float) -> str:
    """``10.0`` -> ``10.0 s``, ``0.25`` -> ``0.25 s``: deadlines as a reader expects them."""
    return f"{value:.1f} s" if round(value, 1) == value else f"{value:g} s"


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One stream request; ``token`` never appears in :meth:`curl` or transcripts."""

    method: str
    url: str
    body: Any
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token_variable: str = _TOKEN_PLACEHOLDER
    user: str | None = None
    """Whose token this is (``None``: the credentials' default user), for verdicts."""
    presented: Presentation = BEARER
    """How the token goes with the request (the operation's security scheme)."""

    def http_headers(self) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            # A compressed stream could inflate past the parser's limits inside one chunk.
            "Accept-Encoding": "identity",
            **self.headers,
        }
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers.update(self.presented.headers(self.token))
        return headers

    def params(self) -> dict[str, str]:
        """Query parameters: the token, when the scheme puts it in the query string."""
        return {} if self.token is None else self.presented.params(self.token)

    def content(self) -> bytes | None:
        return None if self.body is None else orjson.dumps(self.body)

    def curl(self) -> str:
        """A command reproducing the request, with the token as a shell variable."""
        parts = ["curl -N -sS", "-X", self.method, shlex.quote(self.url)]
        parts += ["-H", shlex.quote("Accept: text/event-stream")]
        for name, value in self.headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.token is not None:
            parts.append(self.presented.curl(self.token_variable))
        if self.body is not None:
            parts += ["-H", shlex.quote("Content-Type: application/json")]
            parts += ["--data-raw", shlex.quote(orjson.dumps(self.body).decode())]
        return " ".join(parts)

    def describe(self) -> str:
        extra = "".join(f" {name}: {value}" for name, value in self.headers.items())
        body = "" if self.body is None else " " + orjson.dumps(self.body).decode()
        return f"{self.method} {self.url}{extra}{body}"


@dataclass(slots=True)
class ReceivedEvent:
    """What is kept of one event for the resume and isolation checks."""

    number: int
    type: str | None
    id: str | None
    offset: float
    event: SSEEvent | SSEUndispatched | None
    """The parsed event (a block without data the spec declares is an SSEUndispatched);
    dropped (``None``) once a run keeps more than 16 MiB of data."""
    data: Any
    """The decoded data, ``None`` if it was not JSON or was dropped."""


class Transcript:
    """The first and last entries of an exchange: enough evidence, bounded size."""

    def __init__(self, head: int = 40, tail: int = 20) -> None:
        self._head: list[TranscriptEntry] = []
        self._tail: list[TranscriptEntry] = []
        self._head_size = head
        self._tail_size = tail
        self._dropped = 0

    def add(self, direction: Literal["sent", "received", "note"], offset: float, text: str) -> None:
        entry = TranscriptEntry(direction, round(offset, 4), text)
        if len(self._head) < self._head_size:
            self._head.append(entry)
            return
        self._tail.append(entry)
        if len(self._tail) > self._tail_size:
            del self._tail[0]
            self._dropped += 1

    def entries(self) -> tuple[TranscriptEntry, ...]:
        if not self._dropped:
            return (*self._head, *self._tail)
        gap = TranscriptEntry("note", self._tail[0].offset, f"… {self._dropped} entries omitted")
        return (*self._head, gap, *self._tail)


@dataclass(slots=True)
class StreamRun:
    """Everything one read of a stream produced."""

    request: StreamRequest
    checker: EventStreamChecker
    transcript: Transcript = field(default_factory=Transcript)
    status: int | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body_excerpt: str = ""
    """The start of a non-stream (error) response body."""
    events: list[ReceivedEvent] = field(default_factory=list)
    comments: int = 0
    stop: StopReason = "eof"
    stop_detail: str = ""
    """Why reading stopped, for messages (``idle deadline 10.0 s missed``)."""
    elapsed: float = 0.0
    raw: bytearray | None = None
    """The body as received (up to ``capture_raw`` bytes), for the isolation check."""
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    """Reader findings by aspect (``events``, ``deadlines``); the checker holds the rest."""
    terminal: int | None = None
    """The number of the event that ended the run, once one did."""
    _judged_at_terminal: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    """How many findings each aspect held when the run ended."""

    @property
    def opened(self) -> bool:
        """The server answered with an event stream (whatever it then sent)."""
        return self.stop not in ("status", "content-type") and self.status is not None

    @property
    def cut_short(self) -> bool:
        return self.stop in CUT_SHORT

    def all_findings(self, aspect: str) -> list[Finding]:
        return self.findings.get(aspect, []) + self.checker.findings.get(aspect, [])

    def add(
        self,
        aspect: str,
        message: str,
        location: str = "",
        severity: Literal["failure", "warning"] = "failure",
    ) -> None:
        self.findings.setdefault(aspect, []).append(
            Finding(message, location=location, severity=severity)
        )

    def ended(self, number: int) -> None:
        """Note that event ``number`` ended the run, to tell later findings apart."""
        self.terminal = number
        self._judged_at_terminal = {
            aspect: len(found) for aspect, found in self.checker.findings.items()
        }

    def late_findings(self) -> list[Finding]:
        """Sequence findings about events the server sent after the run had ended."""
        if self.terminal is None:
            return []
        return [
            finding
            for aspect, found in self.checker.findings.items()
            if aspect != EVENTS
            for finding in found[self._judged_at_terminal.get(aspect, 0) :]
            if finding.severity == "failure"
        ]


def documented_cache_control(document: Mapping[str, Any], pointer: str, status: int) -> bool:
    """Whether the spec documents a ``Cache-Control`` header on the stream's success response."""
    try:
        response = inline(document, resolve_pointer(document, f"{pointer}/responses/{status}"))
    except LookupError:
        return False
    headers = response.get("headers") if isinstance(response, dict) else None
    return isinstance(headers, dict) and any(k.lower() == "cache-control" for k in headers)


def _where(run: StreamRun) -> str:
    if not run.events:
        return "before any event"
    last = run.events[-1]
    return f"after event #{last.number}" + (f" ({last.type})" if last.type else "")


async def read_stream(
    client: httpx.AsyncClient,
    compiled: CompiledStream,
    request: StreamRequest,
    *,
    deadlines: StreamDeadlines | None = None,
    limits: ParserLimits | None = None,
    stop_after: int | None = None,
    grace: float = _GRACE_SECONDS,
    capture_raw: int = 0,
    check_cache: bool = False,
    unreachable_raises: bool = False,
) -> StreamRun:
    """Send ``request`` and read its event stream into a fresh checker.

    ``stop_after`` stops after that many events (the resume check's first leg).
    After the run's terminal event reading goes on until the server closes, for
    at most ``grace`` seconds (and never past the total deadline), so that an
    event after the terminal one is seen. ``capture_raw`` keeps that many body bytes.
    A refused or timed-out connection raises :class:`TargetUnreachable` when
    ``unreachable_raises``, and is a finding otherwise.
    """
    body = request.body if isinstance(request.body, Mapping) else None
    run = StreamRun(request=request, checker=EventStreamChecker(compiled, body))
    run.raw = bytearray() if capture_raw else None
    reader = _Reader(
        client,
        run,
        deadlines or compiled.stream.deadlines,
        limits or ParserLimits(),
        stop_after=stop_after,
        grace=grace,
        capture_raw=capture_raw,
    )
    run.transcript.add("sent", 0.0, request.describe())
    try:
        await reader.read(check_cache=check_cache, unreachable_raises=unreachable_raises)
    finally:
        run.elapsed = reader.now() - reader.started
    run.checker.finish(cut=run.stop_detail if run.cut_short else None)
    if run.stop_detail:
        run.transcript.add("note", run.elapsed, f"stopped reading: {run.stop_detail}")
    return run


class _Reader:
    """The state of one read: clocks, deadlines, and what to do at each stop."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        run: StreamRun,
        deadlines: StreamDeadlines,
        limits: ParserLimits,
        *,
        stop_after: int | None,
        grace: float,
        capture_raw: int,
    ) -> None:
        self.client = client
        self.run = run
        self.label = run.checker.compiled.label
        self.deadlines = deadlines
        self.limits = limits
        self.stop_after = stop_after
        self.grace = grace
        self.capture_raw = capture_raw
        self.now = asyncio.get_running_loop().time
        self.started = self.now()
        self.total_at = self.started + deadlines.total
        self.first_at = min(self.started + deadlines.first_event, self.total_at)
        self.grace_at: float | None = None
        self.last_item: float | None = None
        self.kept_bytes = 0
        self.undispatched_noted: set[str] = set()

    async def read(self, *, check_cache: bool, unreachable_raises: bool) -> None:
        response = await self._send(unreachable_raises)
        if response is None:
            return
        try:
            if self._head_ok(response, check_cache):
                await self._events(response)
            elif self.run.stop == "status":
                await self._excerpt(response)
        finally:
            # Closing drops the connection rather than draining an endless body;
            # the bound only guards against a misbehaving transport.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_SECONDS):
                    await response.aclose()

    async def _send(self, unreachable_raises: bool) -> httpx.Response | None:
        request = self.run.request
        http_request = self.client.build_request(
            request.method,
            request.url,
            params=request.params(),
            headers=request.http_headers(),
            content=request.content(),
            timeout=httpx.Timeout(self.deadlines.connect, read=None),
        )
        try:
            async with asyncio.timeout_at(self.first_at):
                return await self.client.send(http_request, stream=True)
        except TimeoutError:
            kind = "total" if self.first_at >= self.total_at else "first-event"
            limit = self.deadlines.total if kind == "total" else self.deadlines.first_event
            _deadline(
                self.run,
                f"{kind} deadline {seconds(limit)} missed waiting for the response headers",
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if unreachable_raises:
                raise TargetUnreachable(f"cannot connect to {request.url}: {_error(exc)}") from exc
            if isinstance(exc, httpx.ConnectTimeout):
                _deadline(self.run, f"connect deadline {seconds(self.deadlines.connect)} missed")
            else:
                _transport(self.run, f"cannot connect: {_error(exc)}")
        except httpx.TransportError as exc:
            _transport(self.run, f"request failed before the response: {_error(exc)}")
        return None

    def _head_ok(self, response: httpx.Response, check_cache: bool) -> bool:
        """Record the status line and headers; whether an event stream follows."""
        run = self.run
        run.status = response.status_code
        run.headers = {k.lower(): v for k, v in response.headers.items()}
        run.content_type = response.headers.get("content-type")
        shown = f"HTTP {response.status_code} {_shown_headers(run.headers)}"
        run.transcript.add("received", self.now() - self.started, shown)
        if response.status_code != run.checker.compiled.stream.success_status:
            run.stop = "status"
            run.stop_detail = f"answered {response.status_code}"
            return False
        media = (run.content_type or "").split(";", 1)[0].strip().lower()
        if media != "text/event-stream":
            run.stop = "content-type"
            run.stop_detail = f"Content-Type is {run.content_type or 'missing'}"
            run.add(EVENTS, f"{self.label}: {run.stop_detail}, expected text/event-stream")
            return False
        if check_cache:
            value = run.headers.get("cache-control")
            directives = {d.strip().split("=", 1)[0].lower() for d in (value or "").split(",")}
            if not directives & {"no-cache", "no-store"}:
                run.add(
                    EVENTS,
                    f"{self.label}: Cache-Control is {repr(value) if value else 'missing'}; "
                    "the spec documents it and a stream must not be cached (no-cache or no-store)",
                )
        return True

    async def _excerpt(self, response: httpx.Response) -> None:
        collected = bytearray()
        until = min(self.total_at, self.now() + 2.0)
        with contextlib.suppress(TimeoutError, httpx.HTTPError):
            async with asyncio.timeout_at(until):
                async for chunk in response.aiter_raw():
                    collected += chunk
                    if len(collected) >= _BODY_EXCERPT:
                        break
        text = _cut(collected[:_BODY_EXCERPT].decode("utf-8", "replace"), _BODY_EXCERPT)
        self.run.body_excerpt = text
        if text:
            self.run.transcript.add("received", self.now() - self.started, text)

    def _next_deadline(self) -> tuple[float, str]:
        """When the next chunk must have arrived, and which deadline that is."""
        if self.grace_at is not None:
            return min(self.grace_at, self.total_at), "grace"
        if not self.run.events or self.last_item is None:
            at, kind = self.first_at, "first-event"
        else:
            # Comments count as liveness here: they are what heartbeats are for.
            at, kind = self.last_item + self.deadlines.idle, "idle"
        return (self.total_at, "total") if self.total_at < at else (at, kind)

    async def _events(self, response: httpx.Response) -> None:
        run = self.run
        parser = SSEParser(self.limits)
        chunks = response.aiter_raw().__aiter__()
        while True:
            due, kind = self._next_deadline()
            try:
                if self.now() >= due:
                    # asyncio.timeout only fires at a suspension point, which a
                    # fast or trickling body may never leave us enough time to reach.
                    raise TimeoutError
                async with asyncio.timeout_at(due):
                    chunk = await chunks.__anext__()
            except TimeoutError:
                if kind != "grace":
                    self._missed(kind)
                return
            except StopAsyncIteration:
                # A truncated UTF-8 sequence only shows up once the decoder is flushed.
                parser.receive_eof()
                self._items(parser.events_received(), self.now())
                self._violated(parser)
                return
            except httpx.TransportError as exc:
                self._broken(exc)
                return
            raw = run.raw
            if raw is not None and len(raw) < self.capture_raw:
                raw += chunk[: self.capture_raw - len(raw)]
            parser.receive_data(chunk)
            if self._items(parser.events_received(), self.now()) or self._violated(parser):
                return

    def _violated(self, parser: SSEParser) -> bool:
        """Record the parser's violation, if it has one; whether it had."""
        violation = parser.violation
        if violation is None:
            return False
        run = self.run
        run.stop = "parser"
        run.stop_detail = f"SSE framing error ({violation.code})"
        message = f"{self.label}: SSE framing: {violation.message}"
        run.add(EVENTS, message, f"byte {violation.offset}")
        return True

    def _broken(self, exc: httpx.TransportError) -> None:
        run = self.run
        what = f"transport error {_where(run)}: {_error(exc)}"
        if run.terminal is None:
            _transport(run, what)
            return
        # The run is complete: a connection dropped rather than closed loses nothing
        # the contract needs, so it is noted, not failed.
        run.add(EVENTS, f"{self.label}: {what}, after the run had ended", severity="warning")

    def _items(self, items: list[SSEEvent | SSEComment | SSEUndispatched], now: float) -> bool:
        """Feed parsed items to the checker; whether reading should stop."""
        run = self.run
        checker = run.checker
        transcript = run.transcript
        offset = now - self.started
        for item in items:
            self.last_item = now
            if type(item) is SSEComment:
                run.comments += 1
                transcript.add("received", offset, f": {_cut(item.text)}")
                continue
            if type(item) is SSEUndispatched and not self._undispatched(item, offset):
                continue
            assert isinstance(item, SSEEvent | SSEUndispatched)
            event_type = checker.feed(item)
            number = checker.events
            keep = self.kept_bytes < _KEPT_DATA_BYTES
            self.kept_bytes += len(item.data)
            run.events.append(
                ReceivedEvent(
                    number,
                    event_type,
                    item.id,
                    offset,
                    item if keep else None,
                    checker.last_data if keep else None,
                )
            )
            shown = f"event #{number}" + (f" ({event_type})" if event_type else "")
            if item.id is not None:
                shown += f" id={item.id}"
            transcript.add("received", offset, f"{shown}: {_cut(item.data)}")
            if self.stop_after is not None and number >= self.stop_after:
                run.stop = "stop-after"
                return True
            if checker.done and self.grace_at is None:
                run.stop = "terminal"
                run.ended(number)
                self.grace_at = now + self.grace
            if number >= checker.compiled.stream.max_events:
                return self._max_events(number)
        return False

    def _undispatched(self, block: SSEUndispatched, offset: float) -> bool:
        """Note a block EventSource never dispatches; whether to judge it as an event."""
        run = self.run
        checker = run.checker
        declared = block.reason == "no-data" and checker.compiled.declares_dataless(block.event)
        name = checker.name_of(block)
        shown = f" ({name})" if name else ""
        if not declared:
            transcript_text = f"not dispatched{shown}: {_cut(block.data) or 'no data'}"
            run.transcript.add("received", offset, transcript_text)
        # One warning per kind of block and stream: the first says it all.
        kind = "declared" if declared else block.reason
        if kind in self.undispatched_noted:
            return declared
        self.undispatched_noted.add(kind)
        where = _where(run)
        if block.reason == "unterminated":
            message = (
                f"{self.label}: the stream ended inside an event{shown} {where}: no blank line "
                "terminated it, so a browser's EventSource never dispatches it; it is not judged "
                "as an event"
            )
        elif declared:
            message = (
                f"{self.label}: event #{checker.events + 1}{shown} has no data line: a browser's "
                f"EventSource never dispatches such a block; the spec declares {block.event} "
                "without data, so it is judged as sent"
            )
        else:
            message = (
                f"{self.label}: a block{shown} without a data line {where}: a browser's "
                "EventSource never dispatches it, so it is not judged as an event (an itemSchema "
                f"branch for {block.event} without data would declare it)"
            )
        run.add(EVENTS, message, severity="warning")
        return declared

    def _max_events(self, number: int) -> bool:
        run = self.run
        if run.checker.done:
            return True  # the run ended; only the grace after it was still listening
        maximum = run.checker.compiled.stream.max_events
        run.stop = "max-events"
        run.stop_detail = f"max-events {maximum} reached"
        message = (
            f"{self.label}: {maximum} events (the spec's max-events) "
            "without the run's terminal event"
        )
        run.add(DEADLINES, message, f"event #{number}")
        return True

    def _missed(self, kind: str) -> None:
        limit = {
            "total": self.deadlines.total,
            "first-event": self.deadlines.first_event,
            "idle": self.deadlines.idle,
        }[kind]
        what = f"{kind} deadline {seconds(limit)} missed {_where(self.run)}"
        if kind == "first-event" and self.run.comments:
            what += f" ({self.run.comments} comments but no event)"
        _deadline(self.run, what)


def _deadline(run: StreamRun, what: str) -> None:
    run.stop = "deadline"
    run.stop_detail = what
    label = run.checker.compiled.label
    location = ""
    if run.events:
        last = run.events[-1]
        location = f"event #{last.number}" + (f" ({last.type})" if last.type else "")
    run.add(DEADLINES, f"{label}: {what}", location)


def _transport(run: StreamRun, what: str) -> None:
    run.stop = "transport"
    run.stop_detail = what
    run.add(EVENTS, f"{run.checker.compiled.label}: {what}")


def _error(exc: BaseException) -> str:
    text = str(exc) or "(no detail)"
    return f"{type(exc).__name__}: {_cut(text, 200)}"


def _cut(text: str, width: int = _EXCERPT) -> str:
    line = text.replace("\n", "\\n")
    if len(line) <= width:
        return line
    return f"{line[: width - 1]}… ({len(text.encode())} bytes)"


def _shown_headers(headers: Mapping[str, str]) -> str:
    wanted = ("content-type", "cache-control", "content-length", "transfer-encoding")
    return " ".join(f"{name}: {headers[name]};" for name in wanted if name in headers).rstrip(";")
