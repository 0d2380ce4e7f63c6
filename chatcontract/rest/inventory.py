"""The endpoint inventory: is every spec'd operation actually there?

The status report's probes accepted "any status but 500" and so called
missing streaming routes present. Here each target is calibrated first:
random paths no spec would have show what *its* "no such route" answer looks
like (see :mod:`chatcontract.rest.fingerprint`). Then every operation is asked
one realistic question (examples, and objects created through the spec's
links, so lookups hit real objects), and judged:

* **missing**: it answers like an unknown route, whatever the status;
* **method missing**: 405 where the spec has the method;
* **not implemented**: 501;
* **broken**: no usable HTTP answer by the route's deadline, named for what
  came instead (:class:`~chatcontract.transport.TransportFailure`): the
  response took longer than N s, not HTTP, reset, closed, 101 to a plain GET;
* **present**: anything else, a 401 or a documented 404 problem included.

Each request's deadline covers connect and the whole answer: the run's
``connect_timeout + read_timeout``, or what the spec declares for the route
(an event stream's ``connect + first-event`` seconds, the WebSocket's
``handshake-seconds``).

Stream operations are read up to their headers only. ``/ws`` is asked with a
plain GET first; if that looks like an unknown route (Starlette routes plain
HTTP past a WebSocket route), a real handshake is compared with a handshake
to a random path. Rejected credentials do not blind the inventory: a 401
from a real route is not the unknown-route fingerprint. Only when unknown
routes themselves answer 401/403 (auth before routing) is presence
undecidable, and then the result is inconclusive, never passed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from chatcontract.budget import RunBudget
from chatcontract.context import CredentialVerdict, RunContext
from chatcontract.errors import TargetUnreachable
from chatcontract.objects import Leftovers, tokens_of
from chatcontract.presentation import Presentation, presentation_for
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.rest.control import positive_control
from chatcontract.rest.fingerprint import (
    MAX_BODY,
    Answer,
    Fingerprint,
    Judgement,
    Presence,
    calibrate,
    judge,
)
from chatcontract.rest.http import curl_command, ensure_reachable, exchange, new_client
from chatcontract.rest.samples import (
    Sample,
    build_sample,
    evaluate_link,
    inventory_order,
    operation_links,
    operation_parameters,
)
from chatcontract.runner import category
from chatcontract.spec import Operation
from chatcontract.transport import (
    Deadline,
    FailureKind,
    TransportFailure,
    classify,
    request_deadline,
)

__all__ = [
    "CATEGORY",
    "PROBE_SEGMENT",
    "run_inventory",
]

CATEGORY = "inventory"
PROBE_SEGMENT = "chatcontract-probe-"
"""Probe paths look like ``/chatcontract-probe-<hex>/<hex>``: easy to spot in server logs."""
_PROBES_PER_PLACE = 2
_CLEANUP_SECONDS = 10.0
"""How long deleting what the probes created may take in all."""
_CONCURRENT_CHECKS = 16
"""Inventory questions in flight at once (pacing by --rate-limit still applies to each)."""
_STALLS = frozenset({FailureKind.TOO_SLOW, FailureKind.NO_ANSWER})
_BODY_METHODS = ("POST", "PUT", "PATCH")
_OPENED = "opened"

Key = tuple[str, Presentation | None]
"""(HTTP method, whether the request carries a token): unknown routes may differ by both."""


@dataclass(frozen=True, slots=True)
class _Checked:
    judgement: Judgement | None
    sample: Sample
    presented: Presentation | None
    """How the token went with the request; ``None``: sent without one."""
    reason: str = ""
    """Why there is no judgement (no calibration, no budget)."""
    failure: TransportFailure | None = None
    """The operation's request got no usable HTTP answer (too slow, not HTTP, reset...)."""


def _probe_path(prefix: str) -> str:
    return f"{prefix}/{PROBE_SEGMENT}{secrets.token_hex(4)}/{secrets.token_hex(4)}"


def _prefixes(ops: list[Operation]) -> list[str]:
    """The root and each first path segment that has routes below it (``/api``...)."""
    found = [""]
    for op in ops:
        segments = [s for s in op.path.split("/") if s]
        if len(segments) >= 2 and not segments[0].startswith("{"):
            prefix = "/" + segments[0]
            if prefix not in found:
                found.append(prefix)
    return found


