"""The ``websocket`` category: every WebSocket contract of the spec, in a deliberate order.

Auth first (the positive control decides what can be judged at all), then
frames and conversations, then hostile input, isolation and fuzzing, and the
limits last: a flood may leave its user rate limited for a minute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatcontract.context import RunContext
from chatcontract.report.model import ContractResult, Finding
from chatcontract.runner import category
from chatcontract.spec import WebSocketContract
from chatcontract.ws.client import WsTarget
from chatcontract.ws.conversation import heartbeat_contract, run_flow, welcome_contract
from chatcontract.ws.evidence import Clock, inconclusive, judged
from chatcontract.ws.fuzz import fuzz_contract
from chatcontract.ws.handshake import Access, auth_matrix, positive_control
from chatcontract.ws.hygiene import hygiene_contracts
from chatcontract.ws.isolation import isolation_contracts
from chatcontract.ws.limits import connection_limit, rate_limit

__all__ = ["check_websocket", "server_frames_contract", "websocket_contracts"]


def server_frames_contract(target: WsTarget, access: Access) -> ContractResult:
    """Run-wide: every frame the server sent, over every connection, matched its schema."""
    clock = Clock()
    suffix, name = "frames/server", "every frame the server sends matches its schema"
    log = target.frames
    if log.total == 0:
        return inconclusive(target, suffix, name, access.blocked or "no frame was received", clock)
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(log.counts.items()))
    findings: list[Finding] = list(log.findings)
    return judged(target, suffix, name, findings, clock, details={"frames": counts})


async def check_websocket(target: WsTarget) -> AsyncIterator[ContractResult]:
    """Every contract of one WebSocket endpoint."""
    control, access = await positive_control(target)
    yield control
    async for result in auth_matrix(target, access):
        yield result
    yield await welcome_contract(target, access)
    for flow in target.contract.flows:
        yield await run_flow(target, access, flow)
    yield await heartbeat_contract(target, access)
    for result in await hygiene_contracts(target, access):
        yield result
    for result in await isolation_contracts(target, access):
        yield result
    yield await fuzz_contract(target, access)
    yield server_frames_contract(target, access)
    yield await connection_limit(target, access)
    yield await rate_limit(target, access)


@category(
    "websocket",
    order=40,
    description=(
        "WebSocket endpoints: handshake auth matrix, frame schemas both ways, conversations, "
        "protocol hygiene, limits, user isolation and frame fuzzing"
    ),
)
async def websocket_contracts(ctx: RunContext) -> AsyncIterator[ContractResult]:
    contracts: tuple[WebSocketContract, ...] = ctx.spec.websockets
    for contract in contracts:
        async for result in check_websocket(WsTarget.of(ctx, contract)):
            yield result
