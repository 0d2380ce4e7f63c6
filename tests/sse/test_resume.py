"""Last-Event-ID resumption against servers that replay, skip or mix up events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chatcontract.context import RunContext
from chatcontract.reference.config import ServerConfig
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import load_spec
from chatcontract.sse.contracts import sse_contracts
from chatcontract.sse.session import OPTIONS_KEY

from . import hostile
from .test_contracts import FAST, Tokens

SPEC = load_spec()
RESUME = "sse/POST /api/agents/stream/resume"
RUN = "run_aaaaaaaaaaaa"
OTHER = "run_bbbbbbbbbbbb"
KINDS = [
    ("agent_started", {"agent_name": "research", "message": "hi"}),
    ("agent_thinking", {"thought": "hmm", "step_number": 1}),
    ("tool_executing", {"tool_call_id": "call_1", "tool_name": "t", "parameters": {}}),
    (
        "tool_completed",
        {"tool_call_id": "call_1", "tool_name": "t", "result": 1, "execution_time_ms": 2},
    ),
    ("response_chunk", {"content": "ok", "is_final": True}),
    ("agent_completed", {"result": "ok", "duration_ms": 5}),
]


def frame(number: int, run: str = RUN) -> bytes:
    kind, payload = KINDS[number - 1]
    data = {
        "type": kind,
        "run_id": run,
        "thread_id": "thread_cccccccccccc",
        "timestamp": f"2025-09-07T13:10:0{number}Z",
        "payload": payload,
    }
    return f"event: {kind}\nid: {run}:{number}\ndata: {json.dumps(data)}\n\n".encode()


def resumable(mode: str) -> hostile.Behaviour:
    async def behave(request: hostile.Request, writer: Any) -> None:
        if request.path != "/api/agents/stream":
            await hostile.status(404)(request, writer)
            return
        await hostile.send_head(writer)
        last = request.headers.get("last-event-id")
        after = int(last.rsplit(":", 1)[1]) if last else 0
        numbers = list(range(after + 1, len(KINDS) + 1))
        run = RUN
        if last and mode == "replay":
            numbers = list(range(1, len(KINDS) + 1))
        elif last and mode == "gap":
            numbers = numbers[1:]
        elif last and mode == "foreign":
            run = OTHER
        elif last and mode == "empty":
            numbers = []
        for number in numbers:
            await hostile.chunk(writer, frame(number, run))
        await hostile.end(writer)

    return behave


def resume_result(mode: str) -> ContractResult:
    return resume_result_of(resumable(mode))


def resume_result_of(behaviour: hostile.Behaviour) -> ContractResult:
    async def main() -> ContractResult:
        async with hostile.hostile_server(behaviour) as url:
            ctx = RunContext(spec=SPEC, base_url=url, credentials=Tokens(ServerConfig()))
            ctx.cache[OPTIONS_KEY] = FAST
            return next([r async for r in sse_contracts(ctx) if r.id == RESUME].__iter__())

    return asyncio.run(main())


def test_a_correct_resume_passes() -> None:
    result = resume_result("clean")
    assert result.outcome is Outcome.PASSED, [f.message for f in result.findings]
    assert result.details == {"resumed after": f"{RUN}:3", "events": "3 + 3"}


def test_replayed_events_are_reported_as_repeats() -> None:
    result = resume_result("replay")
    assert result.outcome is Outcome.FAILED
    messages = [f.message for f in result.failures]
    assert (
        f"POST /api/agents/stream: resumed event #4 (agent_started) repeats id '{RUN}:1' of "
        "event #1, received before the reconnect"
    ) in messages


def test_skipped_events_are_reported_as_a_gap() -> None:
    result = resume_result("gap")
    messages = [f.message for f in result.failures]
    assert (
        f"POST /api/agents/stream: resumed event #4 (response_chunk) has id '{RUN}:5' right "
        f"after '{RUN}:3': 1 event missing"
    ) in messages
    # The lost tool_completed also leaves its tool call open across the two legs.
    assert (
        "POST /api/agents/stream (across the reconnect after event #3) event #5 "
        "(agent_completed): ends the run while tool call 'call_1' opened by event #3 "
        "(tool_executing) is still open (no tool_completed)"
    ) in messages


def test_events_of_another_run_are_reported_as_foreign() -> None:
    result = resume_result("foreign")
    messages = [f.message for f in result.failures]
    assert (
        f"POST /api/agents/stream: resumed event #4 (tool_completed) belongs to /run_id "
        f"'{OTHER}', not the resumed run's '{RUN}'"
    ) in messages


def test_a_resume_that_sends_nothing_fails() -> None:
    messages = [f.message for f in resume_result("empty").failures]
    assert messages[0] == (
        f"POST /api/agents/stream: the reconnect with Last-Event-ID: {RUN}:3 sent no events, "
        "although a full run of the same request has 3 more after event #3"
    )


@pytest.mark.parametrize("mode", ["replay", "gap", "foreign", "empty"])
def test_resume_failures_carry_the_reconnect_as_repro(mode: str) -> None:
    finding = resume_result(mode).failures[0]
    assert finding.repro is not None
    assert f"-H 'Last-Event-ID: {RUN}:3'" in finding.repro
    assert finding.transcript


def test_an_event_with_a_fresh_id_is_not_a_repeat_for_its_data() -> None:
    """Two thoughts may say the same thing; only the id tells a replay from a new event."""
    thought = frame(2).split(b"data: ", 1)[1]

    async def behave(request: hostile.Request, writer: Any) -> None:
        if request.path != "/api/agents/stream":
            await hostile.status(404)(request, writer)
            return
        await hostile.send_head(writer)
        frames = [
            frame(1),
            frame(2),
            frame(3),
            f"event: agent_thinking\nid: {RUN}:4\ndata: ".encode() + thought,
        ]
        frames += [
            frame(n).replace(f"{RUN}:{n}".encode(), f"{RUN}:{n + 1}".encode()) for n in (4, 5, 6)
        ]
        last = request.headers.get("last-event-id")
        after = int(last.rsplit(":", 1)[1]) if last else 0
        for data in frames[after:]:
            await hostile.chunk(writer, data)
        await hostile.end(writer)

    result = resume_result_of(behave)
    assert result.outcome is Outcome.PASSED, [f.message for f in result.findings]
    assert result.details["events"] == "3 + 4"


def test_a_shorter_second_run_is_inconclusive_not_a_resume_failure() -> None:
    """Runs of one request may differ in length; resumption was never tried."""
    served = 0

    async def behave(request: hostile.Request, writer: Any) -> None:
        nonlocal served
        if request.path != "/api/agents/stream":
            await hostile.status(404)(request, writer)
            return
        served += 1
        await hostile.send_head(writer)
        for number in range(1, (len(KINDS) if served == 1 else 2) + 1):
            await hostile.chunk(writer, frame(number))
        await hostile.end(writer)

    result = resume_result_of(behave)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.reason == (
        "POST /api/agents/stream: a second run of the same request was shorter than event #3: "
        "it ended after 2 events (eof)"
    )
    assert result.findings == ()
