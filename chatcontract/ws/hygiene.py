"""Protocol hygiene: bad input gets the declared reaction, and nothing worse.

Each hostile input is followed at once by a ping. A server handles one
connection's messages in order, so the ping is a barrier: the declared
reaction (an error frame, or a close) must come before the pong, and a pong
with no reaction before it proves the input was silently swallowed, without
waiting out a timeout. After every hostile input a fresh connection must still
open, so one client's garbage cannot take the endpoint down.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
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
from chatcontract.ws.conversation import ERROR_TYPE, ping_frame, until_answer
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.handshake import Access, primary_presented

__all__ = [
    "HOSTILE_INPUTS",
    "HostileInput",
    "hygiene_contracts",
    "invalid_frame",
    "oversize_frame",
]

UNKNOWN_TYPE = "chatcontract_unknown_type"
INVALID_UTF8 = b'{"type":"user_message","payload":{"content":"caf\xc3\x28 \xff"}}'
INVALID_JSON = '{"type": "ping", "payload": {'


def oversize_frame(target: WsTarget, size: int) -> str:
    """Valid JSON of exactly ``size`` bytes, shaped like a (too) long chat message."""
    key = target.validator.discriminator
    kind = "user_message" if "user_message" in target.validator.client_types else "ping"
    empty = json.dumps({key: kind, "payload": {"content": ""}}, separators=(",", ":"))
    return json.dumps(
        {key: kind, "payload": {"content": "x" * max(0, size - len(empty))}}, separators=(",", ":")
    )


def invalid_frame(target: WsTarget) -> dict[str, Any] | None:
    """A frame with a known type that breaks its client schema, or ``None`` if none is found."""
    key = target.validator.discriminator
    for flow in target.contract.flows:
        base = dict(flow.example or {key: flow.send})
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


async def _send_invalid_json(target: WsTarget, sock: Socket) -> str:
    await sock.send_text(INVALID_JSON)
    return INVALID_JSON


async def _send_unknown_type(target: WsTarget, sock: Socket) -> str:
    frame = json.dumps({target.validator.discriminator: UNKNOWN_TYPE, "payload": {}})
    await sock.send_text(frame)
    return frame


async def _send_schema_mismatch(target: WsTarget, sock: Socket) -> str | None:
    frame = invalid_frame(target)
    if frame is None:
        return None
    text = json.dumps(frame, separators=(",", ":"))
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
    await sock.send_bytes_as_text(INVALID_UTF8)
    return INVALID_UTF8


HOSTILE_INPUTS: tuple[HostileInput, ...] = (
    HostileInput(
        "invalid-json",
        "invalid JSON gets an error frame and the channel stays usable",
        _send_invalid_json,
    ),
    HostileInput(
        "unknown-type",
        "unknown message types get an error frame, not an acknowledgement",
        _send_unknown_type,
    ),
    HostileInput(
        "schema-mismatch",
        "frames that break their schema get an error frame",
        _send_schema_mismatch,
    ),
    HostileInput("oversize", "oversize messages close the connection as declared", _send_oversize),
    HostileInput(
        "invalid-utf8",
        "invalid UTF-8 in a text frame closes the connection as declared",
        _send_invalid_utf8,
    ),
)


def _error_code(frame: Received) -> Any:
    return frame.value.get("error_code") if isinstance(frame.value, dict) else None


def _judge_error(
    reaction: Reaction, frames: list[Received], end: Closed | Silence | None, answer: str
) -> list[Finding]:
    want = reaction.error_code
    errors = [f for f in frames if f.type == ERROR_TYPE]
    findings: list[Finding] = []
    acks = [f for f in frames if f.type not in (ERROR_TYPE, None)]
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
                f"error_code {_error_code(errors[0])!r}, the contract says {want}", errors[0].label
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
    reaction: Reaction, frames: list[Received], end: Closed | Silence | None, answer: str
) -> list[Finding]:
    want = reaction.close_code
    errors = [f for f in frames if f.type == ERROR_TYPE]
    if end is None:
        if errors:
            return [
                Finding(
                    f"answered with an error frame ({_error_code(errors[0])}) "
                    f"instead of closing with {want}",
                    errors[0].label,
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
    detail = end.problem or end.describe()
    if end.code == 1011 and end.by == "server":
        detail = "closed with 1011 (internal error) on client input"
    return [Finding(f"expected close {want}, got: {detail}", "close frame")]


async def _hostile_row(target: WsTarget, access: Access, hostile: HostileInput) -> ContractResult:
    clock = Clock()
    suffix = f"hygiene/{hostile.slug}"
    reaction = target.contract.on_invalid_input.get(hostile.slug)
    if reaction is None or (reaction.error_code is None and reaction.close_code is None):
        return skipped(
            target, suffix, hostile.name, f"the contract declares no reaction to {hostile.slug}"
        )
    if access.blocked is not None or access.primary is None:
        return inconclusive(
            target, suffix, hostile.name, access.blocked or "no working carrier", clock
        )
    transcript = target.transcript()
    presented = primary_presented(target, access, await target.token())
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
                    hostile.name,
                    f"no {hostile.slug} input can be built from the contract",
                )
            await sock.send_frame(ping)
            frames, end = await until_answer(target, sock, answer)
            judge = _judge_error if reaction.error_code is not None else _judge_close
            findings += judge(reaction, frames, end, answer)
            findings += sock.findings
    except OpenFailed as exc:
        return inconclusive(
            target,
            suffix,
            hostile.name,
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
    shown = sent.decode("utf-8", "backslashreplace") if isinstance(sent, bytes) else sent
    return judged(
        target,
        suffix,
        hostile.name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented, send=[shown[:300] if shown else "", ping]),
    )


async def hygiene_contracts(target: WsTarget, access: Access) -> list[ContractResult]:
    return [await _hostile_row(target, access, hostile) for hostile in HOSTILE_INPUTS]
