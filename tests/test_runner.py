"""The runner executes the plan: every planned contract is judged once, by the real checkers.

Against the real reference server on loopback: planners and checkers must
agree id for id, one missing route is one failure, and whatever cuts a run
short (the time budget) leaves every planned contract accounted for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcontract.auth import credentials_from_env
from chatcontract.context import RunContext, RunSettings
from chatcontract.events import ContractFinished, ContractStarted, Event, RunFinished, RunStarted
from chatcontract.plan import Selection
from chatcontract.reference.server import RunningReference, running_reference
from chatcontract.report.model import ContractResult, Outcome, RunMeta, RunReport, RunStatus
from chatcontract.runner import build_plan, execute
from chatcontract.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec(ROOT / "openapi.yaml")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def start() -> Iterator[object]:
    import contextlib

    with contextlib.ExitStack() as stack:

        def run(*faults: str) -> RunningReference:
            return stack.enter_context(running_reference(faults=frozenset(faults)))

        yield run


def _run(
    server: RunningReference,
    selection: Selection | None = None,
    *,
    time_budget: float | None = None,
    reporters: list[Recorder] | None = None,
) -> RunReport:
    settings = RunSettings(
        max_examples=3,
        target_is_reference=True,
        check_limits=True,
        signing_key=server.config.signing_key,
        time_budget=time_budget,
    )
    credentials = credentials_from_env(SPEC, server.url, {}, target_is_reference=True)
    ctx = RunContext(SPEC, server.url, credentials, settings)
    plan = build_plan(SPEC, settings).select(selection or Selection())
    meta = RunMeta(tool_version="test", spec_source=SPEC.source, spec_sha256="", target=server.url)

    async def main() -> RunReport:
        ctx.services.start(settings)
        return await execute(ctx, plan, meta, reporters or [])

    return asyncio.run(main())


def _by_outcome(report: RunReport, outcome: Outcome) -> list[ContractResult]:
    return [r for r in report.results if r.outcome is outcome]


@pytest.mark.timeout(120)
def test_planners_and_checkers_agree_on_every_id_of_a_clean_run(start: object) -> None:
    recorder = Recorder()
    report = _run(start(), reporters=[recorder])  # type: ignore[operator]
    plan = build_plan(SPEC)
    planned = [c.id for c in plan.contracts]
    assert [r.id for r in report.results] == planned
    # `chatcontract plan` and the report name every contract the same way.
    assert {r.id: r.name for r in report.results} == {c.id: c.name for c in plan.contracts}
    assert not [r.id for r in report.results if r.reason.startswith("not judged")]
    assert _by_outcome(report, Outcome.FAILED) == []
    assert report.meta.status is RunStatus.COMPLETE
    # events: started first, finished last, every contract started before it finished
    kinds = [type(e) for e in recorder.events]
    assert kinds[0] is RunStarted
    assert kinds[-1] is RunFinished
    started = {e.contract.id for e in recorder.events if isinstance(e, ContractStarted)}
    finished = [e.result.id for e in recorder.events if isinstance(e, ContractFinished)]
    assert finished == planned
    assert started == set(planned)


@pytest.mark.timeout(120)
def test_the_status_report_run_has_exactly_its_two_findings(start: object) -> None:
    """staging-2025-09: both stream routes missing, /ws refusing valid tokens."""
    report = _run(start("staging-2025-09"))  # type: ignore[operator]
    failed = [r.id for r in _by_outcome(report, Outcome.FAILED)]
    assert failed == ["inventory/POST /api/chat/stream", "inventory/POST /api/agents/stream"]
    blocked = [r for r in report.results if r.reason.startswith("blocked by inventory/")]
    assert {r.category for r in blocked} == {"sse"}
    assert len(blocked) == len([c for c in build_plan(SPEC).contracts if c.category == "sse"])
    ws = [r for r in report.results if r.category == "websocket"]
    inconclusive = [r for r in ws if r.outcome is Outcome.INCONCLUSIVE]
    assert inconclusive
    assert all("credentials rejected" in r.reason for r in inconclusive)
    assert next(r for r in ws if r.id.endswith("auth/no-token")).outcome is Outcome.PASSED


@pytest.mark.timeout(60)
def test_one_missing_stream_route_is_one_failure(start: object) -> None:
    report = _run(  # type: ignore[operator]
        start("chat-stream-missing"),
        Selection(only=("sse/POST /api/chat/stream/*", "sse/isolation")),
    )
    assert [r.id for r in _by_outcome(report, Outcome.FAILED)] == [
        "inventory/POST /api/chat/stream"
    ]
    chat = [r for r in report.results if r.id.startswith("sse/POST /api/chat/stream/")]
    assert chat
    assert all(r.outcome is Outcome.SKIPPED for r in chat)
    assert all(r.reason.startswith("blocked by inventory/POST /api/chat/stream") for r in chat)
    # the other route still exists, so isolation is still judged on it
    assert next(r for r in report.results if r.id == "sse/isolation").outcome is not (
        Outcome.SKIPPED
    )
    assert report.prerequisites == {
        "inventory/POST /api/chat/stream",
        "inventory/POST /api/agents/stream",
    }


@pytest.mark.timeout(60)
def test_selection_happens_before_any_work(start: object) -> None:
    report = _run(start(), Selection(only=("inventory/GET /health",)))  # type: ignore[operator]
    assert [r.id for r in report.results] == ["inventory/GET /health"]
    assert report.meta.planned == 1


@pytest.mark.timeout(60)
def test_the_time_budget_is_a_wall_and_every_contract_is_accounted_for(start: object) -> None:
    """A stalled stream with a 30 s idle deadline, a 2 s budget: the run ends at the budget."""
    begun = time.monotonic()
    report = _run(  # type: ignore[operator]
        start("stream-stall"),
        Selection(categories=frozenset({"inventory", "sse"})),
        time_budget=2,
    )
    elapsed = time.monotonic() - begun
    assert elapsed < 2 + 5, elapsed  # budget + grace + generous slack on a shared machine
    assert report.meta.status is RunStatus.TIME_BUDGET
    unreached = [r for r in report.results if r.reason.startswith("time budget reached")]
    assert unreached
    assert all(r.outcome is Outcome.INCONCLUSIVE for r in unreached)
    assert {r.id for r in report.results} == set(
        build_plan(SPEC).select(Selection(categories=frozenset({"inventory", "sse"}))).needed
    )