class _Inventory:
    def __init__(
        self,
        ctx: RunContext,
        client: httpx.AsyncClient,
        token: str | None,
        budget: RunBudget,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.token = token
        self.budget = budget
        self.deadline = request_deadline(ctx.settings)
        self.prints: dict[Key, list[Fingerprint]] = {}
        self.calibration_failures: dict[Key, TransportFailure] = {}
        self.stalled: TransportFailure | None = None
        """A probe ran into the deadline: the target stalls unknown routes."""
        self.known: dict[str, Any] = {}
        self.pacer = ctx.services.pacer
        self.leftovers = Leftovers(ctx)
        """Objects the probes created (a POST that succeeded), deleted at the end."""
        self.identifiers = {
            link.parameter for op in ctx.spec.operations for link in operation_links(ctx.spec, op)
        }

    def _headers(self, presented: Presentation | None) -> dict[str, str]:
        return presented.headers(self.token) if presented and self.token else {}

    def presented(self, op: Operation) -> Presentation | None:
        """How ``op`` gets the token (:mod:`chatcontract.presentation`); ``None``: without one."""
        if op.is_public or self.token is None:
            return None
        return presentation_for(self.ctx.spec, op)

    def deadline_for(self, op: Operation) -> float:
        """The route's own deadline for its answer where the spec declares one."""
        if op.kind == "stream":
            for stream in self.ctx.spec.streams:
                if stream.operation.operation_id == op.operation_id:
                    # Headers may come with the first event; the inventory reads no further.
                    return stream.deadlines.connect + stream.deadlines.first_event
        if op.kind == "websocket":
            for socket in self.ctx.spec.websockets:
                if socket.operation.operation_id == op.operation_id:
                    return socket.deadlines.handshake
        return self.deadline

    async def _send(
        self, sample: Sample, presented: Presentation | None, deadline: float | None = None
    ) -> Answer | TransportFailure:
        await self.pacer.wait()
        query = dict(sample.query)
        if presented is not None and self.token:
            query.update(presented.params(self.token))
        return await exchange(
            self.client,
            sample.method,
            sample.path,
            deadline=self.deadline if deadline is None else deadline,
            headers=self._headers(presented),
            query=query,
            body=sample.body,
            media_type=sample.media_type,
        )

    async def calibrate(self, ops: list[Operation]) -> None:
        keys = list(dict.fromkeys((op.method.upper(), self.presented(op)) for op in ops))
        for method, presented in keys:
            samples: list[tuple[str, Answer]] = []
            for prefix in _prefixes(ops):
                for _ in range(_PROBES_PER_PLACE):
                    if self.stalled is not None or not self.budget.take():
                        break
                    path = _probe_path(prefix)
                    body: dict[str, Any] | None = {} if method in _BODY_METHODS else None
                    answer = await self._send(Sample(method, path, {}, body), presented)
                    if isinstance(answer, Answer):
                        samples.append((path, answer))
                        continue
                    self.calibration_failures.setdefault((method, presented), answer)
                    if answer.kind in _STALLS:
                        # A target that lets a probe run into the deadline would do it to
                        # every probe: one deadline is enough to know, not one per probe.
                        self.stalled = answer
            self.prints[(method, presented)] = calibrate(samples)

    async def check(self, op: Operation) -> _Checked:
        presented = self.presented(op)
        params = operation_parameters(self.ctx.spec, op)
        sample = build_sample(op, params, self.known, self.identifiers)
        prints = self.prints.get((sample.method, presented))
        if not prints:
            why = "the unknown-route answer could not be learned"
            probe = self.calibration_failures.get((sample.method, presented)) or self.stalled
            if probe is not None:
                why += f": a probe to an unknown path got {probe.line()}"
            if self.stalled is None or not self.budget.take():
                return _Checked(None, sample, presented, why)
            # Unknown routes stall: presence cannot be judged, but a route that runs into
            # its own deadline breaks it whatever the fingerprint, so it is still asked.
            answer = await self._send(sample, presented, self.deadline_for(op))
            if isinstance(answer, TransportFailure):
                return _Checked(None, sample, presented, failure=answer)
            return _Checked(None, sample, presented, why)
        if not self.budget.take():
            return _Checked(None, sample, presented, self.budget.reason() or "no budget")
        answer = await self._send(sample, presented, self.deadline_for(op))
        if isinstance(answer, TransportFailure):
            if op.kind == "websocket" and answer.kind is FailureKind.SWITCHED:
                evidence = "a plain GET switched protocols (101): the upgrade route is there"
                return _Checked(Judgement(Presence.PRESENT, evidence), sample, presented)
            if op.kind == "websocket":
                # Some WebSocket servers ignore plain HTTP; the handshake is the real question.
                plain = Judgement(Presence.UNDECIDABLE, f"a plain GET: {answer.line()}")
                judgement = await self._handshake(op, sample.path, plain)
                if judgement.presence in (Presence.PRESENT, Presence.MISSING):
                    return _Checked(judgement, sample, presented)
            return _Checked(None, sample, presented, failure=answer)
        judgement = judge(answer, sample.path, prints, op.responses)
        if op.kind == "websocket" and judgement.presence is Presence.MISSING:
            judgement = await self._handshake(op, sample.path, judgement)
        if judgement.presence is Presence.PRESENT and 200 <= answer.status < 300:
            self._learn(op, answer)
        return _Checked(judgement, sample, presented)

    def _learn(self, op: Operation, answer: Answer) -> None:
        links = operation_links(self.ctx.spec, op)
        if not links or len(answer.body) >= MAX_BODY:
            return
        try:
            body = json.loads(answer.body)
        except ValueError:
            return
        # A POST the inventory sent may have made an object: deleted when the checks end.
        self.leftovers.record(op, None, body)
        for link in links:
            value = evaluate_link(link.expression, body)
            if value is not None:
                self.known.setdefault(link.parameter, value)

    async def _handshake(self, op: Operation, path: str, plain: Judgement) -> Judgement:
        """Plain HTTP looked like an unknown route; does a real handshake to ``path`` too?

        ``path`` is the filled sample path, never the ``{template}``.
        """
        presented = self.presented(op)
        answer = await self._upgrade(op, path, presented)
        if answer == _OPENED:
            return Judgement(Presence.PRESENT, "the WebSocket handshake answered 101")
        if not isinstance(answer, Answer):
            return Judgement(Presence.UNDECIDABLE, f"{plain.evidence}; the handshake: {answer}")
        probes: list[tuple[str, Answer]] = []
        for _ in range(_PROBES_PER_PLACE):
            path = _probe_path("")
            probe = await self._upgrade(op, path, presented)
            if isinstance(probe, Answer):
                probes.append((path, probe))
        if not probes:
            return Judgement(
                Presence.UNDECIDABLE,
                f"{plain.evidence}; handshakes to unknown paths gave no comparable answer",
            )
        judgement = judge(answer, path, calibrate(probes), op.responses)
        where = "the WebSocket handshake " + judgement.evidence
        if judgement.presence is Presence.MISSING and answer.status in (401, 403):
            # Starlette refuses an unknown WebSocket path with 403, exactly as it refuses a token.
            return Judgement(
                Presence.UNDECIDABLE,
                f"{plain.evidence}; {where}: a refused token and a missing route look alike",
            )
        return Judgement(judgement.presence, f"{plain.evidence}; {where}", judgement.fingerprint)

    async def _upgrade(
        self, op: Operation, path: str, presented: Presentation | None
    ) -> Answer | str:
        """The HTTP answer refusing a handshake, :data:`_OPENED` on 101, else why there is none."""
        if not self.budget.take():
            return self.budget.reason() or "no budget"
        url = self.ctx.ws_base_url.rstrip("/") + path
        params = presented.params(self.token) if presented and self.token else {}
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        limit = self.deadline_for(op)
        await self.pacer.wait()
        deadline = Deadline(limit)
        try:
            async with ws_connect(
                url,
                additional_headers=self._headers(presented),
                open_timeout=limit,
                close_timeout=self.ctx.settings.connect_timeout,
                max_size=MAX_BODY,
            ):
                return _OPENED
        except InvalidStatus as exc:
            response = exc.response
            return Answer.of(
                response.status_code, response.headers.get("Content-Type"), bytes(response.body)
            )
        except (OSError, InvalidHandshake, WebSocketException, TimeoutError) as exc:
            failure = classify(exc, elapsed=deadline.elapsed(), limit=limit)
            if failure.unreachable:
                raise TargetUnreachable(f"cannot reach {url}: {failure.line()}") from None
            return failure.line()


def _result(
    op: Operation,
    checked: _Checked,
    control: CredentialVerdict,
    base_url: str,
    duration: float,
) -> ContractResult:
    common: dict[str, Any] = {
        "id": f"{CATEGORY}/{op.label}",
        "category": CATEGORY,
        "name": f"{op.label} is implemented",
        "tier": op.tier,
        "operation": op.label,
        "duration": duration,
    }
    judgement = checked.judgement
    failure = checked.failure
    if failure is not None:
        # A route that cannot give a usable HTTP answer in time is not implemented usably.
        found = Finding(
            message=failure.line(),
            location=_location(op, checked.sample),
            repro=_repro(checked, base_url),
            code=failure.code,
        )
        details = {"transport": failure.kind.value, "evidence": failure.detail}
        metrics = {"elapsed_seconds": failure.elapsed, "bytes_received": float(failure.received)}
        return replace(
            ContractResult.judged(findings=[found], details=details, **common), metrics=metrics
        )
    if judgement is None:
        return ContractResult(outcome=Outcome.INCONCLUSIVE, reason=checked.reason, **common)
    details = {"presence": judgement.presence.value, "evidence": judgement.evidence}
    if judgement.presence is Presence.PRESENT:
        return ContractResult(outcome=Outcome.PASSED, details=details, **common)
    if judgement.presence is Presence.UNDECIDABLE:
        reason = judgement.evidence
        if control.accepted is False:
            reason = f"{control.reason}; {reason}"
        return ContractResult(
            outcome=Outcome.INCONCLUSIVE, reason=reason, details=details, **common
        )
    finding = Finding(
        message=f"{judgement.presence.value}: {judgement.evidence}",
        location=_location(op, checked.sample),
        repro=_repro(checked, base_url),
    )
    return ContractResult.judged(findings=[finding], details=details, **common)


def _location(op: Operation, sample: Sample) -> str:
    return f"{sample.method} {sample.path}" if sample.path != op.path else ""


def _repro(checked: _Checked, base_url: str) -> str:
    sample = checked.sample
    return curl_command(
        sample.method,
        base_url.rstrip("/") + sample.path,
        presented=checked.presented,
        query=sample.query,
        body=sample.body,
        media_type=sample.media_type,
    )


@category(
    CATEGORY,
    order=10,
    description="Every spec'd operation has a route: none answers like an unknown path.",
)
async def run_inventory(ctx: RunContext) -> AsyncIterator[ContractResult]:
    ops = [op for op in ctx.spec.operations if ctx.progress.wants(f"{CATEGORY}/{op.label}")]
    if not ops:
        return
    await ensure_reachable(ctx.base_url, ctx.settings.connect_timeout)
    budget = ctx.services.budget
    token = await tokens_of(ctx)("")
    producers = [op.operation_id for op in ops if operation_links(ctx.spec, op)]
    results: dict[str, ContractResult] = {}
    async with new_client(ctx) as client:
        inventory = _Inventory(ctx, client, token, budget)
        # Independent questions: the credentials and the unknown-route answer.
        control, _ = await asyncio.gather(positive_control(ctx), inventory.calibrate(ops))
        gate = asyncio.Semaphore(_CONCURRENT_CHECKS)

        async def check(op: Operation) -> None:
            async with gate:
                started = time.monotonic()
                checked = await inventory.check(op)
                results[op.operation_id] = _result(
                    op, checked, control, ctx.base_url, time.monotonic() - started
                )

        # Producers first (their answers feed the links later lookups use), deletions
        # last (they destroy objects); within a wave the questions are independent, so
        # a stalled target costs one deadline per wave, not one per operation.
        ordered = inventory_order(ops, producers)
        waves = [
            [op for op in ordered if op.operation_id in producers],
            [
                op
                for op in ordered
                if op.operation_id not in producers and op.method.upper() != "DELETE"
            ],
            [op for op in ordered if op.method.upper() == "DELETE"],
        ]
        if inventory.stalled is not None:
            # Unknown routes ran into the deadline: no answer will feed a link, so the
            # order buys nothing and one wave costs one deadline.
            waves = [ordered]
        for wave in waves:
            await asyncio.gather(*(check(op) for op in wave))
    leftovers = inventory.leftovers
    made = {c.producer.operation_id for c in leftovers.created}
    await leftovers.cleanup(tokens_of(ctx), _CLEANUP_SECONDS)
    for op in ops:
        result = results[op.operation_id]
        if op.operation_id in made:
            result = replace(result, details={**result.details, **leftovers.details()})
        yield result
