"""Against the reference server: the clean one keeps every contract, each fault is caught."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from chatcontract.reference.server import running_reference
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.rest.control import PositiveControl
from chatcontract.spec import WebSocketDeadlines
from chatcontract.ws.client import WsTarget
from chatcontract.ws.conversation import run_flow
from chatcontract.ws.handshake import auth_matrix, positive_control
from chatcontract.ws.hygiene import hygiene_contracts
from chatcontract.ws.isolation import isolation_contracts
from tests.ws.helpers import (
    messages,
    not_passed,
    reference_ctx,
    run_websocket,
    spec_with,
    target_of,
)

Group = Callable[[WsTarget, Any], Coroutine[Any, Any, list[ContractResult]]]


def test_clean_reference_keeps_every_websocket_contract() -> None:
    """The reference implements the spec, so anything but a pass is a checker bug."""
    # Pings every 0.3 s, announced as 1 s: the heartbeat window is 1.25 * 1 + 1 = 2.25 s,
    # and the idle deadline is raised to hold it, so a loaded machine still sees a ping.
    with running_reference(ws_heartbeat_seconds=0.3) as server:
        ctx = reference_ctx(server)
        ctx.spec = spec_with(
            WebSocketDeadlines(handshake=2.0, first_frame=2.0, idle=3.0, total=10.0)
        )
        results = run_websocket(ctx)
    assert not not_passed(results)
    assert len(results) >= 38
    for key in (
        "auth/positive-control",
        "auth/no-token",
        "auth/header/expired",
        "auth/subprotocol/alg-none",
        "auth/header/garbled",
        "auth/subprotocol/unissued",
        "auth/query-token",
        "frames/welcome",
        "flow:start-agent",
        "flow:thread-history",
        "heartbeat",
        "hygiene/invalid-json",
        "hygiene/oversize",
        "limits/connections",
        "limits/rate",
        "isolation",
        "fuzz",
    ):
        assert key in results, key
    assert results["auth/no-token"].name == "unauthenticated connections are refused"
    assert results["auth/header/expired"].name == "expired tokens are refused (header)"
    assert int(results["fuzz"].details["examples"]) >= 1
    # The threads made for the needs-thread flows are deleted through deleteThread.
    cleanup = results["limits/rate"].details
    assert "not cleaned up" not in cleanup
    assert cleanup["cleaned up"].startswith("DELETE /api/threads/thread_")


def test_without_a_signing_key_the_key_rows_are_skipped_with_the_reason() -> None:
    with running_reference() as server:
        ctx = reference_ctx(server, signing_key=None)
        results = asyncio.run(_group(ctx, _auth))
    expired = results["auth/header/expired"]
    assert expired.outcome is Outcome.SKIPPED
    assert expired.reason == "needs a signing key (CHATCONTRACT_SIGNING_KEY)"
    assert results["auth/subprotocol/bad-signature"].outcome is Outcome.PASSED


async def _auth(target: WsTarget, access: Any) -> list[ContractResult]:
    return [r async for r in auth_matrix(target, access)]


async def _flows(target: WsTarget, access: Any) -> list[ContractResult]:
    return [await run_flow(target, access, flow) for flow in target.contract.flows[:2]]


async def _group(ctx: Any, group: Group) -> dict[str, ContractResult]:
    target = target_of(ctx)
    control, access = await positive_control(target)
    assert control.outcome is Outcome.PASSED, control
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in await group(target, access)}


FAULTS = [
    (
        "ws-accepts-no-token",
        _auth,
        "auth/no-token",
        "accepted the handshake (101) instead of HTTP 401 or 403 and sent a "
        "'connection_established' frame for user_id='anonymous'",
    ),
    ("ws-accepts-expired", _auth, "auth/header/expired", "accepted the handshake (101)"),
    (
        "accepts-alg-none",
        _auth,
        "auth/subprotocol/alg-none-mixed-case",
        "accepted the handshake (101)",
    ),
    ("ws-accepts-query-token", _auth, "auth/query-token", "accepted the handshake (101)"),
    (
        "events-out-of-order",
        _flows,
        "flow:start-agent",
        # Events count from the run's first event; the location keeps the frame number.
        "frame #4 (tool_completed): agent-run pair: event #3 (tool_completed): closes tool call",
    ),
    ("missing-terminal", _flows, "flow:start-agent", "agent-run missing-terminal"),
    (
        "cross-user-leak",
        isolation_contracts,
        "isolation",
        "alice received a frame carrying bob's canary",
    ),
    (
        "ws-drops-oversize",
        hygiene_contracts,
        "hygiene/oversize",
        "silently dropped: no close 1009, and the connection still answers the next ping",
    ),
    (
        "ws-acks-unknown-type",
        hygiene_contracts,
        "hygiene/unknown-type",
        "answered with 'message_ack' instead of an error frame UNKNOWN_MESSAGE_TYPE",
    ),
    (
        "ws-bad-json-1011",
        hygiene_contracts,
        "hygiene/invalid-json",
        "closed with 1011 (internal error) on client input",
    ),
]


@pytest.mark.parametrize(("fault", "group", "key", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_websocket_fault_profile_is_caught_precisely(
    fault: str, group: Group, key: str, expected: str
) -> None:
    with running_reference(faults=frozenset({fault})) as server:
        ctx = reference_ctx(server)
        if fault != "ws-accepts-expired":
            # The expiry row waits out a token with >= 3 s to live; only its own fault needs it.
            ctx.spec = spec_with(expiry_close_code=None)
        results = asyncio.run(_group(ctx, group))
    assert results[key].outcome is Outcome.FAILED, not_passed(results)
    assert expected in messages(results[key])
    finding = results[key].failures[0]
    assert finding.transcript
    assert "chatcontract run --category websocket --seed 7" in (finding.repro or "")
    # Only the contracts the profile breaks fail; their neighbours in the group still hold.
    failed = {k for k, r in results.items() if r.outcome is Outcome.FAILED}
    assert failed <= {key, *ALSO_FAILS.get(fault, ())}


ALSO_FAILS = {
    "ws-accepts-expired": ("auth/subprotocol/expired", "auth/expiry"),
    "accepts-alg-none": (
        "auth/header/alg-none",
        "auth/header/alg-none-mixed-case",
        "auth/subprotocol/alg-none",
    ),
    "events-out-of-order": ("flow:user-message",),
}


def test_a_withheld_terminal_event_is_waited_for_once() -> None:
    """Issue #10: the first run that never ends fails; the next flow that follows a run is
    inconclusive, naming it, instead of waiting out the same deadline again."""
    with running_reference(faults=frozenset({"missing-terminal"})) as server:
        ctx = reference_ctx(server)
        ctx.spec = spec_with(expiry_close_code=None)
        results = asyncio.run(_group(ctx, _flows))
    assert results["flow:start-agent"].outcome is Outcome.FAILED
    later = results["flow:user-message"]
    assert later.outcome is Outcome.INCONCLUSIVE
    assert later.reason.startswith(
        "the endpoint stalled in websocket/GET /ws/flow:start-agent: no frame for 1.5 s "
        "(idle deadline) after sending start_agent"
    )
    assert later.duration < 0.1


def test_staging_2025_09_is_credentials_rejected_not_a_pass_or_a_failure() -> None:
    """The status report's issue #1: WS refuses tokens REST accepts with 403. The anonymous
    row still holds; everything that needs a working token is inconclusive, never passed."""
    with running_reference(faults=frozenset({"staging-2025-09"})) as server:
        ctx = reference_ctx(server)
        ctx.services.control = PositiveControl(
            True, operation="GET /api/agents", statuses={"alice": 200, "bob": 200}
        )
        results = run_websocket(ctx)
    assert results["auth/no-token"].outcome is Outcome.PASSED
    control = results["auth/positive-control"]
    assert control.outcome is Outcome.INCONCLUSIVE
    assert control.reason.startswith("credentials rejected: HTTP 403 at the handshake")
    assert "REST accepted the same credentials" in control.reason
    rest = {k: r for k, r in results.items() if k != "auth/no-token"}
    assert {r.outcome for r in rest.values()} == {Outcome.INCONCLUSIVE}
    assert all(r.reason.startswith("credentials rejected") for r in rest.values())
    assert not any(r.outcome is Outcome.FAILED for r in results.values())


def test_declared_origin_allowlist_is_enforced_at_the_handshake() -> None:
    """The reference checks no Origin, so a spec that declares an allowlist catches it."""
    spec = spec_with(
        origin_allowlist=("https://chat.example",),
        origin_rejection_status=403,
        expiry_close_code=None,
    )
    with running_reference() as server:
        ctx = reference_ctx(server)
        ctx.spec = spec
        results = asyncio.run(_group(ctx, _auth))
    for key in ("auth/origin-foreign", "auth/origin-null"):
        assert results[key].outcome is Outcome.FAILED
        assert "accepted the handshake (101) instead of HTTP 403" in messages(results[key])
    assert "Origin: null" in results["auth/origin-null"].failures[0].transcript[0].content
