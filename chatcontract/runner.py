"""The category registry, the plan and the loop that executes it.

Categories (inventory, rest, sse, websocket) register a ``run`` (an async
generator of results) with :func:`category` and a ``plan`` (the contracts the
spec implies, listed without I/O) with :func:`planner`. The runner never
knows what a category checks:

1. :func:`build_plan` asks every category for its contracts; ids are unique;
2. the caller narrows the plan (:meth:`Plan.select`) before any request;
3. :func:`execute` runs the categories that have needed contracts, turns
   each result into events for the reporters, and blocks dependents of a
   failed prerequisite (*skipped: blocked by <id>*: one cause, one failure);
4. whatever ends the run early (time budget, interrupt, unreachable target),
   every planned contract is accounted for: judged, or *inconclusive* with
   the reason it was not reached.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import TargetUnreachable
from chatcontract.events import (
    ContractFinished,
    ContractStarted,
    Event,
    Reporter,
    RunFinished,
    RunStarted,
)
from chatcontract.plan import Plan, PlannedContract, Selection
from chatcontract.report.model import (
    UNREACHED_DETAIL,
    ContractResult,
    Finding,
    Outcome,
    RunMeta,
    RunReport,
    RunStatus,
    TranscriptEntry,
)
from chatcontract.spec import Spec

__all__ = [
    "BUILTIN_CATEGORY_MODULES",
    "Category",
    "build_plan",
    "categories",
    "category",
    "execute",
    "planner",
    "run_contracts",
]

CategoryRun = Callable[[RunContext], AsyncIterator[ContractResult]]
CategoryPlan = Callable[[Spec, RunSettings], Iterable[PlannedContract]]

BUILTIN_CATEGORY_MODULES: tuple[str, ...] = (
    "chatcontract.rest.inventory",
    "chatcontract.rest.contracts",
    "chatcontract.rest.plan",
    "chatcontract.sse.contracts",
    "chatcontract.ws.contracts",
)
"""Modules whose import registers the built-in categories and their planners."""

BUDGET_GRACE = 0.25
"""Seconds past ``--time-budget`` granted to in-flight work before it is cancelled."""


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    order: int
    description: str
    run: CategoryRun


_REGISTRY: dict[str, Category] = {}
_PLANNERS: dict[str, CategoryPlan] = {}


def category(name: str, *, order: int, description: str) -> Callable[[CategoryRun], CategoryRun]:
    """Register an async generator of results as a category of contracts."""

    def register(fn: CategoryRun) -> CategoryRun:
        _REGISTRY[name] = Category(name, order, description, fn)
        return fn

    return register


def planner(name: str) -> Callable[[CategoryPlan], CategoryPlan]:
    """Register the function that lists category ``name``'s contracts for a spec."""

    def register(fn: CategoryPlan) -> CategoryPlan:
        _PLANNERS[name] = fn
        return fn

    return register


def categories() -> list[Category]:
    for module in BUILTIN_CATEGORY_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY.values(), key=lambda c: c.order)


def build_plan(spec: Spec, settings: RunSettings | None = None) -> Plan:
    """Every contract ``spec`` implies, in run order; duplicate ids are a bug (ValueError)."""
    chosen = settings or RunSettings()
    contracts: list[PlannedContract] = []
    for cat in categories():
        plan = _PLANNERS.get(cat.name)
        if plan is None:
            raise ValueError(f"category {cat.name!r} registered no planner")
        for contract in plan(spec, chosen):
            if contract.category != cat.name:
                raise ValueError(f"{cat.name} planned {contract.id!r} in {contract.category!r}")
            contracts.append(contract)
    return Plan.of(contracts)


def _redact_result(result: ContractResult, redact: Callable[[str], str]) -> ContractResult:
    def finding(f: Finding) -> Finding:
        return replace(
            f,
            message=redact(f.message),
            location=redact(f.location),
            repro=redact(f.repro) if f.repro else f.repro,
            transcript=tuple(
                TranscriptEntry(t.direction, t.offset, redact(t.content)) for t in f.transcript
            ),
        )

    return replace(
        result,
        name=redact(result.name),
        reason=redact(result.reason),
        findings=tuple(finding(f) for f in result.findings),
        details={k: redact(v) for k, v in result.details.items()},
    )


