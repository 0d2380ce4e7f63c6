"""Hostile servers: every misbehaviour ends within its deadline plus a second, as a finding."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chatcontract.reference.config import ServerConfig
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import WebSocketDeadlines
from chatcontract.ws.contracts import websocket_contracts
from chatcontract.ws.conversation import run_flow
from chatcontract.ws.handshake import auth_matrix, positive_control
from tests.ws import hostile
from tests.ws.helpers import MintedCredentials, make_ctx, messages, spec_with, target_of

FAST = WebSocketDeadlines(handshake=0.5, first_frame=0.5, idle=0.5, total=3.0)
SLACK = 1.0


def _ctx(url: str, **settings: Any) -> Any:
    return make_ctx(
        url,
        MintedCredentials(ServerConfig()),
        spec=spec_with(FAST),
        target_is_reference=False,
        **settings,
    )


async def _category(
    behaviour: hostile.Behaviour, **settings: Any
) -> tuple[dict[str, ContractResult], float]:
    """The websocket category alone, timed: its inventory prerequisite (plain HTTP, with
    its own deadlines) is not what these servers test."""
    async with hostile.hostile_server(behaviour) as url:
        # Setup (spec model, schema compilation) is not the server's time: build it first.
        ctx = _ctx(url, **settings)
        target_of(ctx)
        started = time.monotonic()
        results = [r async for r in websocket_contracts(ctx)]
        elapsed = time.monotonic() - started
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in results}, elapsed


@pytest.mark.parametrize(
    ("behaviour", "deadline", "expected"),
    [
        pytest.param(
            hostile.never_answers,
            FAST.handshake,
            "no handshake response within 0.5 s",
            id="never-answers-handshake",
        ),
        pytest.param(
            hostile.accepts_then_silent,
            FAST.first_frame,
            "no frame within 0.5 s after the 101",
            id="accepts-never-sends",
        ),
        pytest.param(
            hostile.huge_frame,
            FAST.first_frame,
            "a message larger than 4194304 bytes",
            id="100mb-frame",
        ),
        pytest.param(
            hostile.invalid_utf8,
            FAST.first_frame,
            "invalid UTF-8 in a text frame",
            id="invalid-utf8",
        ),
    ],
)
def test_broken_handshake_or_welcome_is_a_bounded_finding(
    behaviour: hostile.Behaviour, deadline: float, expected: str
) -> None:
    """A server that cannot even open the channel fails the positive control, fast, and
    leaves every other contract inconclusive rather than waiting out its deadline again."""
    results, elapsed = asyncio.run(_category(behaviour))
    control = results["auth/positive-control"]
    assert control.outcome is Outcome.FAILED
    assert expected in messages(control)
    assert control.findings[0].transcript, "the evidence carries the exchange"
    assert elapsed <= deadline + SLACK, f"took {elapsed:.2f} s"
    others = [r for k, r in results.items() if k != "auth/positive-control"]
    assert all(r.outcome in (Outcome.INCONCLUSIVE, Outcome.SKIPPED) for r in others)
    assert "positive control failed" in results["flow:start-agent"].reason


def test_drop_mid_conversation_is_a_bounded_finding() -> None:
    """A connection that dies under a flow is reported at once, not after the idle deadline."""

    async def main() -> tuple[ContractResult, float]:
        async with hostile.hostile_server(hostile.drops_mid_conversation) as url:
            target = target_of(_ctx(url))
            _, access = await positive_control(target)
            started = time.monotonic()
            flow = next(f for f in target.contract.flows if f.name == "start-agent")
            result = await run_flow(target, access, flow)
            return result, time.monotonic() - started

    result, elapsed = asyncio.run(main())
    assert result.outcome is Outcome.FAILED
    assert "the server dropped the connection without a close frame" in messages(result)
    assert elapsed <= FAST.idle + SLACK


def test_drop_mid_conversation_never_crashes_the_category() -> None:
    results, elapsed = asyncio.run(_category(hostile.drops_mid_conversation))
    assert "internal-error" not in results
    assert results["flow:user-message"].outcome is Outcome.FAILED
    assert results["fuzz"].outcome is Outcome.FAILED
    assert "dropped the connection" in messages(results["fuzz"])
    assert elapsed < 15


async def _no_token_row(behaviour: hostile.Behaviour) -> ContractResult:
    async with hostile.hostile_server(behaviour) as url:
        target = target_of(_ctx(url))
        _, access = await positive_control(target)
        rows = auth_matrix(target, access)
        row = await anext(rows)
        await rows.aclose()
    assert row.id.endswith("/auth/no-token")
    return row


def test_close_1008_after_accept_is_the_weaker_pattern_with_the_spec_severity() -> None:
    """101 then close 1008 with no frame passes with a warning (the spec says severity: warning)."""
    row = asyncio.run(_no_token_row(hostile.close_after_accept()))
    assert row.outcome is Outcome.PASSED
    assert [f.severity for f in row.findings] == ["warning"]
    assert "then closed with 1008" in row.findings[0].message


def test_an_application_frame_before_the_1008_close_is_a_failure() -> None:
    error = {"type": "error", "error_code": "FORMAT_ERROR", "message": "authentication required"}
    row = asyncio.run(_no_token_row(hostile.close_after_accept(frames=(error,))))
    assert row.outcome is Outcome.FAILED
    assert (
        "accepted the handshake (101) instead of HTTP 401 or 403 and sent a 'error' frame"
        in messages(row)
    )


@pytest.mark.parametrize("code", [1005, 1006, 1015, 1004, 2000])
def test_a_close_code_that_must_never_be_sent_is_a_finding(code: int) -> None:
    async def main() -> ContractResult:
        async with hostile.hostile_server(hostile.illegal_close_code(code)) as url:
            target = target_of(_ctx(url))
            _, access = await positive_control(target)
            flow = next(f for f in target.contract.flows if f.name == "ping")
            return await run_flow(target, access, flow)

    result = asyncio.run(main())
    assert result.outcome is Outcome.FAILED
    assert "must never be sent" in messages(result) or "reserved" in messages(result)


def test_negative_handshakes_never_follow_redirects_or_retry() -> None:
    """A redirect is an answer, not an invitation: one connection, reported as the wrong status."""
    calls: list[str] = []
    row = asyncio.run(_no_token_row(hostile.counting(hostile.redirects, calls)))
    assert row.outcome is Outcome.FAILED
    assert "refused with HTTP 302; the contract says HTTP 401 or 403" in messages(row)
    # the positive control's two carriers, then exactly one anonymous attempt
    assert len(calls) == 3


async def _auth_rows(behaviour: hostile.Behaviour) -> dict[str, ContractResult]:
    async with hostile.hostile_server(behaviour) as url:
        target = target_of(_ctx(url))
        control, access = await positive_control(target)
        rows = [control] + [r async for r in auth_matrix(target, access)]
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in rows}


def test_a_carrier_the_server_ignores_fails_the_control_and_blocks_only_its_rows() -> None:
    results = asyncio.run(_auth_rows(hostile.header_only))
    control = results["auth/positive-control"]
    assert control.outcome is Outcome.FAILED
    assert "a valid token in the subprotocol jwt-auth was not accepted: HTTP 403" in messages(
        control
    )
    assert results["auth/subprotocol/alg-none"].outcome is Outcome.INCONCLUSIVE
    assert "positive control failed (subprotocol)" in results["auth/subprotocol/alg-none"].reason
    assert results["auth/header/alg-none"].outcome is Outcome.FAILED  # this server checks nothing


async def _spill(peer: hostile.Peer) -> None:
    # More than the kernel takes at once: the behaviour ends with bytes still buffered.
    peer.writer.write(b"x" * (16 << 20))


def test_teardown_after_a_buffered_close_that_completed_is_clean() -> None:
    """The 100 MB frame's rare teardown crash, made certain: the server's close() waits for
    its buffer, the write callback then ends the transport, and the block's teardown must
    not abort it again ('NoneType' object has no attribute 'call_soon')."""

    async def main() -> int:
        async with hostile.hostile_server(_spill) as url:
            port = int(url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            received = len(await reader.read())
            writer.close()
            await writer.wait_closed()
        return received

    assert asyncio.run(main()) == 16 << 20


def test_a_stalled_endpoint_costs_one_wait_not_one_per_contract() -> None:
    """Issue #10: the welcome, then nothing. The first flow waits out its deadline and fails;
    every later contract that would wait for an answer is inconclusive at once, naming it,
    so the whole category ends within twice its largest deadline (9 s before the fix)."""
    results, elapsed = asyncio.run(_category(hostile.stalls_after_welcome, check_limits=True))
    largest = max(FAST.handshake, FAST.first_frame, FAST.idle, FAST.total)
    assert elapsed <= 2 * largest + 2 * SLACK, f"took {elapsed:.2f} s"
    first = results["flow:start-agent"]
    assert first.outcome is Outcome.FAILED
    assert "no frame within 0.5 s (first-frame deadline) after sending start_agent" in messages(
        first
    )
    stalled = "the endpoint stalled in websocket/GET /ws/flow:start-agent: no frame within 0.5 s"
    later = [
        "flow:user-message",
        "flow:ping",
        "flow:switch-thread",
        "flow:thread-history",
        *(f"hygiene/{slug}" for slug in ("invalid-json", "unknown-type", "oversize")),
        "isolation",
        "isolation/threads",
        "fuzz",
        "limits/rate",
    ]
    for key in later:
        assert results[key].outcome is Outcome.INCONCLUSIVE, (key, results[key])
        assert results[key].reason.startswith(stalled), (key, results[key].reason)
    # Contracts that wait for nothing but the handshake are still judged.
    assert results["frames/welcome"].outcome is Outcome.PASSED
    assert results["auth/no-token"].outcome is Outcome.PASSED
