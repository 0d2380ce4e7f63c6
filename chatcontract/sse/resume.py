"""Resuming a stream with ``Last-Event-ID``: nothing repeated, missing or foreign.

The check reads a fresh run up to about half the length of a complete run,
drops the connection, reconnects with the same request and the resume header
set to the last event's ``id``, and judges what comes back: no event of the
first leg again, no event of another run, ids that continue where the first
leg stopped (when the server numbers them), and, across both legs, a run that
still keeps every ``x-sequence`` rule (which catches a lost ``tool_executing``
or a missing terminal event).

On a route an earlier read found stalled (see :class:`~chatcontract.sse.session.Stall`)
the check is inconclusive without reading again: its first leg would only wait
out the same deadline.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

import orjson

from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.sequence import lookup_pointer
from chatcontract.sse.checker import EVENTS, EventStreamChecker
from chatcontract.sse.session import Session
from chatcontract.sse.stream import DEADLINES, StreamRun

__all__ = ["CATEGORY", "check_resume"]

CATEGORY: Final = "sse"
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _numbered(event_id: str | None) -> tuple[str, int] | None:
    match = _NUMBERED.match(event_id or "")
    return (match.group(1), int(match.group(2))) if match else None


def _shown(run: StreamRun, index: int, offset: int = 0) -> str:
    event = run.events[index]
    return f"event #{offset + event.number}" + (f" ({event.type})" if event.type else "")


def _canonical(data: Any) -> bytes | None:
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def _repeats(label: str, first: StreamRun, second: StreamRun, k: int) -> list[Finding]:
    ids = {e.id: e.number for e in first.events if e.id}
    bodies = {_canonical(e.data): e.number for e in first.events if e.data is not None}
    found = []
    for index, event in enumerate(second.events):
        where = _shown(second, index, k)
        if event.id and event.id in ids:
            found.append(
                Finding(
                    f"{label}: resumed {where} repeats id {event.id!r} of event "
                    f"#{ids[event.id]}, received before the reconnect",
                    location=where,
                )
            )
        elif not event.id and event.data is not None and _canonical(event.data) in bodies:
            # Without an id the data is all that tells a replay; with a fresh id, equal
            # data is a new event that happens to say the same thing.
            found.append(
                Finding(
                    f"{label}: resumed {where} repeats the data of event "
                    f"#{bodies[_canonical(event.data)]}, received before the reconnect",
                    location=where,
                )
            )
    return found


def _foreign(
    label: str, pointers: tuple[str, ...], first: StreamRun, second: StreamRun, k: int
) -> list[Finding]:
    found = []
    for pointer in pointers:
        expected = next(
            (v for e in first.events if (v := lookup_pointer(e.data, pointer)) is not None), None
        )
        if expected is None:
            continue
        for index, event in enumerate(second.events):
            value = lookup_pointer(event.data, pointer)
            if value is not None and value != expected:
                where = _shown(second, index, k)
                found.append(
                    Finding(
                        f"{label}: resumed {where} belongs to {pointer} {value!r}, "
                        f"not the resumed run's {expected!r}",
                        location=where,
                    )
                )
    return found


def _gaps(label: str, first: StreamRun, second: StreamRun, k: int) -> list[Finding]:
    """Where the server numbers ids (``<run>:<n>``), the second leg must continue the count."""
    numbered = [_numbered(e.id) for e in first.events]
    if not numbered or any(n is None for n in numbered):
        return []
    prefixes = {n[0] for n in numbered if n}
    counts = [n[1] for n in numbered if n]
    if len(prefixes) != 1 or counts != list(range(counts[0], counts[0] + len(counts))):
        return []  # the first leg's ids are not a contiguous count: nothing to continue
    prefix, expected = prefixes.pop(), counts[-1] + 1
    previous = first.events[-1].id
    for index, event in enumerate(second.events):
        current = _numbered(event.id)
        if current is None or current[0] != prefix:
            continue  # a foreign or unnumbered id is reported by the other checks
        if current[1] > expected:
            where = _shown(second, index, k)
            missing = current[1] - expected
            return [
                Finding(
                    f"{label}: resumed {where} has id {event.id!r} right after {previous!r}: "
                    f"{missing} event{'s' if missing > 1 else ''} missing",
                    location=where,
                )
            ]
        expected, previous = current[1] + 1, event.id
    return []


def _across(first: StreamRun, second: StreamRun, k: int) -> list[Finding]:
    """The sequence rules over both legs, as if they were one stream."""
    compiled = first.checker.compiled
    body = first.request.body if isinstance(first.request.body, dict) else None
    checker = EventStreamChecker(compiled, body)
    for leg in (first, second):
        for event in leg.events:
            if event.event is None:
                return []  # too much data was dropped to judge the whole run
            checker.feed(event.event)
    checker.finish()
    found = []
    for aspect, findings in checker.findings.items():
        if aspect == EVENTS:
            continue
        for finding in findings:
            message = finding.message.replace(
                compiled.label, f"{compiled.label} (across the reconnect after event #{k})", 1
            )
            found.append(Finding(message, location=finding.location, severity=finding.severity))
    return found


async def check_resume(session: Session, main: StreamRun) -> ContractResult:
    """Judge ``Last-Event-ID`` resumption of the stream ``main`` was read from."""
    compiled = main.checker.compiled
    stream = compiled.stream
    label = compiled.label
    header = stream.resume_header or "Last-Event-ID"
    started = time.monotonic()
    result_id = f"{CATEGORY}/{label}/resume"
    name = f"{label} resumes after {header} without repeats, gaps or foreign events"

    def done(
        outcome: Outcome, reason: str = "", findings: tuple[Finding, ...] = ()
    ) -> ContractResult:
        return ContractResult(
            id=result_id,
            category=CATEGORY,
            name=name,
            tier=stream.operation.tier,
            outcome=outcome,
            findings=findings,
            reason=reason,
            duration=time.monotonic() - started,
            operation=label,
        )

    if not main.opened:
        verdict = await session.verdict(main)
        return done(verdict.outcome, verdict.reason, verdict.findings)
    stall = session.stall(compiled)
    if stall is not None:
        # The first leg is the same request: it would only wait out the same deadline.
        return done(Outcome.INCONCLUSIVE, stall.reason)
    if not main.checker.done or len(main.events) < 2:
        return done(
            Outcome.INCONCLUSIVE,
            f"resume needs a complete run of at least 2 events; the stream gave "
            f"{len(main.events)} events and stopped ({main.stop_detail or main.stop})",
        )
    k = max(1, len(main.events) // 2)
    first = await session.open(compiled, main.request.body, stop_after=k)
    session.note_stall(first, result_id)
    if not first.opened:
        verdict = await session.verdict(first)
        return done(verdict.outcome, verdict.reason, verdict.findings)
    if len(first.events) < k:
        # Runs of one request may differ in length; that says nothing about resuming.
        return done(
            Outcome.INCONCLUSIVE,
            f"{label}: a second run of the same request was shorter than event #{k}: it "
            f"ended after {len(first.events)} events ({first.stop_detail or first.stop})",
        )
    last_id = first.events[-1].id
    if not last_id:
        where = _shown(first, k - 1)
        message = f"{label} {where} has no id, so a client cannot resume with {header}"
        return done(
            Outcome.FAILED, message, session.evidence(first, [Finding(message, location=where)])
        )
    second = await session.open(compiled, main.request.body, headers={header: last_id})
    if not second.opened:
        message = f"{label} answered {second.status} to a reconnect with {header}: {last_id}"
        if second.status is None:
            message = (
                f"{label}: the reconnect with {header}: {last_id} failed ({second.stop_detail})"
            )
        return done(Outcome.FAILED, message, session.evidence(second, [Finding(message)]))
    findings = [*second.findings.get(EVENTS, []), *second.findings.get(DEADLINES, [])]
    for finding in second.checker.findings.get(EVENTS, []):
        message = finding.message.replace(label, f"{label} (resumed stream)", 1)
        findings.append(Finding(message, location=finding.location, severity=finding.severity))
    if not second.events:
        findings.append(
            Finding(
                f"{label}: the reconnect with {header}: {last_id} sent no events, although a "
                f"full run of the same request has {len(main.events) - k} more after event #{k}"
            )
        )
    findings += _repeats(label, first, second, k)
    findings += _foreign(label, compiled.run_pointers, first, second, k)
    findings += _gaps(label, first, second, k)
    details = {"resumed after": last_id, "events": f"{k} + {len(second.events)}"}
    if any(
        f.severity == "failure"
        for aspect, found in main.checker.findings.items()
        if aspect != EVENTS
        for f in found
    ):
        # The sequence results already fail the full run; repeating that here would
        # blame resumption for what the server does on every stream.
        details["sequences"] = "not judged across the reconnect: the full run breaks them"
    else:
        findings += _across(first, second, k)
    total = k + len(second.events)
    if total != len(main.events) and not any(f.severity == "failure" for f in findings):
        findings.append(
            Finding(
                f"{label}: the resumed run has {total} events ({k} + {len(second.events)}) "
                f"where a full run of the same request had {len(main.events)}",
                severity="warning",
            )
        )
    result = ContractResult.judged(
        id=result_id,
        category=CATEGORY,
        name=name,
        tier=stream.operation.tier,
        findings=session.evidence(second, findings),
        duration=time.monotonic() - started,
        operation=label,
        details=details,
    )
    return result
