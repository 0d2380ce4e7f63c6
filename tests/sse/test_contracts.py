"""The ``sse`` category end to end: the reference server, clean and with each fault."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import TargetUnreachable
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.server import RunningReference, running_reference
from chatcontract.reference.tokens import mint_token
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.rest.control import PositiveControl
from chatcontract.runner import categories
from chatcontract.spec import load_spec
from chatcontract.spec.model import StreamDeadlines
from chatcontract.sse.contracts import sse_contracts
from chatcontract.sse.session import OPTIONS_KEY, SSEOptions

from . import hostile

SPEC = load_spec()
CHAT = "sse/POST /api/chat/stream"
AGENTS = "sse/POST /api/agents/stream"
FAST = SSEOptions(deadlines=StreamDeadlines(connect=2, first_event=2, idle=1, total=10))


class Tokens:
    """The Credentials protocol over the reference server's own token minting."""

    def __init__(self, config: ServerConfig | None, users: tuple[str, ...] = ("alice", "bob")):
        self.config = config
        self._users = users
        self.handed_out: list[str] = []

    @property
    def users(self) -> tuple[str, ...]:
        return self._users

    async def token(self, user: str | None = None) -> str:
        token = (
            mint_token(user or self._users[0], self.config)
            if self.config is not None
            else "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.bm90LWEtcmVhbC1zaWduYXR1cmU"
        )
        self.handed_out.append(token)
        return token

    def secrets(self) -> Iterable[str]:
        return list(self.handed_out)


def run_category(
    base_url: str,
    credentials: Tokens,
    options: SSEOptions = FAST,
    control: PositiveControl | None = None,
) -> dict[str, ContractResult]:
    ctx = RunContext(spec=SPEC, base_url=base_url, credentials=credentials)
    ctx.cache[OPTIONS_KEY] = options
    if control is not None:
        ctx.services.control = control

    async def collect() -> dict[str, ContractResult]:
        return {result.id: result async for result in sse_contracts(ctx)}

    return asyncio.run(collect())


@pytest.fixture
def reference() -> Iterator[Any]:
    def start(*faults: str) -> RunningReference:
        return stack.enter_context(running_reference(faults=frozenset(faults)))

    import contextlib

    with contextlib.ExitStack() as stack:
        yield start


def judge(server: RunningReference, **kw: Any) -> dict[str, ContractResult]:
    return run_category(server.url, Tokens(server.config), **kw)


def failures(result: ContractResult) -> list[str]:
    return [f.message for f in result.failures]


ALL_IDS = {
    f"{CHAT}/events",
    f"{CHAT}/sequence:chat-stream",
    f"{CHAT}/sequence:agent-run",
    f"{CHAT}/deadlines",
    f"{AGENTS}/events",
    f"{AGENTS}/sequence:agent-run",
    f"{AGENTS}/deadlines",
    f"{AGENTS}/resume",
    "sse/isolation",
}


def test_clean_reference_passes_every_stream_contract(reference: Any) -> None:
    results = judge(reference())
    assert set(results) == ALL_IDS
    bad = {
        rid: (r.outcome, r.reason, failures(r))
        for rid, r in results.items()
        if r.outcome is not Outcome.PASSED
    }
    assert bad == {}
    assert results[f"{CHAT}/events"].tier == "P1"
    assert results[f"{AGENTS}/resume"].details["events"].count("+") == 1


def test_events_out_of_order_fails_the_pair_rule(reference: Any) -> None:
    results = judge(reference("events-out-of-order"))
    for stream in (CHAT, AGENTS):
        found = failures(results[f"{stream}/sequence:agent-run"])
        assert any(
            "(tool_completed): closes tool call 'call_" in m
            and "that was never opened by tool_executing" in m
            for m in found
        ), found
    assert results[f"{AGENTS}/events"].outcome is Outcome.PASSED


def test_missing_terminal_fails_both_sequences(reference: Any) -> None:
    results = judge(reference("missing-terminal"))
    chat = failures(results[f"{CHAT}/sequence:chat-stream"])
    events = results[f"{CHAT}/events"].details["events"]
    assert chat == [
        f"POST /api/chat/stream the events ended without a terminal chat-stream event "
        f"(stream_end or error) after {events} chat-stream events"
    ]
    agent = failures(results[f"{AGENTS}/sequence:agent-run"])
    assert len(agent) == 1
    assert (
        "the events ended without a terminal agent-run event (agent_completed or agent_error)"
        in agent[0]
    )
    assert results[f"{AGENTS}/resume"].outcome is Outcome.INCONCLUSIVE


def test_event_drift_fails_the_events_result_with_the_pointer(reference: Any) -> None:
    results = judge(reference("event-drift"))
    for label, stream in (("POST /api/chat/stream", CHAT), ("POST /api/agents/stream", AGENTS)):
        found = failures(results[f"{stream}/events"])
        assert found
        assert all(m.startswith(f"{label} event #") for m in found)
        assert all(
            m.endswith('(agent_thinking) /payload/step_number: "1" is not of type "integer"')
            for m in found
        )


