"""Bounded and honest: partial evidence is inconclusive, hostile input ends as a finding."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from chatcontract.reference.config import ServerConfig
from chatcontract.reference.server import running_reference
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.ws.client import KEPT_FRAMES, Presented, handshake, open_socket
from chatcontract.ws.conversation import MAX_FRAMES_PER_FLOW, _rest_thread, follow, run_flow
from chatcontract.ws.frames import FrameValidator
from chatcontract.ws.handshake import Access, positive_control
from chatcontract.ws.isolation import NOT_PROBED, isolation_contracts
from tests.ws import hostile
from tests.ws.helpers import (
    _SPEC,
    MintedCredentials,
    make_ctx,
    messages,
    reference_ctx,
    spec_with,
    target_of,
)
from tests.ws.test_fuzz import _fuzz
from tests.ws.test_hostile import FAST, _category, _ctx

_ids = itertools.count(100000)


def _event(
    kind: str, thread: str, payload: dict[str, Any], run: str = "run_aaaaaaaaaaaa"
) -> dict[str, Any]:
    return {
        "type": kind,
        "run_id": run,
        "thread_id": thread,
        "timestamp": "2025-09-07T13:10:00Z",
        "payload": payload,
    }


def _ack(thread: str) -> dict[str, Any]:
    return {"type": "message_ack", "message_id": f"msg_{next(_ids)}aa", "thread_id": thread}


async def _isolation(behaviour: hostile.Behaviour) -> tuple[dict[str, ContractResult], float]:
    async with hostile.hostile_server(behaviour) as url:
        target = target_of(_ctx(url))
        access = Access(primary=target.contract.carriers[0])
        started = time.monotonic()
        async with asyncio.timeout(FAST.total + 10):
            results = await isolation_contracts(target, access)
        elapsed = time.monotonic() - started
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in results}, elapsed


def test_thread_isolation_without_a_buildable_probe_is_inconclusive() -> None:
    """Nothing probed is nothing proved: a server that grants foreign threads must not pass."""
    ws = _SPEC.websockets[0]
    client = {
        k: v
        for k, v in ws.client_schemas.items()
        if k not in ("switch_thread", "get_thread_history")
    }
    with running_reference(faults=frozenset({"thread-idor"})) as server:
        ctx = reference_ctx(server)
        ctx.spec = spec_with(client_schemas=client)

        async def main() -> list[ContractResult]:
            target = target_of(ctx)
            _, access = await positive_control(target)
            return await isolation_contracts(target, access)

        results = {r.id.rsplit("/ws/", 1)[1]: r for r in asyncio.run(main())}
    assert results["isolation/threads"].outcome is Outcome.INCONCLUSIVE
    assert results["isolation/threads"].reason == NOT_PROBED


async def _acks_then_silent(peer: hostile.Peer) -> None:
    await peer.accept()
    await peer.send_json(hostile.WELCOME)
    await peer.read_frame()
    await peer.send_json(_ack(f"thread_{next(_ids)}own"))
    await peer.wait_for_close()


def test_event_isolation_on_runs_that_never_ended_is_inconclusive() -> None:
    """A run read only up to its ack cannot show that nothing leaks later."""
    results, _ = asyncio.run(_isolation(_acks_then_silent))
    events = results["isolation"]
    assert events.outcome is Outcome.INCONCLUSIVE, events
    assert "did not reach its terminal event" in events.reason


async def _chatty(peer: hostile.Peer) -> None:
    await peer.accept()
    await peer.send_json(hostile.WELCOME)
    await peer.read_frame()
    thread = f"thread_{next(_ids)}own"
    await peer.send_json(_ack(thread))
    await peer.send_json(
        _event(
            "agent_error",
            thread,
            {"error_code": "AGENT_FAILED", "message": "m"},
            run=f"run_{next(_ids)}xx",
        )
    )
    while True:
        await peer.send_json({"type": "pong"})
        await asyncio.sleep(0.1)


def test_a_server_that_never_stops_talking_cannot_stall_isolation() -> None:
    """The drain after the runs has one deadline, not one per frame."""
    results, elapsed = asyncio.run(_isolation(_chatty))
    # drain (1 s) + four unanswered probes (0.5 s each) + two closes it never answers (1 s each)
    assert elapsed < 8, f"took {elapsed:.1f} s"
    assert results["isolation"].outcome is Outcome.PASSED, messages(results["isolation"])


def _agent_behaviour(*events: dict[str, Any], repeat_last: int = 1) -> hostile.Behaviour:
    async def behaviour(peer: hostile.Peer) -> None:
        await peer.accept()
        await peer.send_json(hostile.WELCOME)
        opcode, _ = await peer.read_frame()
        if opcode == 0x8:
            return
        for value in events[:-1]:
            await peer.send_json(value)
        for _ in range(repeat_last):
            await peer.send_json(events[-1])
        await peer.wait_for_close()

    return behaviour


_THREAD = "thread_bbbbbbbbbbbb"
_STARTED = _event("agent_started", _THREAD, {"agent_name": "research", "message": "m"})
_CHUNK = _event("response_chunk", _THREAD, {"content": "c", "is_final": True})
_COMPLETED = _event("agent_completed", _THREAD, {"result": "r", "duration_ms": 1})


async def _start_agent(behaviour: hostile.Behaviour) -> ContractResult:
    async with hostile.hostile_server(behaviour) as url:
        target = target_of(_ctx(url))
        access = Access(primary=target.contract.carriers[0])
        flow = next(f for f in target.contract.flows if f.name == "start-agent")
        return await run_flow(target, access, flow)


def test_a_second_terminal_event_is_caught_after_the_first() -> None:
    """Reading stops a moment after the terminal, not at it, or after-terminal never fires."""
    result = asyncio.run(
        _start_agent(_agent_behaviour(_STARTED, _CHUNK, _COMPLETED, repeat_last=2))
    )
    assert result.outcome is Outcome.FAILED
    assert "event #4 (agent_completed)" in messages(result)
    assert "frame #5 (agent_completed)" in messages(result)


def test_clean_run_with_one_terminal_still_passes() -> None:
    result = asyncio.run(_start_agent(_agent_behaviour(_STARTED, _CHUNK, _COMPLETED)))
    assert result.outcome is Outcome.PASSED, messages(result)


def test_an_endless_answer_is_cut_at_the_frame_cap_and_memory_stays_bounded() -> None:
    """A server that floods one run ends the flow with a finding; the socket keeps a ring."""

    async def main() -> tuple[list[str], int, int]:
        behaviour = _agent_behaviour(_STARTED, _CHUNK, repeat_last=MAX_FRAMES_PER_FLOW + 50)
        async with hostile.hostile_server(behaviour) as url:
            target = target_of(_ctx(url))
            carrier = target.contract.carriers[0]
            presented = target.presented(carrier, await target.token())
            sock = await open_socket(target, presented, target.transcript())
            frame = {"type": "start_agent", "payload": {"agent": "research", "message": "m"}}
            await sock.send_frame(frame)
            sequence = target.ctx.spec.sequences["agent-run"]
            outcome = await follow(target, sock, frame, expect_first=None, sequence=sequence)
            await sock.close()
            return [f.message for f in outcome.findings], len(sock.received), sock.index

    found, kept, seen = asyncio.run(main())
    assert any(f"more than {MAX_FRAMES_PER_FLOW} frames" in m for m in found), found
    assert kept == KEPT_FRAMES
    assert seen > MAX_FRAMES_PER_FLOW


async def _bigint_welcome(peer: hostile.Peer) -> None:
    await peer.accept()
    await peer.send_text(b'{"type":"connection_established","n":' + b"1" * 5000 + b"}")
    await peer.wait_for_close()


def test_a_huge_integer_in_a_frame_is_a_finding_not_a_crash() -> None:
    results, _ = asyncio.run(_category(_bigint_welcome))
    assert "internal-error" not in results
    control = results["auth/positive-control"]
    assert control.outcome is Outcome.FAILED
    assert "not JSON" in messages(control)


def test_hostile_json_decodes_to_a_frame_problem() -> None:
    validator = FrameValidator(spec_with().websockets[0])
    for text in ("[" * 100_000 + "]" * 100_000, "1" * 5000, '{"a": NaN}', '{"a": 1e999}'):
        value, check = validator.check_server_text(text)
        assert value is None
        assert check.problems[0].startswith("/: not JSON"), check


async def _rest_bad_json(peer: hostile.Peer) -> None:
    await peer.request()
    body = b'{"id": ' + b"[" * 50_000
    peer.writer.write(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await peer.writer.drain()


def test_a_broken_create_thread_body_is_noted_not_raised() -> None:
    async def main() -> tuple[str | None, str]:
        async with hostile.hostile_server(_rest_bad_json) as url:
            target = target_of(_ctx(url))
            transcript = target.transcript()
            thread = await _rest_thread(target, None, transcript)
        return thread, json.dumps([e.content for e in transcript.entries()])

    thread, notes = asyncio.run(main())
    assert thread is None
    assert "POST /api/threads failed" in notes


def test_an_invalid_url_is_a_broken_handshake_without_userinfo() -> None:
    """A bad port or bracket is a one-line verdict; a password in the URL is never shown."""
    for base, shown in (
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://user:s3cret@127.0.0.1:99999", "Port out of range"),
    ):
        target = target_of(make_ctx(base, MintedCredentials(ServerConfig())))
        transcript = target.transcript()
        result = asyncio.run(handshake(target, Presented("x", target.url), transcript))
        assert result.outcome == "broken", result
        assert shown in result.detail
        assert "\n" not in result.detail
        assert "s3cret" not in result.detail + json.dumps([e.content for e in transcript.entries()])


def test_fuzz_with_no_exchange_is_inconclusive_with_the_reason() -> None:
    async def main() -> ContractResult:
        async with hostile.hostile_server(hostile.fuzz_victim("never_sent_key")) as url:
            return await _fuzz(url, time_budget=0.0)

    result = asyncio.run(main())
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.reason == "no example was exchanged: time budget of 0 s spent"


def test_cancelling_a_fuzz_run_stops_its_hypothesis_thread() -> None:
    """The worker thread outlives a cancelled task unless it is told to stop."""
    frames: list[int] = []

    async def counting_victim(peer: hostile.Peer) -> None:
        await peer.accept()
        await peer.send_json(hostile.WELCOME)
        while True:
            opcode, data = await peer.read_frame()
            frames.append(opcode)
            if opcode == 0x8:
                await peer.send_raw(hostile.frame(0x8, data[:2]))
                return
            await peer.send_json({"type": "pong"})

    async def main() -> tuple[int, int]:
        async with hostile.hostile_server(counting_victim) as url:
            task = asyncio.create_task(_fuzz(url, max_examples=100_000, time_budget=20.0))
            while len(frames) < 10:
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0.5)
            settled = len(frames)
            await asyncio.sleep(1.0)
            return settled, len(frames)

    settled, later = asyncio.run(main())
    assert later == settled, f"{later - settled} frames sent after the cancel"
