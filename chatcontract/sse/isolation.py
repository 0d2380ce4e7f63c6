"""User isolation on the event streams: nobody receives another user's run.

Two users stream at the same time, each message carrying its own canary
(``canary-<hex>``). Each stream is read to its end (plus a short grace, since
a leak may arrive late) with its raw bytes kept, and then neither user's
canary nor run identity (the values the spec's ``consistent`` correlations
point at, e.g. ``/run_id``) may appear anywhere in what the other received,
and no run id may be claimed by both streams. Events a server sends after a
run's terminal event while the other user streams are reported too.

A canary goes only where the request schema allows free text (see
:mod:`chatcontract.bodies`); without one, isolation is judged by the run ids
the server assigns, and a stream offering neither is skipped with the reason.
Open routes (``security: []``, or an API without authentication) have no
owner to isolate: they are skipped with the reason, never judged. A route an
earlier read found stalled (see :class:`~chatcontract.sse.session.Stall`) is
not read again: it makes the result inconclusive naming that read, unless
another route's streams show a leak.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace
from typing import Final, Literal

from chatcontract.auth import no_auth_reason
from chatcontract.bodies import carries
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.sequence import lookup_pointer
from chatcontract.sse.checker import CompiledStream
from chatcontract.sse.session import Session, new_canary, request_body
from chatcontract.sse.stream import StreamRun

__all__ = ["CATEGORY", "check_isolation"]

CATEGORY: Final = "sse"
_MIN_MARKER = 8
"""Shorter run ids could match by chance inside unrelated bytes."""


def _own_runs(compiled: CompiledStream, run: StreamRun, canary: str) -> set[str]:
    """The run identities of ``run``'s own events.

    A leaking server mixes other runs into a stream, so only events that carry
    the user's own canary vouch for a run id; if none does (the server does not
    echo messages) the most frequent value stands in for it.
    """
    owned: set[str] = set()
    common: Counter[str] = Counter()
    for event in run.events:
        for pointer in compiled.run_pointers:
            value = lookup_pointer(event.data, pointer)
            if not isinstance(value, str) or len(value) < _MIN_MARKER:
                continue
            common[value] += 1
            if event.event is not None and canary in event.event.data:
                owned.add(value)
    if not owned and common:
        owned.add(common.most_common(1)[0][0])
    return owned


def _located(run: StreamRun, marker: str) -> str:
    for event in run.events:
        if event.event is not None and marker in event.event.data:
            return f"event #{event.number}" + (f" ({event.type})" if event.type else "")
    offset = bytes(run.raw or b"").find(marker.encode())
    return f"byte {offset} of the body"


def _leaks(
    label: str, owner: str, markers: dict[str, str], receiver: str, received: StreamRun
) -> list[Finding]:
    raw = bytes(received.raw or b"")
    found = []
    for marker, what in markers.items():
        if marker.encode() in raw:
            where = _located(received, marker)
            found.append(
                Finding(
                    f"{label}: {receiver} received {owner}'s {what} {marker!r} in {where}",
                    location=where,
                )
            )
    return found


def _shared(
    session: Session,
    label: str,
    users: tuple[str, str],
    runs: list[StreamRun],
    shared: set[str],
) -> list[Finding]:
    """A run id both streams claim as their own: one run's events reached both users."""
    found = [
        Finding(
            f"{label}: {users[0]} and {users[1]} both received run {value!r} as their own "
            f"({_located(runs[0], value)} and {_located(runs[1], value)})",
            location=_located(runs[1], value),
        )
        for value in sorted(shared)
    ]
    return list(session.evidence(runs[1], found, extra_repro=runs[0].request.curl()))


def _takes_canary(compiled: CompiledStream) -> bool:
    probe = new_canary()
    return carries(request_body(compiled.stream.operation, probe), probe)


def _no_marker(compiled: CompiledStream) -> str:
    return (
        f"{compiled.label}: the request schema allows no free text to carry a canary and the "
        "spec correlates no run id, so nothing could show one user's events in another's stream"
    )


