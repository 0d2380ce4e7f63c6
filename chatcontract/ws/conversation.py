"""Conversations: each declared flow, fed to the same sequence engine as the SSE checker.

A flow sends one client frame and follows the server's answer under three
deadlines (first frame, idle gap, total). Heartbeat pings are answered on the
way. Agent events go to :class:`SequenceChecker` with the sent frame as the
request, so a run that reports another thread than the one asked for breaks
the ``correlation`` rule exactly as it would on SSE.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from chatcontract.report.model import ContractResult, Finding
from chatcontract.sequence import SequenceChecker, SequenceViolation
from chatcontract.spec import Flow, SequenceContract
from chatcontract.ws.client import (
    Closed,
    OpenFailed,
    Received,
    Silence,
    Socket,
    WsTarget,
    present,
    session,
)
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.frames import Transcript
from chatcontract.ws.handshake import Access, allowed_origin

__all__ = [
    "ERROR_TYPE",
    "FlowOutcome",
    "flow_name",
    "follow",
    "heartbeat_contract",
    "is_error",
    "ping_frame",
    "ping_pong",
    "run_flow",
    "thread_for",
    "until_answer",
    "violation_finding",
    "welcome_contract",
]

ERROR_TYPE = "error"
"""The server frame type that carries ``error_code`` (the contract's ErrorFrame)."""
_THREAD_TITLE = "chatcontract websocket check"


def violation_finding(violation: SequenceViolation) -> Finding:
    where = f"frame #{violation.index}" if violation.index else "end of the run"
    if violation.event_type:
        where += f" ({violation.event_type})"
    return Finding(f"{violation.contract} {violation.rule}: {violation.message}", where)


def flow_name(flow: Flow) -> str:
    parts = []
    if flow.expect_first:
        parts.append(flow.expect_first)
    if flow.expect_sequence:
        parts.append(f"a complete {flow.expect_sequence}")
    return f"{flow.send} gets " + (", then ".join(parts) or "an answer")


@dataclass(slots=True)
class FlowOutcome:
    findings: list[Finding] = field(default_factory=list)
    frames: list[Received] = field(default_factory=list)
    checker: SequenceChecker | None = None
    request: dict[str, Any] = field(default_factory=dict)


def _error_text(frame: Received) -> str:
    value = frame.value if isinstance(frame.value, dict) else {}
    return f"{value.get('error_code')}: {value.get('message')}"


async def follow(
    target: WsTarget,
    sock: Socket,
    request: Mapping[str, Any],
    *,
    expect_first: str | None,
    sequence: SequenceContract | None,
) -> FlowOutcome:
    """Read the answer to ``request`` (already sent) until it is complete or a deadline passes."""
    deadlines = target.deadlines
    loop = asyncio.get_running_loop()
    start = loop.time()
    total_at = start + deadlines.total
    last: float | None = None
    outcome = FlowOutcome(request=dict(request))
    got_first = expect_first is None
    kind = target.validator.kind_of(request)
    if got_first and sequence is not None:
        outcome.checker = SequenceChecker(sequence, outcome.request)
    while True:
        limit = start + deadlines.first_frame if last is None else last + deadlines.idle
        seen = await sock.receive(min(limit, total_at))
        if isinstance(seen, Silence):
            if last is None:
                what = f"no frame within {deadlines.first_frame:g} s (first-frame deadline)"
            elif loop.time() >= total_at:
                what = f"the answer did not complete within {deadlines.total:g} s (total deadline)"
            else:
                what = f"no frame for {deadlines.idle:g} s (idle deadline)"
            outcome.findings.append(
                Finding(f"{what} after sending {kind}", f"after frame #{sock.index}")
            )
            break
        if isinstance(seen, Closed):
            detail = seen.problem or seen.describe()
            if seen.code == 1011:
                detail = f"closed with 1011 (internal error) in answer to a valid {kind} frame"
            outcome.findings.append(
                Finding(
                    f"the connection ended mid-conversation: {detail}", f"after frame #{sock.index}"
                )
            )
            break
        last = loop.time()
        outcome.frames.append(seen)
        if not got_first:
            if seen.type == expect_first:
                got_first = True
                value = seen.value if isinstance(seen.value, dict) else {}
                # The ack names the thread the server chose; the run's events must carry it.
                if "thread_id" not in outcome.request and isinstance(value.get("thread_id"), str):
                    outcome.request["thread_id"] = value["thread_id"]
                if sequence is None:
                    break
                outcome.checker = SequenceChecker(sequence, outcome.request)
                continue
            shown = f" ({_error_text(seen)})" if seen.type == ERROR_TYPE else ""
            outcome.findings.append(
                Finding(f"expected {expect_first} first, got {seen.type!r}{shown}", seen.label)
            )
            break
        checker = outcome.checker
        if checker is None:
            break
        if seen.type == ERROR_TYPE:
            outcome.findings.append(
                Finding(
                    f"an error frame in the middle of a {sequence.name if sequence else 'run'}: "
                    + _error_text(seen),
                    seen.label,
                )
            )
            break
        if seen.type is not None and isinstance(seen.value, dict):
            checker.feed(seen.type, seen.value, seen.index)
        if checker.terminated:
            break
    if outcome.checker is not None:
        outcome.checker.finish()
        outcome.findings.extend(violation_finding(v) for v in outcome.checker.violations)
    return outcome


async def _rest_thread(target: WsTarget, token: str, transcript: Transcript) -> str | None:
    spec = target.ctx.spec
    try:
        spec.operation("POST /api/threads")
    except KeyError:
        return None
    settings = target.ctx.settings
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(
                target.ctx.url("/api/threads"),
                json={"title": _THREAD_TITLE},
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        transcript.note(f"POST /api/threads failed: {type(exc).__name__}")
        return None
    body: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
    thread = body.get("id") if isinstance(body, dict) else None
    transcript.note(f"POST /api/threads -> HTTP {response.status_code} {thread or ''}".strip())
    return thread if response.is_success and isinstance(thread, str) else None


async def thread_for(target: WsTarget, sock: Socket, token: str) -> str | None:
    """A thread owned by the socket's user: over REST, else from a user_message's ack."""
    thread = await _rest_thread(target, token, sock.transcript)
    if thread is not None:
        return thread
    send = "user_message"
    if send not in target.validator.client_types:
        return None
    frame = {
        target.validator.discriminator: send,
        "payload": {"content": "chatcontract: open a thread"},
    }
    await sock.send_frame(frame)
    flow = next((f for f in target.contract.flows if f.send == send), None)
    sequence = (
        target.ctx.spec.sequences.get(flow.expect_sequence)
        if flow and flow.expect_sequence
        else None
    )
    # Follow the run the message starts to its end, so it cannot spill into the flow under test.
    outcome = await follow(target, sock, frame, expect_first="message_ack", sequence=sequence)
    found = outcome.request.get("thread_id")
    return found if isinstance(found, str) else None


def _flow_frame(target: WsTarget, flow: Flow) -> dict[str, Any]:
    if flow.example is not None:
        return copy.deepcopy(dict(flow.example))
    return {target.validator.discriminator: flow.send}


async def run_flow(target: WsTarget, access: Access, flow: Flow) -> ContractResult:
    clock = Clock()
    suffix, name = f"flow:{flow.name}", flow_name(flow)
    if access.blocked is not None or access.primary is None:
        return inconclusive(target, suffix, name, access.blocked or "no working carrier", clock)
    sequence = None
    if flow.expect_sequence is not None:
        sequence = target.ctx.spec.sequences.get(flow.expect_sequence)
        if sequence is None:
            return inconclusive(
                target, suffix, name, f"the spec has no sequence {flow.expect_sequence!r}", clock
            )
    transcript = target.transcript()
    token = await target.token()
    presented = present(target.url, access.primary, token, origin=allowed_origin(target))
    frame = _flow_frame(target, flow)
    findings: list[Finding] = []
    try:
        async with session(target, presented, transcript) as sock:
            if flow.needs_thread:
                thread = await thread_for(target, sock, token)
                if thread is None:
                    return inconclusive(
                        target,
                        suffix,
                        name,
                        "no thread to use: POST /api/threads failed and no user_message "
                        "ack named one",
                        clock,
                        transcript=transcript,
                    )
                frame["thread_id"] = thread
            check = target.validator.check_client(frame)
            if not check.ok:
                return inconclusive(
                    target,
                    suffix,
                    name,
                    f"the spec's example for flow {flow.name} does not match its client schema: "
                    + "; ".join(check.problems),
                    clock,
                )
            await sock.send_frame(frame)
            outcome = await follow(
                target, sock, frame, expect_first=flow.expect_first, sequence=sequence
            )
            findings += outcome.findings
            findings += sock.findings
    except OpenFailed as exc:
        findings.append(
            Finding(f"a valid connection could not be opened: {exc.message}", "handshake")
        )
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented, send=[frame]),
    )


