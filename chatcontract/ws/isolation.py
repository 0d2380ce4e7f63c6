"""User isolation on the channel: two users at once, nothing crosses between them.

Users A and B connect together and each starts a run carrying a canary nonce.
Every frame a user receives must belong to that user's own thread and runs,
and the other's canary must never show up; then each tries to switch to and
read the other's thread, which must be answered as if it did not exist.
A channel that declares no authentication has no users to tell apart: both
contracts are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chatcontract.auth import no_auth_reason
from chatcontract.report.model import ContractResult, Finding
from chatcontract.spec import Flow
from chatcontract.ws.client import OpenFailed, Received, Silence, Socket, WsTarget, open_socket
from chatcontract.ws.conversation import MAX_FRAMES_PER_FLOW, is_error_frame
from chatcontract.ws.evidence import Clock, contract_id, inconclusive, judged, repro, skipped
from chatcontract.ws.handshake import Access, presented_for
from chatcontract.ws.outgoing import fresh_flow_frame
from chatcontract.ws.stalls import StallKind
from chatcontract.ws.vocabulary import THREAD_FIELD, with_text

__all__ = ["NOT_PROBED", "Party", "isolation_contracts", "leaks", "thread_probes"]

_DRAIN_QUIET = 0.3
"""Silence that ends the drain after both runs."""
_DRAIN_TOTAL = 1.0
"""The most the drain takes, however chatty the server."""
_MAX_LEAK_FINDINGS = 5
NOT_PROBED = "no switch/read frame can be built from the contract"


@dataclass(slots=True)
class Party:
    """One user's side of the isolation check."""

    user: str
    canary: str
    sock: Socket | None = None
    threads: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    done: bool = False
    frames: list[Received] = field(default_factory=list)
    """Every frame after the welcome, up to :data:`MAX_FRAMES_PER_FLOW`."""
    stopped: str | None = None
    """Why the run was not followed to its end, when it was not."""
    stalled: StallKind | None = None
    """How the wait timed out, when it did (see :mod:`chatcontract.ws.stalls`)."""

    def keep(self, frame: Received) -> None:
        if len(self.frames) < MAX_FRAMES_PER_FLOW:
            self.frames.append(frame)


def _field(frame: Received, name: str) -> Any:
    return frame.value.get(name) if isinstance(frame.value, dict) else None


def leaks(own: Party, other: Party, frames: list[Received]) -> list[Finding]:
    """Frames ``own`` received that belong to ``other`` (pure, for tests and reuse)."""
    findings: list[Finding] = []
    foreign_ids = other.threads | other.runs
    for frame in frames:
        reasons = []
        if other.canary in frame.text:
            reasons.append(f"{other.user}'s canary")
        thread, run = _field(frame, "thread_id"), _field(frame, "run_id")
        if isinstance(thread, str) and own.threads and thread not in own.threads:
            reasons.append(f"thread_id {thread} (not {own.user}'s)")
        if isinstance(run, str) and run not in own.runs:
            reasons.append(f"run_id {run} (not one of {own.user}'s runs)")
        if not reasons:
            reasons += [f"{other.user}'s id {i}" for i in sorted(foreign_ids) if i in frame.text][
                :1
            ]
        if reasons:
            findings.append(
                Finding(
                    f"{own.user} received a frame carrying " + ", ".join(reasons),
                    f"{own.user}'s {frame.label}",
                )
            )
    if len(findings) > _MAX_LEAK_FINDINGS:
        extra = len(findings) - _MAX_LEAK_FINDINGS
        findings = findings[:_MAX_LEAK_FINDINGS]
        findings.append(
            Finding(f"… and {extra} more frames from {other.user}'s runs", "more frames")
        )
    return findings


def _terminals(target: WsTarget) -> frozenset[str]:
    names: set[str] = set()
    for flow in target.contract.flows:
        sequence = target.ctx.spec.sequences.get(flow.expect_sequence or "")
        if sequence is not None:
            names |= set(sequence.terminal)
    return frozenset(names)


