"""User isolation on the channel: two users at once, nothing crosses between them.

Users A and B connect together and each starts a run carrying a canary nonce.
Every frame a user receives must belong to that user's own thread and runs,
and the other's canary must never show up; then each tries to switch to and
read the other's thread, which must be answered as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chatcontract.report.model import ContractResult, Finding
from chatcontract.ws.client import OpenFailed, Received, Silence, Socket, WsTarget, open_socket
from chatcontract.ws.conversation import ERROR_TYPE
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.handshake import Access, primary_presented

__all__ = ["NOT_FOUND_CODE", "Party", "isolation_contracts", "leaks"]

NOT_FOUND_CODE = "THREAD_NOT_FOUND"
_DRAIN_SECONDS = 0.3
_MAX_LEAK_FINDINGS = 5


@dataclass(slots=True)
class Party:
    """One user's side of the isolation check."""

    user: str
    canary: str
    sock: Socket | None = None
    threads: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    done: bool = False


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


async def _run(target: WsTarget, party: Party, terminals: frozenset[str]) -> None:
    """Read ``party``'s frames until its own run ends, learning its thread and run ids."""
    assert party.sock is not None
    loop = asyncio.get_running_loop()
    deadlines = target.deadlines
    total_at = loop.time() + deadlines.total
    limit = loop.time() + deadlines.first_frame
    while True:
        seen = await party.sock.receive(min(limit, total_at))
        if not isinstance(seen, Received):
            return
        limit = loop.time() + deadlines.idle
        thread, run = _field(seen, "thread_id"), _field(seen, "run_id")
        if seen.type == "message_ack" and isinstance(thread, str) and not party.threads:
            party.threads.add(thread)
        if isinstance(run, str) and isinstance(thread, str) and thread in party.threads:
            party.runs.add(run)
        if seen.type in terminals and thread in party.threads:
            party.done = True
            return


async def _drain(sock: Socket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        seen = await sock.receive(loop.time() + _DRAIN_SECONDS)
        if not isinstance(seen, Received):
            return


async def _probe_thread(
    target: WsTarget, sock: Socket, kind: str, thread: str, payload: Mapping[str, Any]
) -> list[Finding]:
    frame = {target.validator.discriminator: kind, "thread_id": thread, "payload": dict(payload)}
    if not target.validator.check_client(frame).ok:
        return []
    await sock.send_frame(frame)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    while True:
        seen = await sock.receive(deadline)
        if isinstance(seen, Silence):
            return [
                Finding(
                    f"{kind} for another user's thread got no answer within {seen.waited:.1f} s",
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
        if seen.type == ERROR_TYPE:
            code = _field(seen, "error_code")
            if code == NOT_FOUND_CODE:
                return []
            return [
                Finding(
                    f"{kind} for another user's thread got error {code}, not {NOT_FOUND_CODE}: "
                    "the answer may reveal that the thread exists",
                    seen.label,
                    severity="warning",
                )
            ]
        if _field(seen, "thread_id") == thread:
            return [
                Finding(
                    f"{kind} for another user's thread was answered with {seen.type!r}: "
                    "access granted",
                    seen.label,
                )
            ]


async def isolation_contracts(target: WsTarget, access: Access) -> list[ContractResult]:
    clock = Clock()
    events_name = "users never receive each other's frames"
    threads_name = "users cannot switch to or read each other's threads"
    users = target.ctx.credentials.users
    if len(users) < 2:
        reason = "needs two users (credentials.users)"
        return [
            skipped(target, "isolation", events_name, reason),
            skipped(target, "isolation/threads", threads_name, reason),
        ]
    if access.blocked is not None or access.primary is None:
        reason = access.blocked or "no working carrier"
        return [
            inconclusive(target, "isolation", events_name, reason, clock),
            inconclusive(target, "isolation/threads", threads_name, reason, clock),
        ]
    a, b = (Party(u, f"canary-{secrets.token_hex(8)}") for u in users[:2])
    transcript = target.transcript()
    presented = {}
    findings: list[Finding] = []
    thread_findings: list[Finding] = []
    send = "user_message"
    try:
        async with contextlib.AsyncExitStack() as stack:
            for party in (a, b):
                presented[party.user] = primary_presented(
                    target, access, await target.token(party.user)
                )
                party.sock = await open_socket(
                    target, presented[party.user], transcript, user=party.user
                )
                stack.push_async_callback(party.sock.close)
            for party in (a, b):
                assert party.sock is not None
                await party.sock.send_frame(
                    {
                        target.validator.discriminator: send,
                        "payload": {"content": f"isolation check {party.canary}"},
                    }
                )
            terminals = _terminals(target)
            await asyncio.gather(_run(target, a, terminals), _run(target, b, terminals))
            await asyncio.gather(*(_drain(p.sock) for p in (a, b) if p.sock is not None))
            undone = [p.user for p in (a, b) if not p.threads]
            if undone:
                reason = (
                    f"no message_ack with a thread_id for {', '.join(undone)}: nothing to compare"
                )
                return [
                    inconclusive(
                        target, "isolation", events_name, reason, clock, transcript=transcript
                    ),
                    inconclusive(
                        target,
                        "isolation/threads",
                        threads_name,
                        reason,
                        clock,
                        transcript=transcript,
                    ),
                ]
            for party in (a, b):
                assert party.sock is not None
                # Learned after the fact too: a run event that overtook its ack is still own.
                for frame in party.sock.received:
                    run, thread = _field(frame, "run_id"), _field(frame, "thread_id")
                    if isinstance(run, str) and thread in party.threads:
                        party.runs.add(run)
            for own, other in ((a, b), (b, a)):
                assert own.sock is not None
                findings += leaks(own, other, own.sock.received[1:])
                findings += [
                    replace(f, location=f"{own.user}'s {f.location}") for f in own.sock.findings
                ]
            for own, other in ((b, a), (a, b)):
                assert own.sock is not None
                thread = sorted(other.threads)[0]
                thread_findings += await _probe_thread(
                    target, own.sock, "switch_thread", thread, {}
                )
                thread_findings += await _probe_thread(
                    target, own.sock, "get_thread_history", thread, {"limit": 20}
                )
    except OpenFailed as exc:
        reason = f"a valid connection could not be opened: {exc.message}"
        return [
            inconclusive(target, "isolation", events_name, reason, clock, transcript=transcript),
            inconclusive(
                target, "isolation/threads", threads_name, reason, clock, transcript=transcript
            ),
        ]
    text = repro(
        target,
        presented=presented[a.user],
        send=["(user A and user B each send a user_message carrying a canary)"],
    )
    return [
        judged(
            target,
            "isolation",
            events_name,
            findings,
            clock,
            transcript=transcript,
            repro_text=text,
        ),
        judged(
            target,
            "isolation/threads",
            threads_name,
            thread_findings,
            clock,
            transcript=transcript,
            repro_text=text,
        ),
    ]
