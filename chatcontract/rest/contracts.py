"""The ``rest`` category: every REST operation fuzzed by schemathesis.

Only operations of kind ``rest`` are handed to schemathesis: ``/ws`` is no
HTTP operation, and the SSE routes belong to the stream checker, which reads
them with deadlines (an endless stream would hold a schemathesis worker until
its request timeout, once per generated case).

Order of events:

1. the target must be reachable (else :class:`TargetUnreachable`, exit 3);
2. the positive control (:mod:`chatcontract.rest.control`): if the run's
   credentials are refused, every protected operation is INCONCLUSIVE
   (``credentials rejected: ...``) and only public ones are tested;
3. schemathesis runs on a worker thread, spending the run's request budget
   and at most half of the time left (so the stream and WebSocket
   categories after it still get time), and stops when either runs out;
4. object-level authorization (:mod:`chatcontract.rest.isolation`): what
   the first user creates, the second may neither read nor change
   (``rest/isolation/<operation>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from chatcontract.context import RunContext
from chatcontract.objects import Leftovers, tokens_of
from chatcontract.presentation import presentation_for
from chatcontract.report.model import ContractResult
from chatcontract.rest.control import positive_control
from chatcontract.rest.engine import EnginePlan, Recording, run_engine
from chatcontract.rest.http import ensure_reachable
from chatcontract.rest.isolation import isolation_id, isolation_results
from chatcontract.rest.plan import rest_targets
from chatcontract.rest.results import (
    CATEGORY,
    STATEFUL_ID,
    blocked_results,
    not_applicable_stateful,
    operation_results,
    stateful_result,
)
from chatcontract.rest.samples import operation_links
from chatcontract.runner import category
from chatcontract.spec import Operation
from chatcontract.transport import request_deadline

__all__ = [
    "REST_TIME_SHARE",
    "run_rest",
]

REST_TIME_SHARE = 0.5
"""Of the time budget left when REST starts, the share schemathesis may spend."""


async def _in_daemon_thread(fn: Callable[[EnginePlan], Recording], plan: EnginePlan) -> Recording:
    """``fn(plan)`` on a daemon thread.

    Not ``asyncio.to_thread``: its executor threads are joined when the loop
    and the interpreter shut down, so a request stuck in schemathesis would hold
    an interrupted or out-of-budget run open. A daemon thread is abandoned
    (``plan.stop`` asks it to stop at its next event).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Recording] = loop.create_future()

    def settle(result: Recording | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    def work() -> None:
        try:
            result = fn(plan)
        except BaseException as exc:  # handed to the awaiting task, never lost
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=work, name="chatcontract-schemathesis", daemon=True).start()
    return await future


def _isolation_targets(ctx: RunContext) -> list[Operation]:
    return [op for op in ctx.spec.rest_operations if ctx.progress.wants(isolation_id(op))]


CLEANUP_SECONDS = 30.0
"""How long deleting what schemathesis' cases created may take in all."""


async def _cleanup(ctx: RunContext, recording: Recording, user: str) -> dict[str, dict[str, str]]:
    """Delete the objects schemathesis' successful cases created (a nightly run must not
    pile them up on staging); per producer label, what was and was not cleaned up."""
    found: dict[str, dict[str, str]] = {}
    by_label: dict[str, Leftovers] = {}
    for label, body in recording.created:
        leftovers = by_label.setdefault(label, Leftovers(ctx))
        leftovers.record(ctx.spec.operation(label), user, body)
    if recording.uncounted and by_label:
        next(iter(by_label.values())).dropped += recording.uncounted
    left = ctx.services.budget.time_left()
    seconds = CLEANUP_SECONDS if left is None else max(1.0, min(CLEANUP_SECONDS, left))
    token_for = tokens_of(ctx)
    for label, leftovers in by_label.items():
        await leftovers.cleanup(token_for, seconds / len(by_label))
        details = leftovers.details()
        if details:
            found[label] = details
    return found