def _unjudged(contract: PlannedContract, outcome: Outcome, reason: str) -> ContractResult:
    return ContractResult(
        id=contract.id,
        category=contract.category,
        name=contract.name,
        tier=contract.tier,
        outcome=outcome,
        reason=reason,
        operation=contract.target or None,
        tier_source=contract.tier_source,
    )


def _blocked_reason(cause: str, found: ContractResult) -> str:
    first = found.failures[0].line() if found.failures else found.reason
    return f"blocked by {cause}" + (f": {first}" if first else "")


class _Execution:
    """One run in progress: what was judged, what blocks what, who is told."""

    def __init__(self, ctx: RunContext, plan: Plan, reporters: Sequence[Reporter]) -> None:
        self.ctx = ctx
        self.plan = plan
        self.reporters = reporters
        self.index = {c.id: c for c in plan.contracts}
        self.results: dict[str, ContractResult] = {}
        self.started: set[str] = set()
        self.unplanned: list[str] = []

    def emit(self, event: Event) -> None:
        for reporter in self.reporters:
            reporter.handle(event)

    def announce(self, contract_id: str) -> None:
        contract = self.index.get(contract_id)
        if contract is not None and contract_id not in self.started:
            self.started.add(contract_id)
            self.emit(ContractStarted(contract))

    def wants(self, contract_id: str) -> bool:
        return contract_id in self.plan.needed

    def blocked(self, contract_id: str) -> str | None:
        found = self.blocker(contract_id)
        return None if found is None else _blocked_reason(*found)

    def starting(self, contract_id: str) -> None:
        self.announce(contract_id)

    def blocker(self, contract_id: str) -> tuple[str, ContractResult] | None:
        """The failed prerequisite that blocks ``contract_id``, if any."""
        contract = self.index.get(contract_id)
        if contract is None:
            return None
        for required in contract.requires:
            found = self.results.get(required)
            if found is not None and found.outcome is Outcome.FAILED:
                return required, found
        alternatives = [self.results.get(i) for i in contract.requires_any]
        failed = [f for f in alternatives if f is not None and f.outcome is Outcome.FAILED]
        if alternatives and len(failed) == len(alternatives):
            first = alternatives[0]
            assert first is not None
            return first.id, first
        return None

    def record(self, result: ContractResult) -> None:
        contract = self.index.get(result.id)
        if contract is None:
            # A checker judged something its planner did not list: a bug of ours, but
            # the verdict is real and is reported rather than lost.
            self.unplanned.append(result.id)
        elif result.id not in self.plan.needed or result.id in self.results:
            return
        blocked = self.blocker(result.id)
        if blocked is not None:
            result = replace(
                result, outcome=Outcome.SKIPPED, findings=(), reason=_blocked_reason(*blocked)
            )
        if contract is not None:
            result = replace(result, tier_source=contract.tier_source)
        clean = _redact_result(result, self.ctx.redactor)
        self.results[clean.id] = clean
        self.announce(clean.id)
        self.emit(ContractFinished(clean, prerequisite=clean.id in self.plan.prerequisites))

    def account_for_the_rest(self, status: RunStatus, why: str) -> None:
        """Every needed contract without a result gets one that says why."""
        for contract in self.plan.runnable:
            if contract.id in self.results:
                continue
            if status is RunStatus.COMPLETE:
                self.record(
                    _unjudged(
                        contract,
                        Outcome.INCONCLUSIVE,
                        "not judged: planned, but no checker reported on it "
                        "(a chatcontract bug; please report it)",
                    )
                )
            else:
                unreached = _unjudged(contract, Outcome.INCONCLUSIVE, why)
                self.record(replace(unreached, details={UNREACHED_DETAIL: status.value}))