async def _pair(
    session: Session, compiled: CompiledStream, users: tuple[str, str]
) -> tuple[list[Finding], str | None, dict[str, str]]:
    """Stream as both users at once; return findings, an inconclusive reason, details."""
    label = compiled.label
    operation = compiled.stream.operation
    canaries = (new_canary(), new_canary())
    bodies = [request_body(operation, canary) for canary in canaries]
    sent = [carries(body, canary) for body, canary in zip(bodies, canaries, strict=True)]
    variables = ("$CHATCONTRACT_TOKEN", "$CHATCONTRACT_TOKEN_2")
    # A task group, so that if one side fails the other is not left reading alone.
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                session.open(
                    compiled,
                    body,
                    user=user,
                    token_variable=variable,
                    grace=session.options.grace,
                    capture_raw=session.options.raw_capture_bytes,
                )
            )
            for user, body, variable in zip(users, bodies, variables, strict=True)
        ]
    runs = [task.result() for task in tasks]
    for run in runs:
        session.note_stall(run, f"{CATEGORY}/isolation")
    for user, run in zip(users, runs, strict=True):
        if not run.opened:
            verdict = await session.verdict(run)
            return [], f"{label} as {user}: {verdict.reason}", {}
    # A stream with no sequence has no terminal event to wait for: its run is over at EOF.
    complete = all(
        run.checker.done or (not compiled.sequences and run.stop == "eof") for run in runs
    )
    owned = [_own_runs(compiled, run, canary) for run, canary in zip(runs, canaries, strict=True)]
    echoed = [
        canary.encode() in bytes(run.raw or b"") for run, canary in zip(runs, canaries, strict=True)
    ]
    if not any(echoed) and not any(owned):
        return [], f"{label}: neither stream echoed its canary or a run id to look for", {}
    findings = _shared(session, label, users, runs, owned[0] & owned[1])
    for me, other in ((0, 1), (1, 0)):
        markers = {canaries[me]: "canary"} if sent[me] else {}
        markers.update({value: "run" for value in owned[me] if value not in owned[other]})
        leaks = _leaks(label, users[me], markers, users[other], runs[other])
        findings += session.evidence(runs[other], leaks, extra_repro=runs[me].request.curl())
        late = [
            replace(f, message=f.message.replace(label, f"{label} (as {users[me]})", 1))
            for f in runs[me].late_findings()
        ]
        findings += session.evidence(runs[me], late, extra_repro=runs[other].request.curl())
    if not complete and not findings:
        stops = ", ".join(
            f"{user}: {run.stop_detail or run.stop}"
            for user, run in zip(users, runs, strict=True)
            if not (run.checker.done or (not compiled.sequences and run.stop == "eof"))
        )
        return [], f"{label}: a stream ended before its run did ({stops})", {}
    details = {
        f"{label} {user}": f"{len(run.events)} events, runs {sorted(own) or '-'}"
        for user, run, own in zip(users, runs, owned, strict=True)
    }
    return findings, None, details


async def check_isolation(
    session: Session, streams: list[CompiledStream], unopened: tuple[str, ...] = ()
) -> ContractResult:
    """One result over every stream route that opened for the first user.

    ``unopened`` holds the reasons the other routes did not open; when none
    opened they become the inconclusive reason (credentials first). A route
    the session knows stalled is not read again: its stall is a reason.
    """
    started = time.monotonic()
    users = session.ctx.credentials.users
    tiers = {s.operation.tier for s in session.ctx.spec.streams}
    tier: Literal["P1", "P2"] = "P1" if "P1" in tiers else "P2"

    def result(
        outcome: Outcome, reason: str, details: dict[str, str] | None = None
    ) -> ContractResult:
        return ContractResult(
            id=f"{CATEGORY}/isolation",
            category=CATEGORY,
            name="no user's stream carries another user's events",
            tier=tier,
            outcome=outcome,
            reason=reason,
            duration=time.monotonic() - started,
            details=details or {},
        )

    spec_streams = session.ctx.spec.streams
    if spec_streams and all(s.operation.is_public for s in spec_streams):
        return result(Outcome.SKIPPED, no_auth_reason())
    if len(users) < 2:
        return result(Outcome.SKIPPED, "isolation needs two users; the credentials hold one")
    skips = [no_auth_reason(c.stream.operation) for c in streams if c.stream.operation.is_public]
    streams = [c for c in streams if not c.stream.operation.is_public]
    unmarked = [c for c in streams if not c.run_pointers and not _takes_canary(c)]
    skips += [_no_marker(c) for c in unmarked]
    streams = [c for c in streams if c not in unmarked]
    if not streams and skips and not unopened:
        return result(Outcome.SKIPPED, "; ".join(skips))
    if not streams:
        rejected = [r for r in unopened if r.startswith("credentials rejected")]
        if rejected:
            return result(Outcome.INCONCLUSIVE, rejected[0])
        why = "; ".join(unopened) or "the spec has no stream route"
        return result(Outcome.INCONCLUSIVE, f"no stream route opened for {users[0]}: {why}")
    findings: list[Finding] = []
    details: dict[str, str] = {"not checked": "; ".join(skips)} if skips else {}
    reasons = []
    for compiled in streams:
        stall = session.stall(compiled)
        if stall is not None:
            # Both users would only wait out the deadline the first reader missed.
            reasons.append(stall.reason)
            details[f"{compiled.label} not read"] = stall.reason
            continue
        found, reason, more = await _pair(session, compiled, (users[0], users[1]))
        findings += found
        details.update(more)
        if reason:
            reasons.append(reason)
    if reasons and not any(f.severity == "failure" for f in findings):
        return result(Outcome.INCONCLUSIVE, "; ".join(reasons), details)
    return ContractResult.judged(
        id=f"{CATEGORY}/isolation",
        category=CATEGORY,
        name="no user's stream carries another user's events",
        tier=tier,
        findings=findings,
        duration=time.monotonic() - started,
        details=details,
    )