def ping_frame(target: WsTarget) -> tuple[dict[str, Any], str]:
    for flow in target.contract.flows:
        if flow.send == "ping" and flow.expect_first:
            return _flow_frame(target, flow), flow.expect_first
    return {target.validator.discriminator: "ping"}, "pong"


async def ping_pong(target: WsTarget, sock: Socket) -> str | None:
    """Whether the connection still answers a ping; ``None`` when it does, else why not."""
    frame, answer = ping_frame(target)
    await sock.send_frame(frame)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    while True:
        seen = await sock.receive(deadline)
        if isinstance(seen, Silence):
            return f"no {answer} within {target.deadlines.first_frame:g} s"
        if isinstance(seen, Closed):
            return f"the connection ended: {seen.problem or seen.describe()}"
        if seen.type == answer:
            return None


async def until_answer(
    target: WsTarget, sock: Socket, answer: str, *, throttled: str | None = None
) -> tuple[list[Received], Closed | Silence | None]:
    """Frames until one of type ``answer`` (then ``None``), a close, or silence.

    After a ping sent as a barrier, this collects the server's answer to what
    was sent before it, without waiting out a timeout. An error frame with the
    ``throttled`` code also answers (it is how a rate-limited server answers
    anything) and is returned as the last frame.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    frames: list[Received] = []
    while True:
        seen = await sock.receive(deadline)
        if not isinstance(seen, Received):
            return frames, seen
        if seen.type == answer:
            return frames, None
        frames.append(seen)
        if throttled is not None and is_error(seen, throttled):
            return frames, None


def is_error(frame: Received, code: str) -> bool:
    value = frame.value
    return frame.type == ERROR_TYPE and isinstance(value, dict) and value.get("error_code") == code


async def welcome_contract(target: WsTarget, access: Access) -> ContractResult:
    """The first frame is the welcome, it matches its schema and agrees with the contract."""
    clock = Clock()
    contract = target.contract
    suffix = "frames/welcome"
    name = f"the first frame is a valid {contract.welcome_type or 'welcome'} frame"
    if access.blocked is not None or access.primary is None:
        return inconclusive(target, suffix, name, access.blocked or "no working carrier", clock)
    transcript = target.transcript()
    presented = present(
        target.url, access.primary, await target.token(), origin=allowed_origin(target)
    )
    findings: list[Finding] = []
    try:
        async with session(target, presented, transcript) as sock:
            findings += sock.findings
            welcome = sock.welcome or {}
            limit = contract.limits.max_message_bytes
            if limit is not None and welcome.get("max_message_size") not in (None, limit):
                findings.append(
                    Finding(
                        f"announces max_message_size {welcome.get('max_message_size')}, "
                        f"the contract says {limit}",
                        "frame #1",
                        severity="warning",
                    )
                )
            interval = contract.heartbeat_interval
            if interval is not None and welcome.get("heartbeat_interval") not in (None, interval):
                findings.append(
                    Finding(
                        f"announces heartbeat_interval {welcome.get('heartbeat_interval')}, "
                        f"the contract says {interval:g}",
                        "frame #1",
                        severity="warning",
                    )
                )
    except OpenFailed as exc:
        findings.append(Finding(exc.message, "frame #1"))
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )


async def heartbeat_contract(target: WsTarget, access: Access) -> ContractResult:
    """Server pings arrive at the announced interval and our pongs keep the channel open."""
    clock = Clock()
    contract = target.contract
    suffix, name = "heartbeat", "the server sends heartbeat pings and the channel survives them"
    if contract.heartbeat_ping is None:
        return inconclusive(target, suffix, name, "the contract declares no heartbeat", clock)
    if access.blocked is not None or access.primary is None:
        return inconclusive(target, suffix, name, access.blocked or "no working carrier", clock)
    transcript = target.transcript()
    presented = present(
        target.url, access.primary, await target.token(), origin=allowed_origin(target)
    )
    findings: list[Finding] = []
    try:
        async with session(target, presented, transcript) as sock:
            announced = (sock.welcome or {}).get("heartbeat_interval")
            interval = (
                float(announced)
                if isinstance(announced, int | float)
                else contract.heartbeat_interval
            )
            budget = target.deadlines.idle
            if interval is None or interval * 1.25 + 0.25 > budget:
                return skipped(
                    target,
                    suffix,
                    name,
                    f"a heartbeat every {interval} s is longer than this run waits "
                    f"({budget:g} s idle deadline)",
                )
            loop = asyncio.get_running_loop()
            window = interval * 1.25 + 0.25
            deadline = loop.time() + window
            seen = await sock.receive(deadline)
            while isinstance(seen, Received):
                seen = await sock.receive(deadline)
            if isinstance(seen, Closed):
                findings.append(
                    Finding(
                        f"the connection ended while idle: {seen.problem or seen.describe()}",
                        "idle",
                    )
                )
            elif sock.heartbeats == 0:
                findings.append(
                    Finding(
                        f"no {contract.heartbeat_ping} within {window:g} s "
                        f"(announced every {interval:g} s)",
                        "idle",
                    )
                )
            else:
                problem = await ping_pong(target, sock)
                if problem:
                    findings.append(
                        Finding(f"after answering heartbeats, {problem}", "after heartbeat")
                    )
            findings += sock.findings
    except OpenFailed as exc:
        findings.append(
            Finding(f"a valid connection could not be opened: {exc.message}", "handshake")
        )
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )
