"""A sans-I/O parser for ``text/event-stream`` bodies.

It follows the WHATWG HTML "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html), with two
deliberate differences, both because a contract checker must flag what a
browser would quietly tolerate:

* invalid UTF-8 is a violation (``invalid-utf8``) that stops the parser,
  instead of being decoded to U+FFFD;
* lines and events have size limits (``line-too-long``, ``event-too-large``).

It also ignores ``retry`` values above 2**63 - 1 milliseconds, which no server
means and which would otherwise cost a huge integer conversion.

Blocks the rules drop without dispatching are still reported, as
:class:`SSEUndispatched`: a block that names an event but has no ``data`` line
(servers send ``event: end`` that way), and an event the end of the stream cut
off before its blank line. A browser's EventSource never sees either, but the
wire carries them, and a checker must be able to say both things.

Feed it bytes with :meth:`SSEParser.receive_data` and :meth:`SSEParser.receive_eof`,
collect items with :meth:`SSEParser.events_received`. Misbehaving peers never make
it raise: the first violation is recorded and all later input is discarded.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chatcontract.errors import ChatContractError, ConfigError

__all__ = [
    "VIOLATION_CODES",
    "ParserLimits",
    "ParserViolation",
    "SSEComment",
    "SSEEvent",
    "SSEParser",
    "SSEUndispatched",
]

#: Every code :attr:`ParserViolation.code` can take.
VIOLATION_CODES = frozenset({"line-too-long", "event-too-large", "invalid-utf8"})

_BOM = "\ufeff"
_BOM_BYTES = len(_BOM.encode("utf-8"))
_LINE_END = re.compile(r"\r\n|\r|\n")
# The blocks servers actually send, blank line included (LF-only text): one data
# line after optional event and id lines, in either order; a repeated event field
# keeps the last value, as the spec says. Anchored at block starts, so whatever it
# skips over is whole blocks. An id holding NUL (ignored by the spec) is left to
# the general path. Splitting a chunk with it costs well under half of walking
# its lines in Python.
_COMMON_BLOCKS = re.compile(
    r"(?:^|(?<=\n\n))"
    r"(?:event: ?+([^\n]*+)\n|)"
    r"(?:id: ?+([^\n\0]*+)\n|)"
    r"(?:event: ?+([^\n]*+)\n|)"
    r"data: ?+([^\n]*+)\n\n"
)
# A reconnection time above this is meaningless (292 million years) and would let
# a peer make us convert megabyte-long integers, so such values are ignored.
_MAX_RETRY = (1 << 63) - 1
_MAX_RETRY_DIGITS = len(str(_MAX_RETRY))


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    event: str
    """Event type; ``"message"`` when the block had no (or an empty) ``event`` field."""
    data: str
    """The ``data`` lines joined with ``"\\n"``."""
    id: str | None
    """The last event ID buffer at dispatch time (it persists across events); ``None`` if
    no ``id`` field has been seen yet."""
    retry: int | None
    """The reconnection time set by this event's block, if any."""
    has_event_field: bool
    """Whether this block carried an explicit ``event`` field."""
    index: int
    """1-based count of dispatched events."""


@dataclass(frozen=True, slots=True)
class SSEUndispatched:
    """A block the WHATWG rules drop: EventSource never dispatches it, the wire carries it."""

    event: str
    """Its event type; ``"message"`` when it had no (or an empty) ``event`` field."""
    data: str
    """Its complete ``data`` lines joined with ``"\\n"`` (empty for a ``no-data`` block)."""
    id: str | None
    """The last event ID buffer when the block ended."""
    retry: int | None
    has_event_field: bool
    reason: Literal["no-data", "unterminated"]
    """``no-data``: a blank line ended a block with an ``event`` field but no ``data``
    line; ``unterminated``: the stream ended inside a block (no blank line after it)."""


@dataclass(frozen=True, slots=True)
class SSEComment:
    """A comment line (``:`` first); servers send them as heartbeats."""

    text: str


