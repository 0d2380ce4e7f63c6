"""Heartbeats made of WebSocket ping control frames (``heartbeat.kind: ping-frame``).

Many servers keep a channel alive with RFC 6455 pings rather than JSON
messages. The client library answers each ping with a pong on its own; this
module only counts the pings as they are parsed, so the check can say whether
one arrived within the declared interval, and, with ``pong-expected``, sends
a ping of its own that the server must answer with a pong.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from chatcontract.report.model import ContractResult, Finding
from chatcontract.ws.client import Closed, OpenFailed, Socket, WsTarget, session
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro, skipped
from chatcontract.ws.handshake import Access, presented_for

__all__ = ["SLACK_SECONDS", "count_pings", "ping_frame_heartbeat"]

SLACK_SECONDS = 1.0
"""Added to 1.25 intervals: a loaded machine delays a ping by more than a beat."""
_NAME = "the server sends heartbeat pings and the channel survives them"


def count_pings(sock: Socket) -> list[float]:
    """Loop times of the ping control frames ``sock`` receives from now on."""
    seen: list[float] = []
    protocol: Any = sock.conn.protocol
    original = protocol.recv_frame
    loop = asyncio.get_running_loop()

    def recv_frame(frame: Frame) -> None:
        if frame.opcode is Opcode.PING:
            seen.append(loop.time())
            sock.transcript.note("ping frame received (answered with a pong)")
        original(frame)

    protocol.recv_frame = recv_frame
    return seen


async def _our_ping(sock: Socket, wait: float) -> str | None:
    """Why the server did not answer our ping frame with a pong, or ``None``."""
    sock.transcript.note("we send a ping frame")
    try:
        waiter = await sock.conn.ping()
        async with asyncio.timeout(wait):
            await waiter
    except TimeoutError:
        return f"no pong to our ping frame within {wait:g} s"
    except ConnectionClosed:
        return "the connection ended before the pong"
    return None


async def ping_frame_heartbeat(target: WsTarget, access: Access) -> ContractResult:
    """Ping frames arrive within the declared interval, and (``pong-expected``) our ping
    gets its pong; the connection stays open throughout."""
    clock = Clock()
    contract = target.contract
    suffix = "heartbeat"
    interval = contract.heartbeat_interval
    budget = target.deadlines.total
    if interval is None or interval * 1.25 + SLACK_SECONDS > budget:
        why = f"a ping frame every {interval} s is longer than this run waits ({budget:g} s)"
        return skipped(target, suffix, _NAME, why)
    unusable = access.unusable
    if unusable is not None:
        return inconclusive(target, suffix, _NAME, unusable, clock)
    transcript = target.transcript()
    presented = await presented_for(target, access)
    findings: list[Finding] = []
    try:
        async with session(target, presented, transcript) as sock:
            pings = count_pings(sock)
            if contract.heartbeat_pong_expected:
                problem = await _our_ping(sock, target.deadlines.first_frame)
                if problem:
                    findings.append(Finding(problem, "ping frame"))
            loop = asyncio.get_running_loop()
            window = interval * 1.25 + SLACK_SECONDS
            started = loop.time()
            deadline = started + window
            seen: Any = None
            while not pings and loop.time() < deadline:
                seen = await sock.receive(min(deadline, loop.time() + 0.2))
                if isinstance(seen, Closed):
                    break
            if isinstance(seen, Closed):
                findings.append(
                    Finding(
                        f"the connection ended while idle: {seen.problem or seen.describe()}",
                        "idle",
                    )
                )
            elif not pings:
                findings.append(
                    Finding(
                        f"no ping frame within {window:g} s (declared every {interval:g} s)",
                        "idle",
                    )
                )
            else:
                transcript.note(f"first ping frame after {pings[0] - started:.2f} s")
            findings += sock.findings
    except OpenFailed as exc:
        findings.append(
            Finding(f"a valid connection could not be opened: {exc.message}", "handshake")
        )
    return judged(
        target,
        suffix,
        _NAME,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )
