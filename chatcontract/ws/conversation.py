"""Conversations: each declared flow, fed to the same sequence engine as the SSE checker.

A flow sends one client frame and follows the server's answer under three
deadlines (first frame, idle gap, total). Heartbeat pings are answered on the
way. Agent events go to :class:`SequenceChecker` with the sent frame as the
request, so a run that reports another thread than the one asked for breaks
the ``correlation`` rule exactly as it would on SSE.

A flow or probe whose wait times out records the stall on the target
(:mod:`chatcontract.ws.stalls`); later ones that would wait the same way are
inconclusive at once, naming it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatcontract.errors import ChatContractError
from chatcontract.objects import rest_call
from chatcontract.presentation import carried
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
    session,
)
from chatcontract.ws.evidence import Clock, contract_id, inconclusive, judged, repro, skipped
from chatcontract.ws.frames import Transcript, scope_of, with_value
from chatcontract.ws.handshake import Access, presented_for
from chatcontract.ws.outgoing import fresh_flow_frame
from chatcontract.ws.pings import ping_frame_heartbeat
from chatcontract.ws.stalls import StallKind
from chatcontract.ws.vocabulary import REFERENCE, with_text

__all__ = [
    "AFTER_TERMINAL_GRACE",
    "ERROR_TYPE",
    "MAX_FRAMES_PER_FLOW",
    "FlowOutcome",
    "flow_name",
    "follow",
    "governs",
    "heartbeat_contract",
    "is_error",
    "is_error_frame",
    "ping_frame",
    "ping_pong",
    "run_flow",
    "thread_for",
    "until_answer",
    "violation_finding",
    "welcome_contract",
]

ERROR_TYPE = REFERENCE.error_type
"""The reference API's error frame type; checks use ``target.vocab.error_type``."""
MAX_FRAMES_PER_FLOW = 2000
"""A security limit: an answer longer than this is a finding, and reading stops."""
AFTER_TERMINAL_GRACE = 0.3
"""How long frames are still read after a run's terminal event, to catch a second one."""
_HEARTBEAT_SLACK = 1.0
"""Added to 1.25 heartbeat intervals: a loaded machine delays a ping by more than a beat."""


def violation_finding(
    violation: SequenceViolation, frames: Mapping[int, int] | None = None
) -> Finding:
    """A sequence violation as a finding; ``frames`` maps run event numbers to frame numbers."""
    if not violation.index:
        where = "end of the run"
    elif frames is not None and violation.index in frames:
        where = f"frame #{frames[violation.index]}"
    else:
        where = f"event #{violation.index}"
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
    events: dict[int, int] = field(default_factory=dict)
    """Run event number (what sequence messages count) -> frame number on the connection."""
    stalled: StallKind | None = None
    """How the wait timed out, if it did: no answer at all, or a run that stopped."""
    stall: str = ""
    """What did not arrive (for the later contracts' reason)."""

    def feed(self, frame: Received) -> None:
        if self.checker is None or frame.type is None or not isinstance(frame.value, dict):
            return
        number = len(self.events) + 1
        self.events[number] = frame.index
        self.checker.feed(frame.type, frame.value, number)


def is_error_frame(target: WsTarget, frame: Received) -> bool:
    """Whether ``frame`` is the contract's error frame (never true when it declares none)."""
    kind = target.vocab.error_type
    return kind is not None and frame.type == kind


def _error_text(frame: Received) -> str:
    value = frame.value if isinstance(frame.value, dict) else {}
    return f"{value.get('error_code')}: {value.get('message')}"


def governs(sequence: SequenceContract | None, kind: str | None) -> bool:
    """Whether ``sequence`` judges frames of type ``kind`` (directly or through a kind)."""
    if sequence is None or kind is None:
        return False
    return kind in sequence.events or any(k.type == kind for k in sequence.kinds)


def _skipped(
    flow: Flow | None,
    request: Mapping[str, Any],
    frame: Received,
    waiting_for: str | None,
    sequence: SequenceContract | None,
) -> tuple[bool, Finding | None]:
    """Whether the flow leaves ``frame`` alone, and the finding when it may not arrive.

    Frames on another channel are left alone; frames that answer something else
    (``correlate``) are allowed only when their type is declared ``unsolicited``.
    Without a correlation, an unsolicited type is chatter unless the flow waits for it.
    """
    if flow is None:
        return False, None
    scope = scope_of(flow, request, frame.value)
    if scope == "other-channel":
        return True, None
    if scope == "unsolicited":
        if frame.type in flow.unsolicited:
            return True, None
        assert flow.correlate is not None
        return True, Finding(
            f"an unsolicited {frame.type or 'untyped'} frame: it answers nothing this flow sent "
            f"({flow.correlate.received} does not name {flow.correlate.sent} of the sent "
            f"{flow.send}) and the flow declares no such unsolicited type",
            frame.label,
        )
    chatter = frame.type in flow.unsolicited and flow.correlate is None
    if chatter and frame.type != waiting_for and not governs(sequence, frame.type):
        return True, None
    return False, None


