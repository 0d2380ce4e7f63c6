"""The ``sse`` category: every ``text/event-stream`` operation of the spec, judged.

For each stream contract one real stream is read (as the first user, with the
operation's request example and a fresh canary in its message) and judged as

* ``sse/<METHOD> <path>/events``: status, Content-Type, cache headers, SSE
  framing, transport, and every event against its schema;
* ``sse/<METHOD> <path>/sequence:<name>``: one per ``x-sequence``;
* ``sse/<METHOD> <path>/deadlines``: first event, idle gaps, total, max-events
  (inconclusive when a framing or transport error cut the run short);
* ``sse/<METHOD> <path>/resume``: where the stream declares a resume header;

and finally ``sse/isolation`` streams as two users at once. A route answering
404/405 fails every result of its stream; a 401/403 with credentials that do
not work elsewhere either makes them inconclusive, never passed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Final

import httpx

from chatcontract.context import RunContext, RunSettings
from chatcontract.plan import PlannedContract
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.runner import category, planner
from chatcontract.spec import Spec, StreamContract
from chatcontract.sse.checker import EVENTS, CompiledStream, compile_stream, sequence_aspect
from chatcontract.sse.isolation import check_isolation
from chatcontract.sse.resume import check_resume
from chatcontract.sse.session import Session, new_canary, request_body
from chatcontract.sse.stream import DEADLINES, StreamRun, documented_cache_control

__all__ = ["CATEGORY", "check_stream", "plan_sse", "sse_contracts"]

CATEGORY: Final = "sse"
ISOLATION_ID: Final = f"{CATEGORY}/isolation"


def _rows(label: str, sequences: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(id, name, aspect)`` of the per-stream results: one place for planner and checker."""
    base = f"{CATEGORY}/{label}"
    rows = [(f"{base}/events", f"{label} sends well-formed events that match the spec", EVENTS)]
    rows += [
        (f"{base}/sequence:{name}", f"{label} follows the {name} sequence", sequence_aspect(name))
        for name in sequences
    ]
    rows.append((f"{base}/deadlines", f"{label} meets its deadlines and bounds", DEADLINES))
    return rows


def _stream_ids(stream: StreamContract, spec: Spec) -> list[str]:
    ids = [rid for rid, _, _ in _rows(stream.operation.label, _sequence_names(stream, spec))]
    if stream.resume_header:
        ids.append(f"{CATEGORY}/{stream.operation.label}/resume")
    return ids + [rid for rid, _, _ in _unjudgeable(stream)]


def _unjudgeable(stream: StreamContract) -> list[tuple[str, str, str]]:
    """``(id, name, reason)`` of declared sequences this stream's events cannot be typed for."""
    label = stream.operation.label
    return [
        (f"{CATEGORY}/{label}/sequence:{name}", f"{label} follows the {name} sequence", reason)
        for name, reason in stream.skipped_sequences
    ]


def _sequence_names(stream: StreamContract, spec: Spec) -> tuple[str, ...]:
    return tuple(name for name in stream.sequences if name in spec.sequences)


@planner(CATEGORY)
def plan_sse(spec: Spec, settings: RunSettings) -> list[PlannedContract]:
    """Per stream: events, each sequence, deadlines, resume; then isolation across users."""
    planned: list[PlannedContract] = []
    routes: list[str] = []
    for stream in spec.streams:
        op = stream.operation
        route = f"inventory/{op.label}"
        routes.append(route)
        rows = _rows(op.label, _sequence_names(stream, spec))
        if stream.resume_header:
            name = f"{op.label} resumes after {stream.resume_header} without repeats, gaps or "
            rows.append((f"{CATEGORY}/{op.label}/resume", name + "foreign events", ""))
        rows += _unjudgeable(stream)
        planned += [
            PlannedContract(
                id=rid,
                category=CATEGORY,
                name=name,
                tier=op.tier,
                target=op.label,
                requires=(route,),
                cost=stream.deadlines.total / 4,
                tier_source=op.tier_source,
            )
            for rid, name, _ in rows
        ]
    if spec.streams:
        planned.append(
            PlannedContract(
                id=ISOLATION_ID,
                category=CATEGORY,
                name="no user's stream carries another user's events",
                tier=max((s.operation.tier for s in spec.streams), key=lambda t: t == "P1"),
                target="every stream route",
                requires_any=tuple(routes),
                cost=max(s.deadlines.total for s in spec.streams) / 4,
            )
        )
    return planned


def _results(compiled: CompiledStream, run: StreamRun) -> list[tuple[str, str, str, list[Finding]]]:
    """``(id, name, aspect, findings)`` of the per-stream results, findings unadorned."""
    label = compiled.label
    rows = _rows(label, tuple(sequence.name for sequence in compiled.sequences))
    results = [(rid, name, aspect, run.all_findings(aspect)) for rid, name, aspect in rows]
    if run.opened and not run.events and not _failed(results[0][3]):
        # A result about the events must not pass when there was not one to judge.
        what = "the stream ended before any event"
        if run.stop != "eof":
            what = f"no event arrived before reading stopped ({run.stop_detail or run.stop})"
        elif run.comments:
            what += f" ({run.comments} comments)"
        results[0][3].append(Finding(f"{label}: {what}"))
    return results