@category(
    CATEGORY,
    order=20,
    description="Every REST operation keeps its contract under schemathesis' phases and checks.",
)
async def run_rest(ctx: RunContext) -> AsyncIterator[ContractResult]:
    ops = [op for op in rest_targets(ctx.spec) if ctx.progress.wants(f"{CATEGORY}/{op.label}")]
    stateful_wanted = ctx.progress.wants(STATEFUL_ID)
    if not ops and not stateful_wanted:
        for result in await isolation_results(ctx, _isolation_targets(ctx)):
            yield result
        return
    # Operations whose route is missing are not fuzzed: their results would only
    # repeat the inventory's finding (the runner reports them blocked by it).
    blocked_by_route = [op for op in ops if ctx.progress.blocked(f"{CATEGORY}/{op.label}")]
    for op in blocked_by_route:
        yield blocked_results([op], ctx.progress.blocked(f"{CATEGORY}/{op.label}") or "")[0]
    ops = [op for op in ops if op not in blocked_by_route]
    await ensure_reachable(ctx.base_url, ctx.settings.connect_timeout)
    budget = ctx.services.budget
    control = await positive_control(ctx)
    user = ctx.credentials.users[0]
    refused = control.accepted is False and control.accepts(user) is not True
    blocked = [op for op in ops if refused and not op.is_public]
    testable = [op for op in ops if op not in blocked]
    for result in blocked_results(blocked, control.reason):
        yield result
    # Links run between protected operations; with those blocked, so is the stateful phase.
    stateful_blocked = (
        control.reason if blocked and any(operation_links(ctx.spec, op) for op in ops) else None
    )
    if not testable:
        blocked_stateful = stateful_result(Recording(), (), ctx.redactor, blocked=stateful_blocked)
        if blocked_stateful is not None:
            yield blocked_stateful
        for result in await isolation_results(ctx, _isolation_targets(ctx)):
            yield result
        return

    loop = asyncio.get_running_loop()
    tokens: set[str] = set()
    deadline = ctx.settings.connect_timeout + ctx.settings.read_timeout

    async def fetch_token() -> str:
        token = await ctx.credentials.token(user)
        ctx.redactor.add(token)
        tokens.add(token)
        return token

    def token() -> str:
        # Called on schemathesis' threads; the credentials live on the event loop.
        return asyncio.run_coroutine_threadsafe(fetch_token(), loop).result(deadline)

    left = budget.time_left()
    plan = EnginePlan(
        document=ctx.spec.document,
        base_url=ctx.base_url,
        operation_ids=tuple(op.operation_id for op in testable),
        protected={
            op.operation_id: presentation_for(ctx.spec, op) for op in testable if not op.is_public
        },
        token=token,
        budget=budget,
        deadline=None if left is None else time.monotonic() + left * REST_TIME_SHARE,
        seed=ctx.settings.seed,
        max_examples=ctx.settings.max_examples,
        request_timeout=ctx.settings.read_timeout,
        request_deadline=request_deadline(ctx.settings),
        cache_dir=ctx.settings.cache_dir,
        rate_limit=ctx.settings.rate_limit,
        refusals={
            op.label: frozenset(s for s in (401, 403) if op.documents_status(s)) for op in testable
        },
        producers=frozenset(op.label for op in testable if operation_links(ctx.spec, op)),
    )
    if budget.exhausted:
        recording = Recording(stopped=budget.reason())
    else:
        try:
            recording = await _in_daemon_thread(run_engine, plan)
        finally:
            # On cancellation the thread outlives us; tell it to stop at the next event.
            plan.stop.set()
    cleaned = await _cleanup(ctx, recording, user)
    for result in operation_results(testable, recording, tokens, ctx.redactor):
        details = cleaned.get(result.operation or "")
        yield replace(result, details={**result.details, **details}) if details else result
    stateful = stateful_result(recording, tokens, ctx.redactor, blocked=stateful_blocked)
    if stateful is None and stateful_wanted and any(operation_links(ctx.spec, op) for op in ops):
        stateful = not_applicable_stateful()
    if stateful is not None:
        yield stateful
    for result in await isolation_results(ctx, _isolation_targets(ctx)):
        yield result