async def follow(
    target: WsTarget,
    sock: Socket,
    request: Mapping[str, Any],
    *,
    expect_first: str | None,
    sequence: SequenceContract | None,
    flow: Flow | None = None,
) -> FlowOutcome:
    """Read the answer to ``request`` (already sent) until it is complete or a deadline passes.

    With ``flow``, its ``correlate``, ``channel`` and ``unsolicited`` decide which
    frames the first and sequence rules judge: an interleaved stream is left alone.
    """
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
        if len(outcome.frames) >= MAX_FRAMES_PER_FLOW:
            outcome.findings.append(
                Finding(
                    f"more than {MAX_FRAMES_PER_FLOW} frames in answer to one {kind}: "
                    "stopped reading",
                    f"after frame #{sock.index}",
                )
            )
            return outcome
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
            outcome.stalled = "answer" if last is None else "run"
            outcome.stall = f"{what} after sending {kind}"
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
        outcome.frames.append(seen)
        skip, finding = _skipped(
            flow, outcome.request, seen, None if got_first else expect_first, sequence
        )
        if finding is not None:
            outcome.findings.append(finding)
        if skip:
            continue  # chatter is no answer: the deadlines wait for the flow's own frames
        last = loop.time()
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
            shown = f" ({_error_text(seen)})" if is_error_frame(target, seen) else ""
            outcome.findings.append(
                Finding(f"expected {expect_first} first, got {seen.type!r}{shown}", seen.label)
            )
            break
        checker = outcome.checker
        if checker is None:
            break
        if is_error_frame(target, seen):
            outcome.findings.append(
                Finding(
                    f"an error frame in the middle of a {sequence.name if sequence else 'run'}: "
                    + _error_text(seen),
                    seen.label,
                )
            )
            break
        outcome.feed(seen)
        if checker.terminated:
            await _after_terminal(target, sock, outcome, total_at, flow, sequence)
            break
    if outcome.checker is not None:
        outcome.checker.finish()
        outcome.findings.extend(
            violation_finding(v, outcome.events) for v in outcome.checker.violations
        )
    return outcome


async def _after_terminal(
    target: WsTarget,
    sock: Socket,
    outcome: FlowOutcome,
    total_at: float,
    flow: Flow | None,
    sequence: SequenceContract | None,
) -> None:
    """Read on briefly after the terminal event: a second terminal or a late event breaks
    the sequence, and stopping at the first terminal would never see either."""
    loop = asyncio.get_running_loop()
    until = min(loop.time() + AFTER_TERMINAL_GRACE, total_at)
    while len(outcome.frames) < MAX_FRAMES_PER_FLOW and loop.time() < until:
        seen = await sock.receive(until)
        if not isinstance(seen, Received):
            return
        outcome.frames.append(seen)
        skip, finding = _skipped(flow, outcome.request, seen, None, sequence)
        if finding is not None:
            outcome.findings.append(finding)
        if not skip and not is_error_frame(target, seen):
            outcome.feed(seen)


async def _rest_thread(target: WsTarget, user: str | None, transcript: Transcript) -> str | None:
    """A new thread over REST, through the contract's create-thread operation (if it has one).

    The thread is kept on the target's resources, to be deleted at the end.
    """
    create = target.vocab.create_thread
    if create is None:
        return None
    op = create.operation
    token = None
    if op.security:
        try:
            token = await target.token(user)
        except ChatContractError as exc:
            transcript.note(f"{op.label}: no token ({exc})")
            return None
    headers, params = carried(target.ctx.spec, op, token)
    answer = await rest_call(
        target.ctx,
        op.method,
        op.path,
        headers=headers,
        query=params,
        body=create.body,
        transcript=transcript,
    )
    body = answer.body
    thread = body.get(create.id_field) if isinstance(body, dict) else None
    if not answer.ok or not isinstance(thread, str):
        return None
    target.resources.record(op, user, body)
    return thread


async def thread_for(target: WsTarget, sock: Socket, user: str | None = None) -> str | None:
    """A thread owned by the socket's user: over REST, else from the message flow's ack."""
    thread = await _rest_thread(target, user, sock.transcript)
    if thread is not None:
        return thread
    flow = target.vocab.message
    if flow is None or target.stalls.blocks(run=flow.expect_sequence is not None):
        return None
    frame = with_text(_flow_frame(target, flow), "chatcontract: open a thread")
    if not target.validator.check_client(frame).ok:
        return None
    await sock.send_frame(frame)
    sequence = target.ctx.spec.sequences.get(flow.expect_sequence or "")
    # Follow the run the message starts to its end, so it cannot spill into the flow under test.
    outcome = await follow(
        target, sock, frame, expect_first=flow.expect_first, sequence=sequence, flow=flow
    )
    _record_stall(target, outcome, f"flow:{flow.name}")
    found = outcome.request.get("thread_id")
    return found if isinstance(found, str) else None


