"""Protocol hygiene: bad input gets the declared reaction, and nothing worse.

Each hostile input is followed at once by the contract's probe (the flow
answered by a single frame: ping and pong in the reference API). A server
handles one connection's messages in order, so the probe is a barrier: the
declared reaction (an error frame, or a close) must come before its answer,
and an answer with no reaction before it proves the input was silently
swallowed, without waiting out a timeout. After every hostile input a fresh
connection must still open, so one client's garbage cannot take the endpoint down.

The inputs and the verdicts speak the contract's vocabulary (``target.vocab``
and ``on-invalid-input``): a reaction that names an error code needs an error
frame to recognise it, and without one the row is inconclusive, never passed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chatcontract.report.model import ContractResult, Finding
from chatcontract.spec import Reaction
from chatcontract.ws.client import (
    Closed,
    OpenFailed,
    Received,
    Silence,
    Socket,
    WsTarget,
    open_socket,
    session,
)
from chatcontract.ws.conversation import is_error_frame, ping_frame, until_answer
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.frames import with_value
from chatcontract.ws.handshake import Access, presented_for
from chatcontract.ws.outgoing import fresh_flow_frame
from chatcontract.ws.vocabulary import NO_ERROR_FRAME, NO_PROBE, REFERENCE

__all__ = [
    "HOSTILE_INPUTS",
    "INVALID_UTF8",
    "HostileInput",
    "carrier_frame",
    "hostile_name",
    "hygiene_contracts",
    "invalid_frame",
    "invalid_json",
    "invalid_utf8_frame",
    "oversize_frame",
    "unknown_type_frame",
]

UNKNOWN_TYPE = "chatcontract_unknown_type"
INVALID_UTF8 = b"caf\xc3\x28 \xff"
"""A lead byte with a bad continuation, then a byte UTF-8 never uses."""
_PADDING = "chatcontract_padding"
"""The one key of the generic object used when no flow's frame can carry the input."""
_MARKER = "chatcontract-invalid-utf8-goes-here"

Path = tuple[str, ...]


def _compact(value: Any) -> str:
    # ASCII only (non-ASCII is escaped): the length in characters is the length in bytes.
    return json.dumps(value, separators=(",", ":"))


def _with(frame: dict[str, Any], path: Path, value: str) -> dict[str, Any]:
    frame = copy.deepcopy(frame)
    node = frame
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return frame


def _string_fields(frame: dict[str, Any], discriminator: str) -> Iterator[Path]:
    payload = frame.get("payload")
    if isinstance(payload, dict):
        yield from (("payload", k) for k, v in payload.items() if isinstance(v, str))
    yield from ((k,) for k, v in frame.items() if k != discriminator and isinstance(v, str))


def carrier_frame(target: WsTarget) -> tuple[dict[str, Any], Path] | None:
    """A flow's frame and a string field its client schema allows, or ``None``.

    Oversize and invalid UTF-8 input go into that field, so the input looks like
    a real message (the message flow's first) that only its size or its bytes break.
    """
    key = target.validator.discriminator
    for flow in (target.vocab.message, *target.contract.flows):
        if flow is None:
            continue
        frame = fresh_flow_frame(target.contract, target.validator, flow)
        for path in _string_fields(frame, key):
            if target.validator.check_client(_with(frame, path, "x")).ok:
                return frame, path
    return None


def oversize_frame(target: WsTarget, size: int) -> str:
    """Valid JSON of exactly ``size`` bytes: a flow's frame with a padded string field.

    Without such a frame, a generic JSON object: a server must refuse the
    message by its size before it parses it, so the shape is a courtesy.
    """
    built = carrier_frame(target)
    if built is not None:
        frame, path = built
        empty = _compact(_with(frame, path, ""))
        if len(empty) <= size:
            return _compact(_with(frame, path, "x" * (size - len(empty))))
    empty = _compact({_PADDING: ""})
    return _compact({_PADDING: "x" * max(0, size - len(empty))})


def invalid_utf8_frame(target: WsTarget) -> bytes:
    """A flow's frame whose string field holds :data:`INVALID_UTF8` (else a generic object)."""
    frame, path = carrier_frame(target) or ({_PADDING: ""}, (_PADDING,))
    text = _compact(_with(frame, path, _MARKER)).encode()
    return text.replace(f'"{_MARKER}"'.encode(), b'"' + INVALID_UTF8 + b'"', 1)


def invalid_json(target: WsTarget) -> str:
    """The probe frame cut short: its closing brace is missing."""
    return _compact(ping_frame(target)[0])[:-1]


def unknown_type_frame(target: WsTarget) -> dict[str, Any]:
    """The probe frame with a type the contract does not declare."""
    return with_value(ping_frame(target)[0], target.validator.discriminator, UNKNOWN_TYPE)


