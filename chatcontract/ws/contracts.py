"""The ``websocket`` category: every WebSocket contract of the spec, in a deliberate order.

Auth first (the positive control decides what can be judged at all), then
frames and conversations, then hostile input, isolation and fuzzing, and the
limits last: a flood may leave its user rate limited for a minute.

Before any of it, the URL's parameters are filled (objects made through the
spec's links, examples, or the ``path_parameters`` setting); an endpoint whose
URL cannot be filled is skipped, contract by contract, naming the parameter.
After all of it, what the checks created is deleted, and the endpoint's last
result says what could not be.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace

from chatcontract.context import RunContext, RunSettings
from chatcontract.plan import PlannedContract
from chatcontract.report.model import ContractResult, Finding
from chatcontract.runner import category, planner
from chatcontract.spec import Spec, WebSocketContract
from chatcontract.ws.client import WsTarget
from chatcontract.ws.conversation import flow_name, heartbeat_contract, run_flow, welcome_contract
from chatcontract.ws.evidence import (
    CATEGORY,
    ORIGIN_ROWS,
    Clock,
    carrier_slug,
    contract_id,
    control_name,
    forbidden_name,
    inconclusive,
    judged,
    origin_name,
    skipped,
)
from chatcontract.ws.fuzz import fuzz_contract
from chatcontract.ws.handshake import Access, auth_matrix, positive_control
from chatcontract.ws.hygiene import HOSTILE_INPUTS, hostile_name, hygiene_contracts
from chatcontract.ws.isolation import isolation_contracts
from chatcontract.ws.limits import (
    connection_limit,
    connections_name,
    rate_limit,
    rate_name,
)
from chatcontract.ws.tokens import FORGERIES

CONTROL = "auth/positive-control"

__all__ = [
    "check_websocket",
    "plan_websocket",
    "server_frames_contract",
    "websocket_contracts",
]


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


_CLEANUP_SECONDS = 30.0
"""The most the deletions at the end may take, whatever the target does."""


async def check_websocket(target: WsTarget) -> AsyncIterator[ContractResult]:
    """Every wanted contract of one WebSocket endpoint, then the cleanup.

    The endpoint's last wanted result is held back until what the checks created
    is deleted, so it can say what could not be; the others go out at once.
    """
    wanted = [
        contract_id(target, suffix)
        for suffix, _, _ in _rows(target.contract, target.ctx.settings)
        if target.ctx.progress.wants(contract_id(target, suffix))
    ]
    final = wanted[-1] if wanted else None
    held: ContractResult | None = None
    try:
        unfilled = await target.resources.fill()
        if unfilled is not None:
            # Nothing to connect to: not applicable until configured, unless the spec's
            # own way of making the object was tried and failed.
            judge = inconclusive if target.resources.attempted else skipped
            for suffix, name, _ in _rows(target.contract, target.ctx.settings):
                if contract_id(target, suffix) in wanted:
                    yield judge(target, suffix, name, unfilled)
            return
        async with contextlib.aclosing(_checks(target)) as results:
            async for result in results:
                if result.id == final:
                    held = result
                else:
                    yield result
    finally:
        deleted, kept = await _cleanup(target)
    if held is not None:
        details = dict(held.details)
        if deleted:
            details["cleaned up"] = "; ".join(deleted)
        if kept:
            details["not cleaned up"] = "; ".join(kept)
        yield replace(held, details=details)


async def _cleanup(target: WsTarget) -> tuple[list[str], list[str]]:
    """Delete what the checks created (bounded); ``(deleted, not deleted with why)``."""
    leftovers = target.resources.leftovers
    if leftovers.created:
        await target.resources.cleanup(_CLEANUP_SECONDS)
    return list(leftovers.deleted), list(leftovers.kept)


async def _checks(target: WsTarget) -> AsyncGenerator[ContractResult, None]:
    """Every wanted contract of one WebSocket endpoint, the positive control first."""
    progress = target.ctx.progress

    def wants(*suffixes: str) -> bool:
        return any(progress.wants(contract_id(target, s)) for s in suffixes)

    control, access = await positive_control(target)
    yield control
    if wants("auth/no-token") or any(s.startswith("auth/") for s in _wanted_suffixes(target)):
        async for result in auth_matrix(target, access):
            yield result
    if not target.contract.messages_declared:
        return
    if target.contract.welcome_type is not None and wants("frames/welcome"):
        yield await welcome_contract(target, access)
    for flow in target.contract.flows:
        if wants(f"flow:{flow.name}"):
            yield await run_flow(target, access, flow)
    if wants("heartbeat"):
        yield await heartbeat_contract(target, access)
    if wants(*(f"hygiene/{h.slug}" for h in HOSTILE_INPUTS)):
        for result in await hygiene_contracts(target, access):
            yield result
    if wants("isolation", "isolation/threads"):
        for result in await isolation_contracts(target, access):
            yield result
    if wants("fuzz"):
        yield await fuzz_contract(target, access)
    if wants("frames/server"):
        yield server_frames_contract(target, access)
    if wants("limits/connections"):
        yield await connection_limit(target, access)
    if wants("limits/rate"):
        yield await rate_limit(target, access)


def _wanted_suffixes(target: WsTarget) -> list[str]:
    prefix = contract_id(target, "")
    return [
        row[0]
        for row in _rows(target.contract, target.ctx.settings)
        if row[0] != CONTROL and target.ctx.progress.wants(prefix + row[0])
    ]


@category(
    CATEGORY,
    order=40,
    description=(
        "WebSocket endpoints: handshake auth matrix, frame schemas both ways, conversations, "
        "protocol hygiene, limits, user isolation and frame fuzzing"
    ),
)
async def websocket_contracts(ctx: RunContext) -> AsyncIterator[ContractResult]:
    contracts: tuple[WebSocketContract, ...] = ctx.spec.websockets
    for contract in contracts:
        target = WsTarget.of(ctx, contract)
        suffixes = [row[0] for row in _rows(contract, ctx.settings)]
        if not any(ctx.progress.wants(contract_id(target, s)) for s in suffixes):
            continue
        blocked = ctx.progress.blocked(contract_id(target, CONTROL))
        if blocked is not None:
            # The route is missing: every handshake would repeat the inventory's finding.
            for suffix, name, _ in _rows(contract, ctx.settings):
                yield skipped(target, suffix, name, blocked)
            continue
        async for result in check_websocket(target):
            yield result


def _rows(contract: WebSocketContract, settings: RunSettings) -> list[tuple[str, str, float]]:
    """``(suffix, name, cost)`` of every contract :func:`check_websocket` reports, in order."""
    rows: list[tuple[str, str, float]] = []
    rows.append((CONTROL, control_name(contract), 0.5))
    rows.append(("auth/no-token", "unauthenticated connections are refused", 0.5))
    for carrier in contract.carriers:
        slug = carrier_slug(contract.carriers, carrier)
        for forgery in FORGERIES:
            name = f"{forgery.name} are refused ({carrier.kind})"
            rows.append((f"auth/{slug}/{forgery.slug}", name, 0.2))
    for carrier in contract.forbidden_carriers:
        slug = carrier_slug(contract.forbidden_carriers, carrier)
        name = forbidden_name(carrier)
        rows.append((f"auth/{slug}-token", name, 0.2))
    if contract.origin_allowlist is not None:
        for slug, origin in ORIGIN_ROWS:
            rows.append((f"auth/{slug}", origin_name(contract, origin), 0.2))
    if contract.expiry_close_code is not None:
        name = f"connections close with {contract.expiry_close_code} when their token expires"
        rows.append(("auth/expiry", name, 3.0))
    if not contract.messages_declared:
        return rows  # no frames described: the handshake is all there is to check
    if contract.welcome_type is not None:
        name = f"the first frame is a valid {contract.welcome_type} frame"
        rows.append(("frames/welcome", name, 0.2))
    flow_cost = contract.deadlines.total / 4
    rows += [(f"flow:{flow.name}", flow_name(flow), flow_cost) for flow in contract.flows]
    name = "the server sends heartbeat pings and the channel survives them"
    rows.append(("heartbeat", name, contract.heartbeat_interval or 0.0))
    rows += [
        (f"hygiene/{h.slug}", hostile_name(h, contract.on_invalid_input.get(h.slug)), 0.5)
        for h in HOSTILE_INPUTS
    ]
    rows.append(("isolation", "users never receive each other's frames", 2.0))
    rows.append(("isolation/threads", "users cannot switch to or read each other's threads", 1.0))
    name = "any client frame gets schema-valid answers and never kills the connection"
    rows.append(("fuzz", name, settings.max_examples * 0.1))
    rows.append(("frames/server", "every frame the server sends matches its schema", 0.0))
    rows.append(("limits/connections", connections_name(contract.limits.connections_per_user), 1))
    reaction = contract.on_invalid_input.get("rate-limited")
    signal = reaction.error_code if reaction else None
    rows.append(("limits/rate", rate_name(contract.limits.messages_per_minute, signal), 10.0))
    return rows


@planner(CATEGORY)
def plan_websocket(spec: Spec, settings: RunSettings) -> list[PlannedContract]:
    """Every contract of every WebSocket endpoint; each needs its route to exist."""
    return [
        PlannedContract(
            id=f"{CATEGORY}/{contract.operation.label}/{suffix}",
            category=CATEGORY,
            name=name,
            tier=contract.operation.tier,
            target=contract.operation.label,
            requires=(f"inventory/{contract.operation.label}",),
            tier_source=contract.operation.tier_source,
            uses=() if suffix == CONTROL else (f"{CATEGORY}/{contract.operation.label}/{CONTROL}",),
            cost=cost,
        )
        for contract in spec.websockets
        for suffix, name, cost in _rows(contract, settings)
    ]