def _failed(findings: list[Finding]) -> bool:
    return any(f.severity == "failure" for f in findings)


def _unjudged_deadlines(run: StreamRun) -> str | None:
    """Why the deadlines could not be judged over the whole run, if they could not."""
    if run.terminal is not None:
        return None
    if run.stop in ("parser", "transport"):
        return (
            f"reading stopped on an error ({run.stop_detail}) before the run ended, "
            "so its deadlines could not be judged"
        )
    if run.stop == "eof" and not run.events:
        return "the stream ended before any event, so no deadline could be judged"
    return None


async def check_stream(
    session: Session, compiled: CompiledStream
) -> tuple[StreamRun, list[ContractResult]]:
    """Read one stream as the first user and judge its events, sequences and deadlines."""
    ctx = session.ctx
    stream = compiled.stream
    operation = stream.operation
    started = time.monotonic()
    run = await session.open(
        compiled,
        request_body(operation, new_canary()),
        check_cache=documented_cache_control(
            ctx.spec.document, operation.pointer, stream.success_status
        ),
    )
    duration = time.monotonic() - started
    rows = _results(compiled, run)
    if not run.opened:
        verdict = await session.verdict(run)
        return run, [
            ContractResult(
                id=rid,
                category=CATEGORY,
                name=name,
                tier=operation.tier,
                outcome=verdict.outcome,
                findings=verdict.findings,
                reason=verdict.reason,
                duration=duration,
                operation=compiled.label,
            )
            for rid, name, _, _ in rows
        ]
    details = {
        "events": str(len(run.events)),
        "comments": str(run.comments),
        "stopped": run.stop + (f": {run.stop_detail}" if run.stop_detail else ""),
        "elapsed": f"{run.elapsed:.3f} s",
    }
    results = []
    for rid, name, aspect, findings in rows:
        result = ContractResult.judged(
            id=rid,
            category=CATEGORY,
            name=name,
            tier=operation.tier,
            findings=session.evidence(run, findings),
            duration=duration,
            operation=compiled.label,
            details=details,
        )
        unjudged = _unjudged_deadlines(run) if aspect == DEADLINES else None
        if unjudged and not _failed(findings):
            result = replace(result, outcome=Outcome.INCONCLUSIVE, reason=unjudged)
        results.append(result)
    return run, results


@category(
    CATEGORY,
    order=30,
    description="SSE streams: per-event schemas, sequences, deadlines, resume, user isolation",
)
async def sse_contracts(ctx: RunContext) -> AsyncIterator[ContractResult]:
    """Every stream contract of ``ctx.spec``, then isolation across two users."""
    if not ctx.spec.streams:
        return
    timeout = httpx.Timeout(ctx.settings.connect_timeout, read=ctx.settings.read_timeout)
    # No proxy or CA settings from the environment: the run talks to the target it was given.
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        session = Session(ctx, client)
        opened: list[CompiledStream] = []
        unopened: list[str] = []
        for stream in ctx.spec.streams:
            ids = _stream_ids(stream, ctx.spec)
            if not any(ctx.progress.wants(i) for i in ids):
                continue
            blocked = ctx.progress.blocked(ids[0])
            if blocked is not None:
                # The route is missing: reading it would only repeat the inventory's finding.
                unopened.append(blocked)
                for rid in ids:
                    yield _skipped(stream, rid, blocked)
                continue
            for rid, _, reason in _unjudgeable(stream):
                yield _skipped(stream, rid, reason)
            for rid in ids:
                ctx.progress.starting(rid)
            compiled = compile_stream(stream, ctx.spec)
            run, results = await check_stream(session, compiled)
            # The deadlines result judges this read: later checks name it if the route stalled.
            session.note_stall(run, f"{CATEGORY}/{compiled.label}/deadlines")
            for result in results:
                yield result
            if stream.resume_header:
                yield await check_resume(session, run)
            if run.opened:
                opened.append(compiled)
            else:
                unopened.append(results[0].reason)
        if ctx.progress.wants(ISOLATION_ID):
            ctx.progress.starting(ISOLATION_ID)
            yield await check_isolation(session, opened, tuple(unopened))


def _skipped(stream: StreamContract, contract_id: str, reason: str) -> ContractResult:
    return ContractResult(
        id=contract_id,
        category=CATEGORY,
        name=contract_id.removeprefix(f"{CATEGORY}/"),
        tier=stream.operation.tier,
        outcome=Outcome.SKIPPED,
        reason=reason,
        operation=stream.operation.label,
    )
