"""Declared limits: connections per user and messages per minute.

Opt-in (``check_limits``, always on for the reference server): hitting a
limit disturbs a shared target and may lock its user out for a minute. Both
checks are bounded in count (the limit plus a few) and in time. The flood is
the contract's probe frame, and its refusal is the contract's error frame with
the ``rate-limited`` code: without either the check is inconclusive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from chatcontract.report.model import ContractResult, Finding
from chatcontract.ws.client import (
    Closed,
    OpenFailed,
    Received,
    Silence,
    Socket,
    WsTarget,
    handshake,
    open_socket,
)
from chatcontract.ws.conversation import is_error, is_error_frame, ping_frame
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.handshake import Access, presented_for
from chatcontract.ws.vocabulary import NO_ERROR_FRAME, NO_PROBE

__all__ = [
    "FLOOD_EXTRA",
    "LIMITS_REASON",
    "connection_limit",
    "connections_name",
    "limits_enabled",
    "rate_limit",
    "rate_name",
]

LIMITS_REASON = (
    "limits are exercised only with --check-limits (always on against the reference server)"
)
FLOOD_EXTRA = 5
"""Messages sent beyond the declared per-minute limit: enough to cross it, no more."""
_FLOOD_SECONDS = 10.0


def limits_enabled(target: WsTarget) -> bool:
    settings = target.ctx.settings
    return settings.check_limits or settings.target_is_reference


def connections_name(allowed: int | None) -> str:
    return f"a user's connection beyond the declared {allowed or 'limit'} is refused"


def rate_name(per_minute: int | None, signal: str | None) -> str:
    rate = f"{per_minute} messages a minute" if per_minute else "the declared message rate"
    return f"more than {rate} get {signal or 'the declared signal'}"


async def connection_limit(target: WsTarget, access: Access) -> ContractResult:
    clock = Clock()
    limits = target.contract.limits
    allowed = limits.connections_per_user
    suffix = "limits/connections"
    name = connections_name(allowed)
    if allowed is None:
        return skipped(target, suffix, name, "the contract declares no connections-per-user limit")
    if not limits_enabled(target):
        return skipped(target, suffix, name, LIMITS_REASON)
    unusable = access.unusable
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    user = target.ctx.credentials.users[-1]
    presented = await presented_for(target, access, user)
    transcript = target.transcript()
    reaction = target.contract.on_invalid_input.get("connection-limit")
    close_code = reaction.close_code if reaction else None
    statuses = (*target.contract.rejection_statuses, 429)
    findings: list[Finding] = []
    open_sockets: list[Socket] = []
    try:
        for number in range(1, allowed + 1):
            try:
                open_sockets.append(await open_socket(target, presented, transcript, user=user))
            except OpenFailed as exc:
                findings.append(
                    Finding(
                        f"connection {number} of the {allowed} allowed was refused: {exc.message}",
                        f"connection {number}",
                    )
                )
                break
        else:
            extra = await handshake(target, presented, transcript, user=user)
            where = f"connection {allowed + 1}"
            if extra.outcome == "rejected":
                if extra.status not in statuses:
                    findings.append(
                        Finding(
                            f"refused with HTTP {extra.status}, "
                            f"expected {' or '.join(map(str, statuses))}",
                            where,
                        )
                    )
            elif extra.socket is None:
                findings.append(Finding(f"expected a refusal, got {extra.detail}", where))
            else:
                open_sockets.append(extra.socket)
                findings += await _await_close(target, extra.socket, close_code, where)
    finally:
        for sock in open_sockets:
            await sock.close()
    for sock in open_sockets:
        findings += sock.findings
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )


async def _await_close(
    target: WsTarget, sock: Socket, close_code: int | None, where: str
) -> list[Finding]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    welcomed = False
    while True:
        seen = await sock.receive(deadline)
        if isinstance(seen, Received):
            welcomed = welcomed or seen.type == target.contract.welcome_type
            continue
        if isinstance(seen, Silence):
            state = "with a welcome frame" if welcomed else "without closing"
            return [Finding(f"accepted {state} and kept it open: the limit is not enforced", where)]
        if seen.by == "server" and (close_code is None or seen.code == close_code):
            return [Finding(seen.problem, where)] if seen.problem else []
        return [
            Finding(f"expected close {close_code}, got {seen.problem or seen.describe()}", where)
        ]


async def rate_limit(target: WsTarget, access: Access) -> ContractResult:
    clock = Clock()
    limits = target.contract.limits
    per_minute = limits.messages_per_minute
    suffix = "limits/rate"
    reaction = target.contract.on_invalid_input.get("rate-limited")
    want = reaction.error_code if reaction else None
    name = rate_name(per_minute, want)
    if per_minute is None or want is None:
        return skipped(
            target, suffix, name, "the contract declares no message rate limit with an error code"
        )
    if not limits_enabled(target):
        return skipped(target, suffix, name, LIMITS_REASON)
    # The flood is probes, each answered by one frame: answers and refusals both count.
    if target.vocab.probe is None:
        return inconclusive(target, suffix, name, NO_PROBE, clock)
    if target.vocab.error_type is None:
        return inconclusive(target, suffix, name, NO_ERROR_FRAME, clock)
    # The flood is answered probe by probe: an endpoint that stopped answering would not.
    unusable = access.unusable or target.stalls.blocks()
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    user = target.ctx.credentials.users[-1]
    presented = await presented_for(target, access, user)
    transcript = target.transcript()
    ping, answer = ping_frame(target)
    count = per_minute + FLOOD_EXTRA
    findings: list[Finding] = []
    answers = limited = 0
    try:
        sock = await open_socket(target, presented, transcript, user=user)
    except OpenFailed as exc:
        return inconclusive(
            target, suffix, name, f"a valid connection could not be opened: {exc.message}", clock
        )
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    end: Closed | Silence | None = None
    try:
        async with asyncio.timeout(_FLOOD_SECONDS + target.deadlines.first_frame):
            for _ in range(count):
                await sock.send_frame(ping)
            sent_in = time.monotonic() - started
            while answers + limited < count:
                seen = await sock.receive(loop.time() + target.deadlines.first_frame)
                if not isinstance(seen, Received):
                    end = seen
                    break
                if seen.type == answer:
                    answers += 1
                elif is_error(target, seen, want):
                    limited += 1
                elif is_error_frame(target, seen):
                    answers += 1
    except TimeoutError:
        sent_in = time.monotonic() - started
        findings.append(Finding(f"the flood was not answered within {_FLOOD_SECONDS:g} s", "flood"))
    finally:
        with contextlib.suppress(Exception):
            await sock.close()
    transcript.note(
        f"sent {count} messages in {sent_in:.2f} s: {answers} answered, {limited} {want}"
    )
    if isinstance(end, Closed):
        findings.append(
            Finding(
                f"the flood ended the connection ({end.problem or end.describe()}) "
                f"instead of {want}",
                "flood",
            )
        )
    elif limited == 0 and not findings:
        findings.append(
            Finding(
                f"sent {count} messages in {sent_in:.2f} s (limit {per_minute}/minute): "
                f"{answers} answered, none got {want}",
                "flood",
            )
        )
    findings += sock.findings
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented, send=[ping]),
        details={"sent": str(count), "answered": str(answers), "limited": str(limited)},
    )
