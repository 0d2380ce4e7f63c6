"""A stalled stream costs one deadline per route, not one per contract that reads it (#10)."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatcontract.context import RunContext
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.server import running_reference
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import run_contracts
from chatcontract.spec import load_spec
from chatcontract.spec.model import StreamDeadlines
from chatcontract.sse.contracts import sse_contracts
from chatcontract.sse.session import OPTIONS_KEY, SSEOptions

from . import hostile
from .test_contracts import Tokens

SPEC = load_spec()
CHAT = "sse/POST /api/chat/stream"
AGENTS = "sse/POST /api/agents/stream"
DEADLINES = StreamDeadlines(connect=2, first_event=2, idle=2, total=2.5)
OPTIONS = SSEOptions(deadlines=DEADLINES)
LARGEST = max(DEADLINES.first_event, DEADLINES.idle, DEADLINES.total)
SLACK = 2.5
"""Generous for a loaded machine; reading every stall again costs 4 deadlines (about 8 s)."""


def _reference_category(*faults: str) -> tuple[dict[str, ContractResult], float]:
    """The ``sse`` category's results through the runner, and how long the category took."""
    stamps: list[tuple[float, ContractResult]] = []

    async def main(url: str, config: ServerConfig) -> list[ContractResult]:
        ctx = RunContext(spec=SPEC, base_url=url, credentials=Tokens(config))
        ctx.cache[OPTIONS_KEY] = OPTIONS
        return await run_contracts(
            ctx, ["sse"], on_result=lambda r: stamps.append((time.monotonic(), r))
        )

    with running_reference(faults=frozenset(faults)) as server:
        started = time.monotonic()
        results = asyncio.run(main(server.url, server.config))
    # The category starts once its prerequisites (the inventory probes) are judged.
    begun = max((at for at, r in stamps if r.category != "sse"), default=started)
    ended = max(at for at, r in stamps if r.category == "sse")
    return {r.id: r for r in results}, ended - begun


def _hostile_category(behaviour: hostile.Behaviour) -> tuple[dict[str, ContractResult], float]:
    def category(url: str) -> tuple[dict[str, ContractResult], float]:
        ctx = RunContext(spec=SPEC, base_url=url, credentials=Tokens(ServerConfig()))
        ctx.cache[OPTIONS_KEY] = OPTIONS

        async def collect() -> dict[str, ContractResult]:
            return {r.id: r async for r in sse_contracts(ctx)}

        started = time.monotonic()
        results = asyncio.run(collect())
        return results, time.monotonic() - started

    async def main() -> tuple[dict[str, ContractResult], float]:
        async with hostile.hostile_server(behaviour) as url:
            return await asyncio.to_thread(category, url)

    return asyncio.run(main())


def _stall(contract: str, detail: str) -> str:
    return f"the route stalled in {contract} ({detail})"


def _failures(result: ContractResult) -> list[str]:
    return [f.message for f in result.failures]


def test_a_stalling_reference_ends_the_category_within_twice_its_largest_deadline() -> None:
    """Resume and isolation name the stall instead of waiting it out again."""
    results, took = _reference_category("stream-stall")
    assert took < 2 * LARGEST + SLACK, f"the sse category took {took:.2f} s"
    chat = "idle deadline 2.0 s missed after event #1 (stream_start)"
    agents = "idle deadline 2.0 s missed after event #1 (agent_started)"
    assert _failures(results[f"{CHAT}/deadlines"]) == [f"POST /api/chat/stream: {chat}"]
    assert _failures(results[f"{AGENTS}/deadlines"]) == [f"POST /api/agents/stream: {agents}"]
    assert results[f"{CHAT}/events"].details["stopped"] == f"deadline: {chat}"
    assert results[f"{AGENTS}/events"].details["stopped"] == f"deadline: {agents}"
    resume = results[f"{AGENTS}/resume"]
    assert resume.outcome is Outcome.INCONCLUSIVE
    assert resume.reason == _stall(f"{AGENTS}/deadlines", agents)
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.INCONCLUSIVE
    assert isolation.reason == (
        f"{_stall(f'{CHAT}/deadlines', chat)}; {_stall(f'{AGENTS}/deadlines', agents)}"
    )
    # Neither waited on the route again.
    assert resume.duration < DEADLINES.idle
    assert isolation.duration < DEADLINES.idle


def test_a_clean_reference_still_passes_every_sse_contract() -> None:
    results, _ = _reference_category()
    planned = {
        "sse/isolation",
        *(f"{CHAT}/{aspect}" for aspect in ("events", "deadlines")),
        *(f"{AGENTS}/{aspect}" for aspect in ("events", "deadlines", "resume")),
    }
    assert planned <= set(results)
    bad = {
        rid: (r.outcome, r.reason, _failures(r))
        for rid, r in results.items()
        if r.outcome is not Outcome.PASSED
    }
    assert bad == {}


def _agents_only(stream: hostile.Behaviour, chat: hostile.Behaviour) -> hostile.Behaviour:
    return hostile.routes(
        {"POST /api/agents/stream": stream, "POST /api/chat/stream": chat}, hostile.status(404)
    )


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        (hostile.headers_then_silence, "first-event deadline 2.0 s missed before any event"),
        # Heartbeats keep the idle deadline met; the run still never ends.
        (
            hostile.comments_forever(0.2),
            "total deadline 2.5 s missed after event #1 (agent_started)",
        ),
    ],
    ids=["first-event", "total"],
)
def test_every_deadline_that_ends_a_stalled_read_is_shared(
    behaviour: hostile.Behaviour, detail: str
) -> None:
    """Headers then silence, or heartbeats without a run: one wait, then named."""
    results, took = _hostile_category(_agents_only(behaviour, hostile.status(404)))
    assert took < 2 * LARGEST + SLACK, f"the sse category took {took:.2f} s"
    assert _failures(results[f"{AGENTS}/deadlines"]) == [f"POST /api/agents/stream: {detail}"]
    stall = _stall(f"{AGENTS}/deadlines", detail)
    assert results[f"{AGENTS}/resume"].outcome is Outcome.INCONCLUSIVE
    assert results[f"{AGENTS}/resume"].reason == stall
    assert results["sse/isolation"].outcome is Outcome.INCONCLUSIVE
    assert results["sse/isolation"].reason == stall


def test_isolation_still_reads_the_routes_that_did_not_stall() -> None:
    """A stalled chat route must not hide a leak on the agents route."""
    # complete_run hands every request the same run: both users receive it as their own.
    results, _ = _hostile_category(
        _agents_only(hostile.complete_run(), hostile.headers_then_silence)
    )
    detail = "first-event deadline 2.0 s missed before any event"
    assert _failures(results[f"{CHAT}/deadlines"]) == [f"POST /api/chat/stream: {detail}"]
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.FAILED
    assert _failures(isolation) == [
        f"POST /api/agents/stream: alice and bob both received run {hostile.RUN!r} as their "
        "own (event #1 (agent_started) and event #1 (agent_started))"
    ]
    assert isolation.details["POST /api/chat/stream not read"] == _stall(
        f"{CHAT}/deadlines", detail
    )
