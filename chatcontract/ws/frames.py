"""Frame schemas both ways, close-code rules and the frame transcript (pure: no I/O).

Every frame the server sends is judged against ``server_schemas`` picked by
the contract's discriminator; every frame we send is first checked against
``client_schemas``, so a failure is never our own malformed input.
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import orjson

from chatcontract.report.model import Finding, TranscriptEntry
from chatcontract.schemas import Validator, compile_schema
from chatcontract.sequence import lookup_pointer, message_type
from chatcontract.spec import Flow, WebSocketContract
from chatcontract.spec.streams import pointer_tokens, schemas_at

__all__ = [
    "MAX_ENTRIES",
    "MAX_SHOWN",
    "FrameCheck",
    "FrameLog",
    "FrameValidator",
    "Scope",
    "Transcript",
    "close_code_problem",
    "describe_close",
    "fresh",
    "render",
    "scope_of",
    "with_value",
    "without",
]

MAX_SHOWN = 600
"""Characters of one frame kept in a transcript: evidence, not an archive."""
MAX_ENTRIES = 200
"""Transcript lines kept per exchange; a flood keeps its head and its tail."""

# RFC 6455 §7.4.1 reserves these for endpoints to report locally; they must never
# appear in a close frame on the wire.
_NEVER_ON_THE_WIRE = {1005: "no status", 1006: "abnormal closure", 1015: "TLS failure"}
_DEFINED = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


def close_code_problem(code: int) -> str | None:
    """Why ``code`` is illegal in a close frame sent by a server, or ``None``."""
    if code in _NEVER_ON_THE_WIRE:
        return f"close code {code} ({_NEVER_ON_THE_WIRE[code]}) must never be sent in a close frame"
    if code == 1010:
        return "close code 1010 (mandatory extension) is for clients only"
    if code in _DEFINED or 3000 <= code <= 4999:
        return None
    return f"close code {code} is reserved or unassigned (RFC 6455 §7.4)"


def describe_close(code: int | None, reason: str = "") -> str:
    if code is None:
        return "no close frame (the TCP connection just ended)"
    return f"close {code}" + (f' "{reason}"' if reason else "")


def render(data: str | bytes, limit: int = MAX_SHOWN) -> str:
    """A frame as transcript text: UTF-8 when it is, escaped bytes otherwise, cut at ``limit``."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = repr(data[:limit])
        size = len(data)
    else:
        text = data
        size = len(data.encode("utf-8", "surrogatepass"))
    if len(text) > limit:
        return f"{text[:limit]}… ({size} bytes)"
    return text


class Transcript:
    """Frames sent and received, with offsets from the first entry, secrets redacted.

    Redaction happens on the way in, so a token can never sit in memory in a
    place a reporter might later read without passing the redactor.
    """

    def __init__(
        self,
        redact: Callable[[str], str],
        *,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_ENTRIES,
    ) -> None:
        self._redact = redact
        self._clock = clock
        self._start = clock()
        self._limit = limit
        self._head: list[TranscriptEntry] = []
        self._tail: list[TranscriptEntry] = []
        self._dropped = 0

    def _add(self, direction: Literal["sent", "received", "note"], content: str) -> None:
        entry = TranscriptEntry(
            direction, round(self._clock() - self._start, 4), self._redact(content)
        )
        if len(self._head) < self._limit // 2:
            self._head.append(entry)
            return
        self._tail.append(entry)
        if len(self._tail) > self._limit - self._limit // 2:
            self._tail.pop(0)
            self._dropped += 1

    def sent(self, data: str | bytes) -> None:
        self._add("sent", render(data))

    def received(self, data: str | bytes) -> None:
        self._add("received", render(data))

    def note(self, text: str) -> None:
        self._add("note", text)

    def elapsed(self) -> float:
        return self._clock() - self._start

    def entries(self) -> tuple[TranscriptEntry, ...]:
        if not self._dropped:
            return (*self._head, *self._tail)
        gap = TranscriptEntry(
            "note",
            self._tail[0].offset if self._tail else 0.0,
            f"… {self._dropped} entries left out …",
        )
        return (*self._head, gap, *self._tail)


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """The verdict on one frame: its type (when it has one) and what is wrong with it."""

    type: str | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class FrameValidator:
    """Compiled client and server frame schemas of one WebSocket contract."""

    def __init__(self, contract: WebSocketContract) -> None:
        self.discriminator = contract.discriminator
        self.unique = contract.unique
        """Pointers :func:`fresh` renews on every send."""
        self.client_schemas = contract.client_schemas
        self.reactions = contract.on_invalid_input
        self.handshake_types = frozenset(
            c.type for c in contract.carriers if c.kind == "message" and c.type
        )
        """Client types that carry the token: part of the handshake, never fuzzed."""
        self._server = {t: compile_schema(s) for t, s in contract.server_schemas.items()}
        self.judges_server = contract.messages_declared
        """``False`` for a WebSocket the spec gives no messages (a plain ``101``)."""
        self._client = {t: compile_schema(s) for t, s in contract.client_schemas.items()}

    @property
    def client_types(self) -> tuple[str, ...]:
        return tuple(self._client)

    @property
    def server_types(self) -> tuple[str, ...]:
        return tuple(self._server)

    def kind_of(self, value: Any) -> str | None:
        """A frame's type: at a top-level property or a JSON pointer (``/header/msg_type``)."""
        return message_type(value, self.discriminator)

    @property
    def _at(self) -> str:
        disc = self.discriminator
        return disc if disc.startswith("/") else f"/{disc}"

    def _check(self, value: Any, schemas: Mapping[str, Validator], side: str) -> FrameCheck:
        if not isinstance(value, dict):
            return FrameCheck(None, (f"/: a frame must be a JSON object, got {_json_type(value)}",))
        kind = self.kind_of(value)
        if kind is None:
            return FrameCheck(None, (f"{self._at}: missing or not a string",))
        validator = schemas.get(kind)
        if validator is None:
            known = ", ".join(sorted(schemas))
            return FrameCheck(
                kind,
                (f"{self._at}: {kind!r} is not a {side} frame type of the contract ({known})",),
            )
        return FrameCheck(kind, tuple(e.line() for e in validator.errors(value)))

    def check_server(self, value: Any) -> FrameCheck:
        return self._check(value, self._server, "server")

    def check_client(self, value: Any) -> FrameCheck:
        return self._check(value, self._client, "client")

    def check_server_text(self, text: str) -> tuple[Any, FrameCheck]:
        """Decode and judge one text frame; a non-JSON frame is a problem, not an error.

        orjson bounds nesting depth and rejects NaN, Infinity and integers beyond
        64 bits, so a hostile frame costs a finding, never a crash or a stall.
        """
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return None, FrameCheck(None, (f"/: not JSON ({exc.msg} at position {exc.pos})",))
        except (ValueError, RecursionError) as exc:
            return None, FrameCheck(None, (f"/: not JSON ({type(exc).__name__})",))
        return value, self.check_server(value)


def with_value(frame: Mapping[str, Any], where: str, value: Any) -> dict[str, Any]:
    """A copy of ``frame`` with ``value`` at ``where`` (a property name or a JSON pointer),
    making the objects on the way when they are missing."""
    out = copy.deepcopy(dict(frame))
    if not where.startswith("/"):
        out[where] = value
        return out
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in where[1:].split("/")]
    node: Any = out
    for token in tokens[:-1]:
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
            continue
        if not isinstance(node, dict):
            return out
        if not isinstance(node.get(token), dict | list):
            node[token] = {}
        node = node[token]
    if isinstance(node, dict):
        node[tokens[-1]] = value
    elif isinstance(node, list) and tokens[-1].isdigit() and int(tokens[-1]) < len(node):
        node[int(tokens[-1])] = value
    return out


def without(frame: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``frame`` without what is at ``where`` (a property name or a JSON pointer)."""
    out = copy.deepcopy(dict(frame))
    tokens = (
        [t.replace("~1", "/").replace("~0", "~") for t in where[1:].split("/")]
        if where.startswith("/")
        else [where]
    )
    node: Any = out
    for token in tokens[:-1]:
        node = node.get(token) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(tokens[-1], None)
    return out


_SENDS: Final = itertools.count(1)
"""One counter for the process: two sends never share a timestamp or a number."""


def _candidates(subschemas: list[Any], send: int) -> Iterator[Any]:
    stamp = datetime.now(UTC) + timedelta(microseconds=send)
    unique = uuid.uuid4()
    kinds = {s.get("type") for s in subschemas if isinstance(s, dict)}
    formats = {s.get("format") for s in subschemas if isinstance(s, dict)}
    if kinds & {"integer", "number"}:
        yield int(stamp.timestamp() * 1000) * 1000 + send % 1000
    if "date-time" in formats:
        yield stamp.isoformat().replace("+00:00", "Z")
    if "uuid" in formats:
        yield str(unique)
    yield f"chatcontract-{unique.hex[:20]}"
    yield str(unique)
    yield unique.hex
    yield stamp.isoformat().replace("+00:00", "Z")


def fresh(validator: FrameValidator, frame: Any) -> Any:
    """``frame`` with a new value at each ``unique`` pointer (``messages.unique``).

    Each value is the first candidate (a number, a timestamp, a UUID, a tagged id)
    with which the frame still matches its client schema; a pointer no candidate
    fits, and a frame that is no object, are left as they were.
    """
    if not validator.unique or not isinstance(frame, dict):
        return frame
    out = copy.deepcopy(frame)
    schema = validator.client_schemas.get(validator.kind_of(out) or "")
    send = next(_SENDS)
    for pointer in validator.unique:
        subschemas = schemas_at({}, schema, pointer_tokens(pointer)) if schema else []
        for candidate in _candidates(subschemas, send) if subschemas else ():
            changed = with_value(out, pointer, candidate)
            if validator.check_client(changed).ok:
                out = changed
                break
    return out


Scope = Literal["expected", "other-channel", "unsolicited"]
_ABSENT: Any = object()


def scope_of(flow: Flow, sent: Mapping[str, Any], value: Any) -> Scope:
    """Where a received frame stands for a flow that sent ``sent``.

    ``unsolicited``: the flow correlates, and the frame answers something else (or
    nothing); ``other-channel``: it answers, on another channel than the flow's;
    ``expected``: the flow's first and sequence rules judge it.
    """
    if flow.correlate is not None:
        want = lookup_pointer(sent, flow.correlate.sent, _ABSENT)
        got = lookup_pointer(value, flow.correlate.received, _ABSENT)
        if got is _ABSENT or want is _ABSENT or got != want:
            return "unsolicited"
    channel = flow.channel
    if channel is not None and lookup_pointer(value, channel.pointer, _ABSENT) != channel.value:
        return "other-channel"
    return "expected"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


@dataclass(slots=True)
class FrameLog:
    """Every server frame judged during one run, for the run-wide schema contract."""

    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    _seen: set[tuple[str | None, str]] = field(default_factory=set)
    limit: int = 25

    def record(self, check: FrameCheck, finding: Finding | None) -> None:
        self.counts[check.type or "(untyped)"] += 1
        if finding is None:
            return
        # One finding per (type, problem) keeps a drifting field from drowning the report.
        key = (check.type, check.problems[0] if check.problems else "")
        if key in self._seen or len(self.findings) >= self.limit:
            return
        self._seen.add(key)
        self.findings.append(finding)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
