"""User isolation against servers that share a run or keep talking after it ended."""

from __future__ import annotations

import secrets
from typing import Any

from chatcontract.report.model import Outcome

from . import hostile
from .test_contracts import AGENTS, failures, run_category_on


def _agents(stream: hostile.Behaviour) -> hostile.Behaviour:
    return hostile.routes(
        {"GET /api/agents": hostile.status(200, b"[]"), "POST /api/agents/stream": stream},
        hostile.status(404),
    )


def _fresh_runs(after: tuple[str, ...] = ()) -> hostile.Behaviour:
    """Every request gets a run of its own, as a correct server does."""

    async def behave(request: hostile.Request, writer: Any) -> None:
        run = f"run_{secrets.token_hex(6)}"
        await hostile.complete_run(after=after, run=run)(request, writer)

    return behave


def test_separate_runs_pass_isolation() -> None:
    results = run_category_on(_agents(_fresh_runs()))
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.PASSED, (isolation.reason, failures(isolation))


def test_a_run_id_both_users_receive_fails_isolation() -> None:
    """One run's events reaching both users is a leak, not a reason to stop looking."""
    results = run_category_on(_agents(hostile.complete_run()))
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.FAILED
    assert failures(isolation) == [
        f"POST /api/agents/stream: alice and bob both received run {hostile.RUN!r} as their "
        "own (event #1 (agent_started) and event #1 (agent_started))"
    ]
    assert isolation.failures[0].repro is not None
    assert "$CHATCONTRACT_TOKEN_2" in isolation.failures[0].repro


def test_events_after_the_terminal_fail_the_sequence_and_isolation() -> None:
    """What arrives after a run ended is judged, in the solo read and in the isolation reads."""
    results = run_category_on(_agents(_fresh_runs(after=("agent_thinking",))))
    late = "event #4 (agent_thinking): arrives after the terminal event #3 (agent_completed)"
    assert failures(results[f"{AGENTS}/sequence:agent-run"]) == [f"POST /api/agents/stream {late}"]
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.FAILED
    assert sorted(failures(isolation)) == [
        f"POST /api/agents/stream (as alice) {late}",
        f"POST /api/agents/stream (as bob) {late}",
    ]