async def _run(target: WsTarget, party: Party, terminals: frozenset[str], ack: str) -> None:
    """Read ``party``'s frames until its own run ends, learning its thread and run ids."""
    assert party.sock is not None
    loop = asyncio.get_running_loop()
    deadlines = target.deadlines
    total_at = loop.time() + deadlines.total
    limit = loop.time() + deadlines.first_frame
    while len(party.frames) < MAX_FRAMES_PER_FLOW:
        seen = await party.sock.receive(min(limit, total_at))
        if isinstance(seen, Silence):
            party.stopped = f"no frame for {seen.waited:.1f} s"
            party.stalled = "run" if party.frames else "answer"
            return
        if not isinstance(seen, Received):
            party.stopped = f"the connection ended: {seen.problem or seen.describe()}"
            return
        party.keep(seen)
        limit = loop.time() + deadlines.idle
        thread, run = _field(seen, THREAD_FIELD), _field(seen, "run_id")
        if seen.type == ack and isinstance(thread, str) and not party.threads:
            party.threads.add(thread)
        if isinstance(run, str) and isinstance(thread, str) and thread in party.threads:
            party.runs.add(run)
        if seen.type in terminals and thread in party.threads:
            party.done = True
            return
    party.stopped = f"more than {MAX_FRAMES_PER_FLOW} frames"


async def _drain(party: Party) -> None:
    """Frames that arrive after the run: bounded by one deadline and the frame cap."""
    assert party.sock is not None
    loop = asyncio.get_running_loop()
    until = loop.time() + _DRAIN_TOTAL
    while len(party.frames) < MAX_FRAMES_PER_FLOW and loop.time() < until:
        seen = await party.sock.receive(min(loop.time() + _DRAIN_QUIET, until))
        if not isinstance(seen, Received):
            return
        party.keep(seen)


def thread_probes(target: WsTarget, thread: str) -> list[tuple[str, dict[str, Any]]]:
    """Frames that switch to or read ``thread``: every needs-thread flow whose frame is valid."""
    probes = []
    for flow in target.vocab.thread_flows:
        frame = fresh_flow_frame(target.contract, target.validator, flow)
        frame[THREAD_FIELD] = thread
        if target.validator.check_client(frame).ok:
            probes.append((flow.send, frame))
    return probes


async def _probe_thread(
    target: WsTarget, sock: Socket, kind: str, frame: Mapping[str, Any]
) -> list[Finding]:
    thread = frame[THREAD_FIELD]
    not_found = target.vocab.not_found_code
    await sock.send_frame(frame)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    while True:
        seen = await sock.receive(deadline)
        if isinstance(seen, Silence):
            return [
                Finding(
                    f"{kind} for another user's thread got no answer within "
                    f"{target.deadlines.first_frame:g} s",
                    "thread access",
                )
            ]
        if not isinstance(seen, Received):
            return [
                Finding(
                    f"{kind} for another user's thread ended the connection: "
                    f"{seen.problem or seen.describe()}",
                    "thread access",
                )
            ]
        if is_error_frame(target, seen):
            code = _field(seen, "error_code")
            if code == not_found:
                return []
            return [
                Finding(
                    f"{kind} for another user's thread got error {code}, not {not_found}: "
                    "the answer may reveal that the thread exists",
                    seen.label,
                    severity="warning",
                )
            ]
        if _field(seen, THREAD_FIELD) == thread:
            return [
                Finding(
                    f"{kind} for another user's thread was answered with {seen.type!r}: "
                    "access granted",
                    seen.label,
                )
            ]


def _message(target: WsTarget, party: Party) -> tuple[Flow, dict[str, Any]] | None:
    flow = target.vocab.message
    if flow is None:
        return None
    frame = with_text(
        fresh_flow_frame(target.contract, target.validator, flow), f"isolation check {party.canary}"
    )
    return (flow, frame) if target.validator.check_client(frame).ok else None