async def _run_category(execution: _Execution, cat: Category) -> None:
    ctx = execution.ctx
    started = time.monotonic()
    try:
        async for result in cat.run(ctx):
            execution.record(result)
    except (TargetUnreachable, asyncio.CancelledError, TimeoutError):
        raise
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        reason = (
            f"chatcontract bug: {type(exc).__name__}: {exc} "
            f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
        )
        for contract in execution.plan.runnable:
            if contract.category == cat.name and contract.id not in execution.results:
                failed = _unjudged(contract, Outcome.INCONCLUSIVE, reason)
                execution.record(replace(failed, duration=time.monotonic() - started))


async def execute(
    ctx: RunContext,
    plan: Plan,
    meta: RunMeta,
    reporters: Sequence[Reporter] = (),
) -> RunReport:
    """Run the needed contracts of ``plan`` and return the report; reporters hear everything.

    Never raises for what the target does: an unreachable target mid-run ends
    the run as *aborted*, the time budget as *time-budget*, cancellation
    (SIGINT/SIGTERM through the caller) as *interrupted*; in each case every
    result judged so far is kept. Cancellation is re-raised after the report
    is complete, so the caller knows it was interrupted.
    """
    execution = _Execution(ctx, plan, reporters)
    ctx.progress = execution
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    execution.emit(RunStarted(plan, meta))
    status, why = RunStatus.COMPLETE, ""
    interrupted: BaseException | None = None
    budget = ctx.services.budget
    left = budget.time_left()
    try:
        async with asyncio.timeout(None if left is None else left + BUDGET_GRACE):
            for cat in categories():
                if cat.name not in plan.categories():
                    continue
                if budget.requests_exhausted:
                    status = RunStatus.REQUEST_BUDGET
                    why = f"request budget spent ({budget.requests} requests) before this"
                    break
                await _run_category(execution, cat)
    except TimeoutError:
        status = RunStatus.TIME_BUDGET
        why = f"time budget reached ({ctx.settings.time_budget:g} s) before this was judged"
    except TargetUnreachable as exc:
        status, why = RunStatus.ABORTED, f"aborted: {exc}"
    except asyncio.CancelledError as exc:
        status, why = RunStatus.INTERRUPTED, "interrupted before this was judged"
        interrupted = exc
    execution.account_for_the_rest(status, why)
    ordered = tuple(execution.results[c.id] for c in plan.runnable if c.id in execution.results)
    extra = tuple(execution.results[i] for i in execution.unplanned if i in execution.results)
    report = RunReport(
        meta=replace(
            meta,
            started_at=meta.started_at or started_at,
            duration=time.monotonic() - started,
            status=status,
            planned=len(plan.selected),
        ),
        results=ordered + extra,
        prerequisites=frozenset(plan.prerequisites & execution.results.keys()),
    )
    execution.emit(RunFinished(report))
    if interrupted is not None:
        raise interrupted
    return report


async def run_contracts(
    ctx: RunContext,
    selected: Iterable[str] | None = None,
    on_result: Callable[[ContractResult], None] | None = None,
) -> list[ContractResult]:
    """Plan, select the categories ``selected`` (all by default), execute; their results.

    The short way for tests and scripts: prerequisites of other categories run
    (a missing route still blocks its streams) but only the selected
    categories' results are returned. :class:`TargetUnreachable` propagates
    when the target could not be reached at all (nothing was judged).
    """
    plan = build_plan(ctx.spec, ctx.settings)
    wanted = frozenset(selected) if selected is not None else frozenset()
    plan = plan.select(Selection(categories=wanted, tiers=frozenset(ctx.settings.tiers)))
    meta = RunMeta(tool_version="", spec_source=ctx.spec.source, spec_sha256="", target="")

    class _Callback:
        def handle(self, event: Event) -> None:
            if on_result is not None and isinstance(event, ContractFinished):
                on_result(event.result)

    report = await execute(ctx, plan, meta, [_Callback()])
    if report.meta.status is RunStatus.ABORTED and all(
        r.reason.startswith("aborted:") for r in report.results
    ):
        first = report.results[0].reason if report.results else "target unreachable"
        raise TargetUnreachable(first.removeprefix("aborted: "))
    return list(report.owned)
