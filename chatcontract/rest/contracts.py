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
import time
from collections.abc import AsyncIterator

from chatcontract.context import RunContext
from chatcontract.report.model import ContractResult
from chatcontract.rest.control import positive_control
from chatcontract.rest.engine import EnginePlan, Recording, run_engine
from chatcontract.rest.http import ensure_reachable
from chatcontract.rest.isolation import isolation_results
from chatcontract.rest.results import (
    CATEGORY,
    blocked_results,
    operation_results,
    stateful_result,
)
from chatcontract.rest.samples import operation_links
from chatcontract.runner import category

__all__ = [
    "REST_TIME_SHARE",
    "run_rest",
]

REST_TIME_SHARE = 0.5
"""Of the time budget left when REST starts, the share schemathesis may spend."""


@category(
    CATEGORY,
    order=20,
    description="Every REST operation keeps its contract under schemathesis' phases and checks.",
)
async def run_rest(ctx: RunContext) -> AsyncIterator[ContractResult]:
    ops = [op for op in ctx.spec.rest_operations if op.tier in ctx.settings.tiers]
    if not ops:
        return
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
        for result in await isolation_results(ctx, ops):
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
        protected_ids=tuple(op.operation_id for op in testable if not op.is_public),
        token=token,
        budget=budget,
        deadline=None if left is None else time.monotonic() + left * REST_TIME_SHARE,
        seed=ctx.settings.seed,
        max_examples=ctx.settings.max_examples,
        request_timeout=ctx.settings.read_timeout,
        rate_limit=ctx.settings.rate_limit,
    )
    if budget.exhausted:
        recording = Recording(stopped=budget.reason())
    else:
        try:
            recording = await asyncio.to_thread(run_engine, plan)
        finally:
            # On cancellation the thread outlives us; tell it to stop at the next event.
            plan.stop.set()
    for result in operation_results(testable, recording, tokens, ctx.redactor):
        yield result
    stateful = stateful_result(recording, tokens, ctx.redactor, blocked=stateful_blocked)
    if stateful is not None:
        yield stateful
    for result in await isolation_results(ctx, ops):
        yield result
