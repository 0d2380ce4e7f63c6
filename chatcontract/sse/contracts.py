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

from chatcontract.context import RunContext
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.runner import category
from chatcontract.sse.checker import EVENTS, CompiledStream, compile_stream, sequence_aspect
from chatcontract.sse.isolation import check_isolation
from chatcontract.sse.resume import check_resume
from chatcontract.sse.session import Session, new_canary, request_body
from chatcontract.sse.stream import DEADLINES, StreamRun, documented_cache_control

__all__ = ["CATEGORY", "check_stream", "sse_contracts"]

CATEGORY: Final = "sse"


def _results(compiled: CompiledStream, run: StreamRun) -> list[tuple[str, str, str, list[Finding]]]:
    """``(id, name, aspect, findings)`` of the per-stream results, findings unadorned."""
    label = compiled.label
    base = f"{CATEGORY}/{label}"
    rows = [(f"{base}/events", f"{label} sends well-formed events that match the spec", EVENTS)]
    rows += [
        (
            f"{base}/sequence:{sequence.name}",
            f"{label} follows the {sequence.name} sequence",
            sequence_aspect(sequence.name),
        )
        for sequence in compiled.sequences
    ]
    rows.append((f"{base}/deadlines", f"{label} meets its deadlines and bounds", DEADLINES))
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
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        session = Session(ctx, client)
        opened: list[CompiledStream] = []
        unopened: list[str] = []
        for stream in ctx.spec.streams:
            compiled = compile_stream(stream, ctx.spec)
            run, results = await check_stream(session, compiled)
            for result in results:
                yield result
            if stream.resume_header:
                yield await check_resume(session, run)
            if run.opened:
                opened.append(compiled)
            else:
                unopened.append(results[0].reason)
        yield await check_isolation(session, opened, tuple(unopened))