def _record_stall(target: WsTarget, outcome: FlowOutcome, suffix: str) -> None:
    if outcome.stalled is not None:
        target.stalls.record(outcome.stalled, contract_id(target, suffix), outcome.stall)


def _flow_frame(target: WsTarget, flow: Flow) -> dict[str, Any]:
    """The flow's frame, built fresh for this send (unique ids and timestamps)."""
    return fresh_flow_frame(target.contract, target.validator, flow)


async def run_flow(target: WsTarget, access: Access, flow: Flow) -> ContractResult:
    clock = Clock()
    suffix, name = f"flow:{flow.name}", flow_name(flow)
    unusable = access.unusable
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    stalled = target.stalls.blocks(run=flow.expect_sequence is not None)
    if stalled is not None:
        return inconclusive(target, suffix, name, stalled, clock)
    sequence = None
    if flow.expect_sequence is not None:
        sequence = target.ctx.spec.sequences.get(flow.expect_sequence)
        if sequence is None:
            return inconclusive(
                target, suffix, name, f"the spec has no sequence {flow.expect_sequence!r}", clock
            )
    transcript = target.transcript()
    presented = await presented_for(target, access)
    frame = _flow_frame(target, flow)
    findings: list[Finding] = []
    try:
        async with session(target, presented, transcript) as sock:
            if flow.needs_thread:
                thread = await thread_for(target, sock)
                if thread is None:
                    why = (
                        "no thread to use: the contract's create-thread operation failed "
                        "or is missing, and no message flow's ack named one"
                    )
                    stalled = target.stalls.blocks(run=True)
                    return inconclusive(
                        target,
                        suffix,
                        name,
                        f"{why} ({stalled})" if stalled else why,
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
                target, sock, frame, expect_first=flow.expect_first, sequence=sequence, flow=flow
            )
            _record_stall(target, outcome, suffix)
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
    """The contract's probe frame and its answer; else the reference API's ping and pong.

    Checks that cannot judge without a barrier test ``target.vocab.probe`` themselves.
    """
    probe = target.vocab.probe
    if probe is not None and probe.expect_first is not None:
        return _flow_frame(target, probe), probe.expect_first
    return with_value({}, target.validator.discriminator, REFERENCE.probe), "pong"


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
    target: WsTarget,
    sock: Socket,
    answer: str,
    *,
    sent: Mapping[str, Any] | None = None,
    throttled: str | None = None,
) -> tuple[list[Received], Closed | Silence | None]:
    """Frames until one of type ``answer`` (then ``None``), a close, or silence.

    After a ping sent as a barrier, this collects the server's answer to what
    was sent before it, without waiting out a timeout. When the probe flow
    correlates and ``sent`` is the barrier, only the answer naming it ends the
    wait: an answer of the same type to an earlier frame is one of the frames
    collected, never taken for the barrier's. An error frame with the
    ``throttled`` code also answers (it is how a rate-limited server answers
    anything) and is returned as the last frame.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    frames: list[Received] = []
    probe = target.vocab.probe
    chatter = probe.unsolicited if probe is not None else ()
    barrier = (probe, sent) if probe and probe.correlate and sent is not None else None
    while True:
        seen = await sock.receive(deadline)
        if not isinstance(seen, Received):
            return frames, seen
        if seen.type == answer and (
            barrier is None or scope_of(*barrier, seen.value) != "unsolicited"
        ):
            return frames, None
        if seen.type in chatter:
            continue  # declared chatter (status frames) answers nothing
        frames.append(seen)
        if throttled is not None and is_error(target, seen, throttled):
            return frames, None


def is_error(target: WsTarget, frame: Received, code: str) -> bool:
    value = frame.value
    return (
        is_error_frame(target, frame)
        and isinstance(value, dict)
        and value.get(REFERENCE.error_code_field) == code
    )


async def welcome_contract(target: WsTarget, access: Access) -> ContractResult:
    """The first frame is the welcome, it matches its schema and agrees with the contract."""
    clock = Clock()
    contract = target.contract
    suffix = "frames/welcome"
    name = f"the first frame is a valid {contract.welcome_type or 'welcome'} frame"
    unusable = access.unusable
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    transcript = target.transcript()
    presented = await presented_for(target, access)
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
    if contract.heartbeat_kind == "ping-frame":
        return await ping_frame_heartbeat(target, access)
    if contract.heartbeat_ping is None:
        return skipped(target, suffix, name, "the contract declares no heartbeat")
    unusable = access.unusable or target.stalls.blocks()
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    transcript = target.transcript()
    presented = await presented_for(target, access)
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
            if interval is None or interval * 1.25 + _HEARTBEAT_SLACK > budget:
                return skipped(
                    target,
                    suffix,
                    name,
                    f"a heartbeat every {interval} s is longer than this run waits "
                    f"({budget:g} s idle deadline)",
                )
            loop = asyncio.get_running_loop()
            window = interval * 1.25 + _HEARTBEAT_SLACK
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
                    if problem.startswith("no "):
                        target.stalls.record("answer", contract_id(target, suffix), problem)
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