def invalid_frame(target: WsTarget) -> dict[str, Any] | None:
    """A frame with a known type that breaks its client schema, or ``None`` if none is found."""
    key = target.validator.discriminator
    for flow in target.contract.flows:
        base = dict(flow.example or with_value({}, key, flow.send))
        candidates: list[dict[str, Any]] = [
            {**base, "payload": "not an object"},
            {**base, "payload": 42},
            {**base, "chatcontract_unexpected": True},
        ]
        for candidate in candidates:
            if not target.validator.check_client(candidate).ok:
                return candidate
    return None


@dataclass(frozen=True, slots=True)
class HostileInput:
    slug: str
    """Also the key of the reaction in ``on_invalid_input``."""
    name: str
    send: Callable[[WsTarget, Socket], Awaitable[str | bytes | None]]
    """Sends the input; returns what was sent (for the repro), ``None`` if it cannot be built."""
    what: str = "the input"
    """The input, for names that depend on the declared reaction."""


def hostile_name(hostile: HostileInput, reaction: Reaction | None) -> str:
    """The row's name, saying what the contract declares for this input."""
    if reaction is not None and reaction.ignored:
        return f"{hostile.what} is ignored and the channel stays usable"
    if reaction is not None and not reaction.declared and reaction.dropped == "forbidden":
        return f"{hostile.what} never drops the connection without a close frame"
    return hostile.name


async def _send_invalid_json(target: WsTarget, sock: Socket) -> str:
    text = invalid_json(target)
    await sock.send_text(text)
    return text


async def _send_unknown_type(target: WsTarget, sock: Socket) -> str:
    text = _compact(unknown_type_frame(target))
    await sock.send_text(text)
    return text


async def _send_schema_mismatch(target: WsTarget, sock: Socket) -> str | None:
    frame = invalid_frame(target)
    if frame is None:
        return None
    text = _compact(frame)
    await sock.send_text(text)
    return text


async def _send_oversize(target: WsTarget, sock: Socket) -> str | None:
    limit = target.contract.limits.max_message_bytes
    if limit is None:
        return None
    text = oversize_frame(target, limit + 1)
    await sock.send_text(text)
    return text


async def _send_invalid_utf8(target: WsTarget, sock: Socket) -> bytes:
    data = invalid_utf8_frame(target)
    await sock.send_bytes_as_text(data)
    return data


HOSTILE_INPUTS: tuple[HostileInput, ...] = (
    HostileInput(
        "invalid-json",
        "invalid JSON gets an error frame and the channel stays usable",
        _send_invalid_json,
        "invalid JSON",
    ),
    HostileInput(
        "unknown-type",
        "unknown message types get an error frame, not an acknowledgement",
        _send_unknown_type,
        "an unknown message type",
    ),
    HostileInput(
        "schema-mismatch",
        "frames that break their schema get an error frame",
        _send_schema_mismatch,
        "a frame that breaks its schema",
    ),
    HostileInput(
        "oversize",
        "oversize messages close the connection as declared",
        _send_oversize,
        "an oversize message",
    ),
    HostileInput(
        "invalid-utf8",
        "invalid UTF-8 in a text frame closes the connection as declared",
        _send_invalid_utf8,
        "invalid UTF-8 in a text frame",
    ),
)


def _error_code(frame: Received) -> Any:
    value = frame.value
    return value.get(REFERENCE.error_code_field) if isinstance(value, dict) else None


def _judge_error(
    target: WsTarget,
    reaction: Reaction,
    frames: list[Received],
    end: Closed | Silence | None,
    answer: str,
) -> list[Finding]:
    want = reaction.error_code
    errors = [f for f in frames if is_error_frame(target, f)]
    findings: list[Finding] = []
    acks = [f for f in frames if f.type is not None and not is_error_frame(target, f)]
    if not errors:
        if acks:
            findings.append(
                Finding(
                    f"answered with {acks[0].type!r} instead of an error frame {want}: "
                    "the bad input was silently accepted",
                    acks[0].label,
                )
            )
        elif end is None:
            findings.append(
                Finding(
                    f"no error frame {want}: the input was ignored "
                    f"(only the next {answer} was answered)",
                    "after input",
                )
            )
    elif _error_code(errors[0]) != want:
        findings.append(
            Finding(
                f"{REFERENCE.error_code_field} {_error_code(errors[0])!r}, "
                f"the contract says {want}",
                errors[0].label,
            )
        )
    if isinstance(end, Closed):
        detail = end.problem or end.describe()
        if end.code == 1011:
            detail = "closed with 1011 (internal error) on client input"
        findings.append(Finding(f"the connection did not stay usable: {detail}", "after input"))
    elif isinstance(end, Silence):
        findings.append(
            Finding(
                f"no {answer} within {end.waited:.1f} s after the input: the connection is stuck",
                "after input",
            )
        )
    return findings