@dataclass(frozen=True, slots=True)
class ParserViolation:
    """Why the parser stopped. ``code`` is one of :data:`VIOLATION_CODES`."""

    code: str
    message: str
    offset: int


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Size limits; they are security limits, so a hostile peer cannot exhaust memory."""

    max_line_bytes: int = 1 << 20
    max_event_bytes: int = 8 << 20

    def __post_init__(self) -> None:
        if self.max_line_bytes < 1 or self.max_event_bytes < 1:
            raise ConfigError(f"parser limits must be positive, got {self!r}")


_DEFAULT_LIMITS = ParserLimits()


class _Draft:
    """A writable twin of :class:`SSEEvent`, slot for slot.

    A frozen dataclass's ``__init__`` pays for ``object.__setattr__`` per field,
    which would be most of the cost of parsing a typical event; plain slot stores
    on a twin and one ``__class__`` switch (allowed because the layouts are
    identical) yield the very same SSEEvent in about a quarter of that time.
    """

    __slots__ = SSEEvent.__slots__


_new_draft: Callable[[type[_Draft]], Any] = object.__new__


def _utf8_len(text: str) -> int:
    # isascii() is O(1) in CPython, so the common case costs no encode.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class SSEParser:
    """Incremental ``text/event-stream`` parser: bytes in, events or a violation out."""

    def __init__(self, limits: ParserLimits = _DEFAULT_LIMITS) -> None:
        self._limits = limits
        # A decoded chunk of at most this many characters cannot break either size
        # limit (a character is at most four bytes) except through an event begun in
        # an earlier chunk, so its complete blocks may take the fast path.
        self._fast_chars = min(limits.max_line_bytes, limits.max_event_bytes) // 4
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._outbox: list[SSEEvent | SSEComment | SSEUndispatched] = []
        self._violation: ParserViolation | None = None
        self._eof = False
        self._bytes_received = 0
        # Stream offset just past the last decoded character; the decoder may hold
        # up to three more bytes of an incomplete character.
        self._consumed = 0
        self._carry = 0
        self._at_start = True
        # The previous chunk ended in CR, so an LF opening the next one belongs to it.
        self._skip_lf = False
        # The incomplete current line, kept as pieces so a line trickled in byte by
        # byte costs linear, not quadratic, time.
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._line_offset = 0
        self._data: list[str] = []
        self._data_bytes = 0
        self._event_type = ""
        self._has_event = False
        self._retry: int | None = None
        self._id_buffer: str | None = None
        self._committed_id: str | None = None
        self._reconnection_time: int | None = None
        self._index = 0

    @property
    def violation(self) -> ParserViolation | None:
        """The first violation; once set, all further input is discarded."""
        return self._violation

    @property
    def last_event_id(self) -> str:
        """The value to send as ``Last-Event-ID`` when reconnecting.

        Like a browser's "last event ID string", it only moves at a blank line, so
        an ``id`` in a block the stream cut off does not count.
        """
        return self._committed_id or ""

    @property
    def reconnection_time(self) -> int | None:
        """The most recent valid ``retry`` value in milliseconds, dispatched or not."""
        return self._reconnection_time

    @property
    def bytes_received(self) -> int:
        """Every byte fed in, including bytes discarded after a violation."""
        return self._bytes_received

    def events_received(self) -> list[SSEEvent | SSEComment | SSEUndispatched]:
        """Return the items parsed since the previous call, in stream order."""
        items, self._outbox = self._outbox, []
        return items

    def receive_data(self, data: bytes) -> None:
        """Feed the next chunk of the body; chunk boundaries may fall anywhere.

        Raises :class:`~chatcontract.errors.ChatContractError` only for a caller bug:
        data after :meth:`receive_eof`.
        """
        if self._eof:
            raise ChatContractError("receive_data() called after receive_eof()")
        self._bytes_received += len(data)
        if self._violation is not None or not data:
            return
        try:
            if self._carry or data[-1] > 0x7F:
                text = self._decoder.decode(data)
                self._carry = len(self._decoder.getstate()[0])
            else:
                # Nothing is held over and the chunk ends in ASCII, so no character
                # straddles a boundary and the plain decode is exact and faster.
                text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._decode_failed(exc)
            return
        self._consumed = self._bytes_received - self._carry
        self._feed(text)

    def receive_eof(self) -> None:
        """Signal the end of the body.

        An unterminated last event is not dispatched, per spec; it is reported as an
        :class:`SSEUndispatched` (``unterminated``) instead.
        """
        if self._eof:
            return
        self._eof = True
        if self._violation is None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                self._decode_failed(exc)
        if self._violation is None:
            self._unterminated()
        self._pending = []
        self._data = []

    def _unterminated(self) -> None:
        """Report the block the end of the stream cut off, partial last line included."""
        data = list(self._data)
        event_type = self._event_type
        has_event = self._has_event
        line = "".join(self._pending)
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if line and not line.startswith(":"):
            if field == "data":
                data.append(value)
            elif field == "event":
                event_type, has_event = value, True
        if data or has_event:
            self._outbox.append(
                SSEUndispatched(
                    event_type or "message",
                    "\n".join(data),
                    self._id_buffer,
                    self._retry,
                    has_event,
                    "unterminated",
                )
            )

    def _decode_failed(self, exc: UnicodeDecodeError) -> None:
        # The spec decodes with replacement characters, but a server sending
        # invalid UTF-8 breaks the text/event-stream contract and a checker must
        # say so; everything before the bad byte is still delivered.
        start = self._consumed
        self._consumed = start + exc.start
        self._feed(exc.object[: exc.start].decode("utf-8"))
        bad = exc.object[exc.start : exc.end].hex(" ")
        self._fail("invalid-utf8", f"invalid UTF-8 ({exc.reason}: {bad})", start + exc.start)

    def _fail(self, code: str, what: str, offset: int) -> None:
        if self._violation is None:
            where = f"at byte offset {offset}, in event {self._index + 1}"
            self._violation = ParserViolation(code, f"{what} {where}", offset)
        self._pending = []
        self._data = []

    def _line_too_long(self, offset: int) -> None:
        self._fail("line-too-long", f"line longer than {self._limits.max_line_bytes} bytes", offset)

    def _feed(self, text: str) -> None:
        if self._at_start:
            if not text:
                return
            self._at_start = False
            if text[0] == _BOM:
                text = text[1:]
                self._line_offset += _BOM_BYTES
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                self._line_offset += 1
        if not text:
            return
        has_cr = "\r" in text
        if has_cr or "\n" in text:
            raw = "".join(self._pending) + text if self._pending else text
            if has_cr or len(raw) > self._fast_chars:
                self._parse_lines(raw, has_cr)
            else:
                self._parse_blocks(raw)
            return
        self._pending.append(text)
        self._pending_bytes += _utf8_len(text)
        if self._pending_bytes > self._limits.max_line_bytes:
            self._line_too_long(self._line_offset)

    def _parse_blocks(self, raw: str) -> None:
        """Parse an LF-only ``raw`` (which starts a line) a whole block at a time.

        Nearly every block a server sends is one ``data`` line, perhaps after an
        ``event`` and an ``id`` line. One regex split of the chunk picks out such
        blocks, which are dispatched without per-line work; :meth:`_parse_lines`
        gets everything else (whole blocks, and the unfinished end), so it sees the
        very same lines and the outcome cannot differ.
        """
        if self._data or self._has_event or self._retry is not None:
            # The previous chunk left a block open: finish it line by line.
            if raw[0] == "\n":
                cut = 1
            else:
                cut = raw.find("\n\n") + 2
                if cut == 1:
                    self._parse_lines(raw, False)
                    return
            self._parse_lines(raw[:cut], False)
            if self._violation is not None:
                return
            raw = raw[cut:]
        parts = _COMMON_BLOCKS.split(raw)
        rest = parts.pop()
        if parts:
            self._dispatch_blocks(parts)
        self._parse_lines(rest, False)

    def _dispatch_blocks(self, parts: list[str | None]) -> None:
        """Dispatch ``(skipped, event, id, event, data)`` runs of a block split."""
        emit = self._outbox.append
        id_buffer = self._id_buffer
        index = self._index
        runs = iter(parts)
        for skipped, first_type, new_id, last_type, data in zip(
            runs, runs, runs, runs, runs, strict=True
        ):
            if skipped:
                self._id_buffer = id_buffer
                self._index = index
                self._parse_lines(skipped, False)
                id_buffer = self._id_buffer
                index = self._index
            if new_id is not None:
                id_buffer = new_id
            event_type = first_type if last_type is None else last_type
            index += 1
            event = _new_draft(_Draft)
            event.event = event_type or "message"
            event.data = data
            event.id = id_buffer
            event.retry = None
            event.has_event_field = event_type is not None
            event.index = index
            event.__class__ = SSEEvent
            emit(event)
        self._id_buffer = self._committed_id = id_buffer
        self._index = index

    def _parse_lines(self, raw: str, has_cr: bool) -> None:
        """Parse every complete line of ``raw`` (which starts a line) and keep the rest."""
        if has_cr:
            self._skip_lf = raw[-1] == "\r"
            # Most servers use CRLF throughout; splitting on it is much cheaper than
            # normalizing, and the counts prove there is no lone CR or LF.
            lines = raw.split("\r\n")
            pairs = len(lines) - 1
            if raw.count("\r") != pairs or raw.count("\n") != pairs:
                lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        else:
            lines = raw.split("\n")
        tail = lines.pop()

        max_line = self._limits.max_line_bytes
        too_long_at = -1
        # A line of n characters is at most 4n bytes, so most chunks need no scan.
        quarter = max_line // 4
        if len(raw) > quarter and len(max(lines, key=len, default="")) > quarter:
            for number, line in enumerate(lines):
                if len(line) > quarter and _utf8_len(line) > max_line:
                    too_long_at = number
                    lines = lines[:number]
                    break

        # The hot loop: parser state lives in locals and is written back once, and
        # the common shapes (blank line, "data: ...") are tested first.
        emit = self._outbox.append
        data = self._data
        data_bytes = self._data_bytes
        event_type = self._event_type
        has_event = self._has_event
        retry = self._retry
        id_buffer = self._id_buffer
        committed_id = self._committed_id
        index = self._index
        # The size of the dispatched data, not the spec's buffer with its extra LF.
        event_cap = self._limits.max_event_bytes + 1
        ascii_text = raw.isascii()
        too_large = False
        remaining = iter(lines)

        for line in remaining:
            if not line:
                committed_id = id_buffer
                if data:
                    index += 1
                    event = _new_draft(_Draft)
                    event.event = event_type or "message"
                    event.data = "\n".join(data)
                    event.id = id_buffer
                    event.retry = retry
                    event.has_event_field = has_event
                    event.index = index
                    event.__class__ = SSEEvent
                    emit(event)
                    data = []
                    data_bytes = 0
                elif has_event:
                    emit(
                        SSEUndispatched(
                            event_type or "message", "", id_buffer, retry, True, "no-data"
                        )
                    )
                event_type = ""
                has_event = False
                retry = None
                continue
            if line.startswith("data: "):
                value = line[6:]
            elif line.startswith("data:"):
                value = line[5:]
            else:
                value = None
            if value is not None:
                data.append(value)
                if ascii_text or value.isascii():
                    data_bytes += len(value) + 1
                else:
                    data_bytes += len(value.encode()) + 1
                if data_bytes > event_cap:
                    too_large = True
                    break
                continue
            colon = line.find(":")
            if colon == 0:
                emit(SSEComment(line[2:] if line.startswith(" ", 1) else line[1:]))
                continue
            if colon < 0:
                field = line
                value = ""
            else:
                field = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if field == "event":
                event_type = value
                has_event = True
            elif field == "id":
                if "\0" not in value:
                    id_buffer = value
            elif field == "data":
                # Only a bare "data" line gets here; "data:..." took the fast path.
                data.append(value)
                data_bytes += 1
                if data_bytes > event_cap:
                    too_large = True
                    break
            elif field == "retry" and value.isascii() and value.isdigit():
                digits = value.lstrip("0") or "0"
                if len(digits) <= _MAX_RETRY_DIGITS:
                    delay = int(digits)
                    if delay <= _MAX_RETRY:
                        retry = self._reconnection_time = delay

        self._data = data
        self._data_bytes = data_bytes
        self._event_type = event_type
        self._has_event = has_event
        self._retry = retry
        self._id_buffer = id_buffer
        self._committed_id = committed_id
        self._index = index
        if too_large:
            number = len(lines) - sum(1 for _ in remaining) - 1
            limit = self._limits.max_event_bytes
            offset = self._offset_of_line(raw, number)
            self._fail("event-too-large", f"event data larger than {limit} bytes", offset)
        elif too_long_at >= 0:
            self._line_too_long(self._offset_of_line(raw, too_long_at))
        elif tail:
            tail_bytes = _utf8_len(tail)
            self._pending = [tail]
            self._pending_bytes = tail_bytes
            self._line_offset = self._consumed - tail_bytes
            if tail_bytes > max_line:
                self._line_too_long(self._line_offset)
        else:
            if self._pending:
                self._pending = []
            self._pending_bytes = 0
            self._line_offset = self._consumed

    def _offset_of_line(self, raw: str, number: int) -> int:
        """Byte offset of line ``number`` of ``raw``, which starts at ``_line_offset``."""
        start = 0
        for count, match in enumerate(_LINE_END.finditer(raw)):
            if count == number:
                break
            start = match.end()
        return self._line_offset + _utf8_len(raw[:start])