def test_cross_user_leak_fails_isolation_naming_user_and_canary(reference: Any) -> None:
    results = judge(reference("cross-user-leak"))
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.FAILED
    found = failures(isolation)
    assert any("bob received alice's canary 'canary-" in m for m in found), found
    assert any("alice received bob's canary 'canary-" in m for m in found), found
    assert any("received alice's run 'run_" in m for m in found), found
    leak = isolation.failures[0]
    assert leak.repro is not None
    assert "$CHATCONTRACT_TOKEN_2" in leak.repro
    assert leak.transcript


def test_stream_stall_misses_the_idle_deadline(reference: Any) -> None:
    results = judge(reference("stream-stall"))
    assert failures(results[f"{CHAT}/deadlines"]) == [
        "POST /api/chat/stream: idle deadline 1.0 s missed after event #1 (stream_start)"
    ]
    assert failures(results[f"{AGENTS}/deadlines"]) == [
        "POST /api/agents/stream: idle deadline 1.0 s missed after event #1 (agent_started)"
    ]
    sequence = failures(results[f"{AGENTS}/sequence:agent-run"])
    assert sequence[0].endswith(
        "(reading stopped early: idle deadline 1.0 s missed after event #1 (agent_started))"
    )
    assert results["sse/isolation"].outcome is Outcome.INCONCLUSIVE


def test_a_missing_stream_route_fails_every_result_of_that_stream(reference: Any) -> None:
    results = judge(reference("chat-stream-missing"))
    for rid, result in results.items():
        if rid.startswith(CHAT):
            assert result.outcome is Outcome.FAILED
            assert failures(result) == [
                "POST /api/chat/stream answered 404: the stream route is missing"
            ]
        else:
            assert result.outcome is Outcome.PASSED, (rid, failures(result), result.reason)


def test_failures_carry_a_redacted_transcript_and_a_curl_repro(reference: Any) -> None:
    server = reference("event-drift")
    credentials = Tokens(server.config)
    results = run_category(server.url, credentials)
    finding = results[f"{AGENTS}/events"].failures[0]
    assert finding.repro is not None
    assert finding.repro.startswith(f"curl -N -sS -X POST {server.url}/api/agents/stream")
    assert '"Authorization: Bearer $CHATCONTRACT_TOKEN"' in finding.repro
    assert finding.transcript[0].direction == "sent"
    assert finding.transcript[1].content.startswith("HTTP 200 content-type: text/event-stream")
    assert any("(agent_thinking)" in entry.content for entry in finding.transcript)
    offsets = [entry.offset for entry in finding.transcript]
    assert offsets == sorted(offsets)
    everything = repr(results)
    assert credentials.handed_out
    assert not any(token in everything for token in credentials.handed_out)


def test_rejected_credentials_make_results_inconclusive(reference: Any) -> None:
    server = reference()
    results = run_category(server.url, Tokens(None))
    for rid, result in results.items():
        assert result.outcome is Outcome.INCONCLUSIVE, rid
        assert result.reason.startswith("credentials rejected"), result.reason


def test_rest_positive_control_decides_without_an_extra_request(reference: Any) -> None:
    server = reference()
    rejected = PositiveControl(False, "credentials rejected: 401", statuses={"alice": 401})
    results = run_category(server.url, Tokens(None), control=rejected)
    reason = results[f"{CHAT}/events"].reason
    assert reason == (
        "credentials rejected: POST /api/chat/stream answered 401; the token was rejected by "
        "the REST positive control"
    )


def test_a_stream_route_refusing_working_credentials_fails() -> None:
    """The status report's case: REST accepts the token, the stream answers 403."""
    behaviour = hostile.routes(
        {"GET /api/agents": hostile.status(200, b"[]")}, hostile.status(403, b"{}")
    )

    async def main() -> dict[str, ContractResult]:
        async with hostile.hostile_server(behaviour) as url:
            ctx = RunContext(spec=SPEC, base_url=url, credentials=Tokens(ServerConfig()))
            ctx.cache[OPTIONS_KEY] = FAST
            return {r.id: r async for r in sse_contracts(ctx)}

    results = asyncio.run(main())
    assert failures(results[f"{CHAT}/events"]) == [
        "POST /api/chat/stream answered 403 to a token that GET /api/agents accepts: the stream "
        "route rejects valid credentials"
    ]
    assert results["sse/isolation"].outcome is Outcome.INCONCLUSIVE