def _judge_close(
    target: WsTarget,
    reaction: Reaction,
    frames: list[Received],
    end: Closed | Silence | None,
    answer: str,
) -> list[Finding]:
    want = reaction.close_code
    errors = [f for f in frames if is_error_frame(target, f)]
    others = [f for f in frames if f.type is not None]
    if end is None:
        if errors:
            return [
                Finding(
                    f"answered with an error frame ({_error_code(errors[0])}) "
                    f"instead of closing with {want}",
                    errors[0].label,
                )
            ]
        if others:
            return [
                Finding(
                    f"answered with {others[0].type!r} instead of closing with {want}",
                    others[0].label,
                )
            ]
        return [
            Finding(
                f"silently dropped: no close {want}, "
                "and the connection still answers the next ping",
                "after input",
            )
        ]
    if isinstance(end, Silence):
        return [
            Finding(f"no close {want} and no {answer} within {end.waited:.1f} s", "after input")
        ]
    if end.by == "server" and end.code == want:
        return [Finding(end.problem, "close frame")] if end.problem else []
    if end.by == "nobody" and reaction.dropped == "allowed":
        return []
    detail = end.problem or end.describe()
    if end.code == 1011 and end.by == "server":
        detail = "closed with 1011 (internal error) on client input"
    return [Finding(f"expected close {want}, got: {detail}", "close frame")]


def _stuck(end: Closed | Silence | None, answer: str) -> list[Finding]:
    if isinstance(end, Closed):
        detail = end.problem or end.describe()
        if end.code == 1011:
            detail = "closed with 1011 (internal error) on client input"
        return [Finding(f"the connection did not stay usable: {detail}", "after input")]
    if isinstance(end, Silence):
        return [
            Finding(
                f"no {answer} within {end.waited:.1f} s after the input: the connection is stuck",
                "after input",
            )
        ]
    return []


def _judge_ignored(
    target: WsTarget,
    reaction: Reaction,
    frames: list[Received],
    end: Closed | Silence | None,
    answer: str,
) -> list[Finding]:
    """``ignored``: nothing answers the input, and the probe after it is answered."""
    answered = [f for f in frames if f.type is not None or f.value is not None]
    findings = (
        [
            Finding(
                f"answered with {answered[0].type or 'a frame'!r}; the contract says this input "
                "is ignored",
                answered[0].label,
            )
        ]
        if answered
        else []
    )
    return findings + _stuck(end, answer)


def _judge_not_dropped(
    target: WsTarget,
    reaction: Reaction,
    frames: list[Received],
    end: Closed | Silence | None,
    answer: str,
) -> list[Finding]:
    """``dropped: forbidden`` alone: any reaction but ending the connection without a close."""
    if isinstance(end, Closed) and end.by == "nobody":
        return [
            Finding(
                "the server dropped the connection without a close frame; the contract forbids it",
                "after input",
            )
        ]
    return _stuck(end, answer) if isinstance(end, Silence) else []


def _judge_for(reaction: Reaction) -> Callable[..., list[Finding]]:
    if reaction.error_code is not None:
        return _judge_error
    if reaction.close_code is not None:
        return _judge_close
    return _judge_ignored if reaction.ignored else _judge_not_dropped


async def _hostile_row(target: WsTarget, access: Access, hostile: HostileInput) -> ContractResult:
    clock = Clock()
    suffix = f"hygiene/{hostile.slug}"
    reaction = target.contract.on_invalid_input.get(hostile.slug)
    name = hostile_name(hostile, reaction)
    if reaction is None or (not reaction.declared and reaction.dropped == "allowed"):
        return skipped(target, suffix, name, f"the contract declares no reaction to {hostile.slug}")
    if target.vocab.probe is None:
        return inconclusive(target, suffix, name, NO_PROBE, clock)
    if reaction.error_code is not None and target.vocab.error_type is None:
        return inconclusive(target, suffix, name, NO_ERROR_FRAME, clock)
    # The probe is the barrier: an endpoint that stopped answering would not answer it.
    unusable = access.unusable or target.stalls.blocks()
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    transcript = target.transcript()
    presented = await presented_for(target, access)
    ping, answer = ping_frame(target)
    findings: list[Finding] = []
    sent: str | bytes | None = None
    try:
        async with session(target, presented, transcript) as sock:
            sent = await hostile.send(target, sock)
            if sent is None:
                return skipped(
                    target,
                    suffix,
                    name,
                    f"no {hostile.slug} input can be built from the contract",
                )
            await sock.send_frame(ping)
            frames, end = await until_answer(target, sock, answer, sent=ping)
            findings += _judge_for(reaction)(target, reaction, frames, end, answer)
            findings += sock.findings
    except OpenFailed as exc:
        return inconclusive(
            target,
            suffix,
            name,
            f"a valid connection could not be opened: {exc.message}",
            clock,
            transcript=transcript,
        )
    transcript.note("a fresh connection must still open")
    try:
        fresh = await open_socket(target, presented, transcript)
    except OpenFailed as exc:
        findings.append(
            Finding(
                f"after the {hostile.slug} input, a fresh connection failed: {exc.message}",
                "fresh connection",
            )
        )
    else:
        await fresh.close()
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented, send=[sent[:300] if sent else "", ping]),
    )


async def hygiene_contracts(target: WsTarget, access: Access) -> list[ContractResult]:
    return [await _hostile_row(target, access, hostile) for hostile in HOSTILE_INPUTS]