async def isolation_contracts(target: WsTarget, access: Access) -> list[ContractResult]:
    clock = Clock()
    events_name = "users never receive each other's frames"
    threads_name = "users cannot switch to or read each other's threads"
    users = target.ctx.credentials.users
    operation = target.contract.operation
    skip = None
    if operation.is_public:
        skip = no_auth_reason(operation)
    elif len(users) < 2:
        skip = "needs two users (credentials.users)"
    if skip is not None:
        return [
            skipped(target, "isolation", events_name, skip),
            skipped(target, "isolation/threads", threads_name, skip),
        ]
    # Both users' runs are followed to their end: a stalled endpoint would not end them.
    unusable = access.unusable or target.stalls.blocks(run=True)
    if unusable is not None:
        return [
            inconclusive(target, "isolation", events_name, unusable, clock),
            inconclusive(target, "isolation/threads", threads_name, unusable, clock),
        ]
    a, b = (Party(u, f"canary-{secrets.token_hex(8)}") for u in users[:2])
    transcript = target.transcript()

    def both(reason: str) -> list[ContractResult]:
        return [
            inconclusive(target, "isolation", events_name, reason, clock, transcript=transcript),
            inconclusive(
                target, "isolation/threads", threads_name, reason, clock, transcript=transcript
            ),
        ]

    messages = {p.user: _message(target, p) for p in (a, b)}
    if any(m is None for m in messages.values()):
        return both(
            "no flow with expect-first and a sequence gives a valid message frame to start a run"
        )
    presented = {}
    findings: list[Finding] = []
    thread_findings: list[Finding] | None = []
    sent: list[dict[str, Any]] = []
    ack = target.vocab.ack_type or ""
    try:
        async with contextlib.AsyncExitStack() as stack:
            for party in (a, b):
                presented[party.user] = await presented_for(target, access, party.user)
                party.sock = await open_socket(
                    target, presented[party.user], transcript, user=party.user
                )
                stack.push_async_callback(party.sock.close)
            for party in (a, b):
                assert party.sock is not None
                message = messages[party.user]
                assert message is not None
                sent.append(message[1])
                await party.sock.send_frame(message[1])
            terminals = _terminals(target)
            # A task group, not gather: one side failing cancels the other at once.
            async with asyncio.TaskGroup() as group:
                for party in (a, b):
                    group.create_task(_run(target, party, terminals, ack))
            for party in (a, b):
                if party.stalled is not None:
                    what = f"{party.user}'s run: {party.stopped}"
                    target.stalls.record(party.stalled, contract_id(target, "isolation"), what)
            async with asyncio.TaskGroup() as group:
                for party in (a, b):
                    group.create_task(_drain(party))
            undone = [p.user for p in (a, b) if not p.threads]
            if undone:
                return both(
                    f"no {ack} with a thread_id for {', '.join(undone)}: nothing to compare"
                )
            for party in (a, b):
                # Learned after the fact too: a run event that overtook its ack is still own.
                for frame in party.frames:
                    run, thread = _field(frame, "run_id"), _field(frame, THREAD_FIELD)
                    if isinstance(run, str) and thread in party.threads:
                        party.runs.add(run)
            leaked: list[Finding] = []
            for own, other in ((a, b), (b, a)):
                assert own.sock is not None
                leaked += leaks(own, other, own.frames)
                findings += [
                    replace(f, location=f"{own.user}'s {f.location}") for f in own.sock.findings
                ]
            findings = leaked + findings
            unfinished = [p for p in (a, b) if not p.done]
            if unfinished and not leaked:
                # A partial run proves nothing: the leak may come after where reading stopped.
                findings = []
                events_reason = "; ".join(
                    f"{p.user}'s run did not reach its terminal event ({p.stopped or 'unknown'})"
                    for p in unfinished
                )
            else:
                events_reason = None
            for own, other in ((b, a), (a, b)):
                assert own.sock is not None
                probes = thread_probes(target, sorted(other.threads)[0])
                if not probes:
                    thread_findings = None
                    break
                for kind, probe in probes:
                    found = await _probe_thread(target, own.sock, kind, probe)
                    thread_findings = (thread_findings or []) + found
    except OpenFailed as exc:
        return both(f"a valid connection could not be opened: {exc.message}")
    text = repro(
        target,
        presented=presented[a.user],
        send=["(user A and user B each send this frame, carrying their own canary)", sent[0]],
    )
    if events_reason is not None:
        events = inconclusive(
            target, "isolation", events_name, events_reason, clock, transcript=transcript
        )
    else:
        events = judged(
            target,
            "isolation",
            events_name,
            findings,
            clock,
            transcript=transcript,
            repro_text=text,
        )
    threads_reason = None
    if thread_findings is None:
        threads_reason = NOT_PROBED
    elif not thread_findings and target.vocab.not_found_code is None:
        threads_reason = "the contract's error frame names no not-found code to expect"
    if threads_reason is not None:
        threads = inconclusive(
            target, "isolation/threads", threads_name, threads_reason, clock, transcript=transcript
        )
    else:
        threads = judged(
            target,
            "isolation/threads",
            threads_name,
            thread_findings or [],
            clock,
            transcript=transcript,
            repro_text=text,
        )
    return [events, threads]