def test_the_rest_positive_control_object_is_understood_per_user() -> None:
    """The REST category's PositiveControl says alice's token works: a 403 is the route's."""
    control = PositiveControl(
        True, operation="GET /api/agents", statuses={"alice": 200, "bob": 200}
    )
    results = run_category_on(hostile.status(403, b"{}"), control=control)
    assert failures(results[f"{AGENTS}/events"]) == [
        "POST /api/agents/stream answered 403 to a token that the REST positive control "
        "accepts: the stream route rejects valid credentials"
    ]
    rejected = PositiveControl(False, "credentials rejected: 401", statuses={"alice": 401})
    results = run_category_on(hostile.status(401, b"{}"), control=rejected)
    assert results[f"{AGENTS}/events"].outcome is Outcome.INCONCLUSIVE


def run_category_on(behaviour: hostile.Behaviour, **kw: Any) -> dict[str, ContractResult]:
    async def main() -> dict[str, ContractResult]:
        async with hostile.hostile_server(behaviour) as url:
            return await asyncio.to_thread(run_category, url, Tokens(ServerConfig()), **kw)

    return asyncio.run(main())


def test_isolation_is_skipped_with_a_single_user(reference: Any) -> None:
    server = reference()
    results = run_category(server.url, Tokens(server.config, users=("alice",)))
    assert results["sse/isolation"].outcome is Outcome.SKIPPED


def test_an_unreachable_target_raises() -> None:
    async def main() -> None:
        url = await hostile.refused_url()
        ctx = RunContext(spec=SPEC, base_url=url, credentials=Tokens(ServerConfig()))
        async for _ in sse_contracts(ctx):
            pass

    with pytest.raises(TargetUnreachable):
        asyncio.run(main())


def test_the_category_is_registered_with_the_runner() -> None:
    registered = {c.name: c for c in categories()}
    assert registered["sse"].order == 30
    assert registered["sse"].run is sse_contracts


def _agents_only(stream: hostile.Behaviour) -> hostile.Behaviour:
    return hostile.routes(
        {"GET /api/agents": hostile.status(200, b"[]"), "POST /api/agents/stream": stream},
        hostile.status(404),
    )


def test_an_empty_stream_fails_events_and_leaves_deadlines_inconclusive() -> None:
    """Zero events judged is no evidence that the events match the spec."""

    async def empty(request: hostile.Request, writer: Any) -> None:
        await hostile.send_head(writer)
        await hostile.end(writer)

    results = run_category_on(_agents_only(empty))
    assert failures(results[f"{AGENTS}/events"]) == [
        "POST /api/agents/stream: the stream ended before any event"
    ]
    deadlines = results[f"{AGENTS}/deadlines"]
    assert deadlines.outcome is Outcome.INCONCLUSIVE
    assert deadlines.reason == "the stream ended before any event, so no deadline could be judged"


def test_a_framing_error_leaves_deadlines_inconclusive() -> None:
    """Deadlines met until a framing error say nothing about the rest of the run."""

    async def bad_utf8(request: hostile.Request, writer: Any) -> None:
        await hostile.send_head(writer)
        await hostile.chunk(writer, hostile.agent_frame(1, "agent_started") + b"data: \xff\n\n")
        await hostile.end(writer)

    results = run_category_on(_agents_only(bad_utf8))
    assert results[f"{AGENTS}/events"].outcome is Outcome.FAILED
    deadlines = results[f"{AGENTS}/deadlines"]
    assert deadlines.outcome is Outcome.INCONCLUSIVE
    assert deadlines.reason == (
        "reading stopped on an error (SSE framing error (invalid-utf8)) before the run ended, "
        "so its deadlines could not be judged"
    )


async def _trickled_headers(request: hostile.Request, writer: Any) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.1)


async def _endless_body(request: hostile.Request, writer: Any) -> None:
    await hostile.send_head(writer, content_type="application/json", extra="")
    await hostile.chunk(writer, b"[")
    while True:
        await hostile.chunk(writer, b"{},")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("control", "outcome"),
    [(_trickled_headers, Outcome.INCONCLUSIVE), (_endless_body, Outcome.FAILED)],
)
def test_the_own_positive_control_is_bounded(control: hostile.Behaviour, outcome: Outcome) -> None:
    """httpx bounds each read; a control request trickled or endless must still end."""
    behaviour = hostile.routes({"GET /api/agents": control}, hostile.status(403, b"{}"))
    settings = RunSettings(connect_timeout=0.5, read_timeout=0.5)

    async def main() -> dict[str, ContractResult]:
        async with hostile.hostile_server(behaviour) as url:
            ctx = RunContext(
                spec=SPEC, base_url=url, credentials=Tokens(ServerConfig()), settings=settings
            )
            ctx.cache[OPTIONS_KEY] = FAST
            async with asyncio.timeout(10):
                return {r.id: r async for r in sse_contracts(ctx)}

    results = asyncio.run(main())
    events = results[f"{AGENTS}/events"]
    assert events.outcome is outcome
    if outcome is Outcome.INCONCLUSIVE:
        assert events.reason == (
            "credentials rejected: POST /api/agents/stream answered 403; the token was not "
            "confirmed (GET /api/agents did not answer within 1 s)"
        )
