"""Object-level authorization: another user's objects are never served to (or changed by) us.

The spec says another user's resources answer 404. Which objects and which
operations that covers is read from the spec, never listed here: every
operation that creates something (a POST documenting 201) with ``links``
feeding other operations' path or query parameters from
``$response.body#/...`` is a *producer*; the linked operations are the
*targets*. For each producer:

1. user A (``users[0]``) creates the object from the operation's request
   example (else an instance generated from its schema), with a canary nonce
   in its free-text string fields; a create whose request body takes a
   linked parameter (``thread_id``) adds a child object (a message) the same
   way;
2. each safe target is read by A first (the object's positive control: if A
   cannot read its own object, the verdict is INCONCLUSIVE), then by user B
   (``users[1]``) with the same parameters. B must get a documented 404 or 403,
   never a 2xx, and A's canary must not be anywhere in B's body;
3. each unsafe target (PUT, DELETE...) is sent by B against A's object (only
   ever an object this run created), must be refused the same way, and A's
   object must read back unchanged afterwards;
4. A deletes its object when the spec links a DELETE.

Open targets (no security requirement, or ``security: []``) have no owner:
they are skipped with the reason, before any credential is asked for.

One result per target: ``rest/isolation/GET /api/threads/{thread_id}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from chatcontract.auth import TokenRequestError, no_auth_reason
from chatcontract.bodies import with_marker
from chatcontract.budget import RunBudget
from chatcontract.context import CredentialVerdict, RunContext, shared_positive_control
from chatcontract.presentation import presentation_for
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.rest.control import positive_control
from chatcontract.rest.fingerprint import Answer
from chatcontract.rest.http import curl_command, exchange, new_client
from chatcontract.rest.results import CATEGORY
from chatcontract.rest.samples import (
    Sample,
    build_sample,
    evaluate_link,
    operation_links,
    operation_parameters,
    request_properties,
)
from chatcontract.spec import Operation, Spec
from chatcontract.transport import TransportFailure

__all__ = [
    "ISOLATION_PREFIX",
    "PEER_TOKEN_VARIABLE",
    "Producer",
    "Target",
    "isolation_id",
    "isolation_name",
    "isolation_plan",
    "isolation_results",
    "peer_findings",
    "with_canary",
]

ISOLATION_PREFIX = f"{CATEGORY}/isolation"
PEER_TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN_2"
"""The second user's token in reproductions: a shell variable, never the value."""
TWO_USERS = "needs two users (CHATCONTRACT_USERS)"

_DENIALS = (404, 403)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_BODY_PREFIX = "$response.body#/"
_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class Target:
    """An operation a producer's links point at, with the link expression of each parameter."""

    op: Operation
    parameters: Mapping[str, str]

    @property
    def safe(self) -> bool:
        return self.op.method.upper() in _SAFE_METHODS


@dataclass(frozen=True, slots=True)
class Producer:
    op: Operation
    targets: tuple[Target, ...]
    children: tuple[Operation, ...] = ()
    """Creates whose request body takes one of the linked parameters (a message in a thread)."""


def isolation_id(op: Operation) -> str:
    return f"{ISOLATION_PREFIX}/{op.label}"


def isolation_name(op: Operation) -> str:
    safe = op.method.upper() in _SAFE_METHODS
    return f"{op.label} never {'serves' if safe else 'changes'} another user's object"


def isolation_plan(spec: Spec, ops: Collection[Operation]) -> list[Producer]:
    """Producers and their targets among ``ops``; each target belongs to its first producer."""
    by_id = {op.operation_id: op for op in spec.rest_operations}
    wanted = {op.operation_id for op in ops}
    creates = [
        op for op in spec.rest_operations if op.method.upper() == "POST" and "201" in op.responses
    ]
    producers: list[Producer] = []
    claimed: set[str] = set()
    for create in creates:
        grouped: dict[str, dict[str, str]] = {}
        for link in operation_links(spec, create):
            if link.expression.startswith(_BODY_PREFIX):
                grouped.setdefault(link.target, {})[link.parameter] = link.expression
        targets = []
        for target_id, parameters in grouped.items():
            op = by_id.get(target_id)
            if op is None or target_id not in wanted or target_id in claimed:
                continue
            where = {p.name: p.location for p in operation_parameters(spec, op)}
            if all(where.get(name) in ("path", "query") for name in parameters):
                targets.append(Target(op, parameters))
                claimed.add(target_id)
        if not targets:
            continue
        names = {name for target in targets for name in target.parameters}
        children = tuple(
            other
            for other in creates
            if other is not create and names & set(request_properties(spec, other))
        )
        producers.append(Producer(create, tuple(targets), children))
    return producers


def with_canary(
    body: Any,
    properties: Mapping[str, Mapping[str, Any]],
    canary: str,
    *,
    keep: Collection[str] = (),
) -> Any:
    """``body`` with ``canary`` added to each free-text string field whose schema allows it."""
    return with_marker(body, {"properties": dict(properties)}, canary, keep=keep)


def _expected(op: Operation) -> str:
    documented = [str(s) for s in _DENIALS if op.documents_status(s)]
    if not documented:
        return "404 or 403 (the operation documents neither)"
    return "a documented " + " or ".join(documented)


def _excerpt(answer: Answer) -> str:
    text = answer.body[:_EXCERPT].decode("utf-8", "replace").strip()
    more = " …" if len(answer.body) > _EXCERPT else ""
    return f"{text}{more}" if text else "(empty)"


def _request(sample: Sample) -> str:
    query = "&".join(f"{k}={v}" for k, v in sample.query.items())
    return f"{sample.method} {sample.path}" + (f"?{query}" if query else "")


def peer_findings(
    op: Operation, sample: Sample, answer: Answer, canary: str, *, owner: str, peer: str
) -> list[str]:
    """What is wrong with ``peer``'s answer to a request for ``owner``'s object (pure)."""
    request, status = _request(sample), answer.status
    refused = status in _DENIALS and op.documents_status(status)
    problems = []
    if 200 <= status < 300:
        verb = "got" if op.method.upper() in _SAFE_METHODS else "was allowed to change"
        problems.append(
            f"{peer} {verb} {owner}'s object: {request} answered {status}, "
            f"expected {_expected(op)}; body: {_excerpt(answer)}"
        )
    elif not refused:
        problems.append(
            f"{request} answered {status} to {peer} for {owner}'s object, "
            f"expected {_expected(op)}; body: {_excerpt(answer)}"
        )
    if canary.encode() in answer.body:
        problems.append(f"{owner}'s canary {canary} is in the body {peer} received ({status})")
    return problems


def _result(
    op: Operation,
    outcome: Outcome | None = None,
    *,
    findings: Sequence[Finding] = (),
    reason: str = "",
    duration: float = 0.0,
) -> ContractResult:
    found = tuple(findings)
    if outcome is None:
        outcome = Outcome.FAILED if any(f.severity == "failure" for f in found) else Outcome.PASSED
    return ContractResult(
        id=isolation_id(op),
        category=CATEGORY,
        name=isolation_name(op),
        tier=op.tier,
        outcome=outcome,
        findings=found,
        reason=reason,
        duration=duration,
        operation=op.label,
    )


class _Session:
    """Requests as A or B: budgeted, paced, each under a deadline."""

    def __init__(
        self, ctx: RunContext, client: httpx.AsyncClient, budget: RunBudget, tokens: dict[str, str]
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.budget = budget
        self.tokens = tokens
        self.pacer = ctx.services.pacer
        self.deadline = ctx.settings.connect_timeout + ctx.settings.read_timeout

    async def send(self, user: str, op: Operation, sample: Sample) -> Answer | str:
        """The answer, or why there is none (budget spent, too slow, not HTTP...)."""
        reason = self.budget.reason()
        if reason is None and not self.budget.take():
            reason = self.budget.reason() or f"request budget exhausted ({self.budget.requests})"
        if reason is not None:
            return reason
        await self.pacer.wait()
        left = self.budget.time_left()
        deadline = self.deadline if left is None else max(0.1, min(self.deadline, left))
        presented, token = presentation_for(self.ctx.spec, op), self.tokens[user]
        answer = await exchange(
            self.client,
            sample.method,
            sample.path,
            deadline=deadline,
            headers=presented.headers(token),
            query={**sample.query, **presented.params(token)},
            body=sample.body,
            media_type=sample.media_type,
        )
        if isinstance(answer, TransportFailure):
            return f"{_request(sample)} as {user}: {answer.line()}"
        return answer

    def repro(self, op: Operation, sample: Sample) -> str:
        command = curl_command(
            sample.method,
            self.ctx.url(sample.path),
            presented=presentation_for(self.ctx.spec, op),
            query=sample.query or None,
            body=sample.body,
            media_type=sample.media_type,
            token_variable=PEER_TOKEN_VARIABLE,
        )
        return self.ctx.redactor(command)


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        return None


def _ok(answer: Answer | str) -> bool:
    return isinstance(answer, Answer) and 200 <= answer.status < 300


def _why(answer: Answer | str, request: str) -> str:
    return answer if isinstance(answer, str) else f"{request} answered {answer.status}"


@dataclass(slots=True)
class _Run:
    """One producer's object, created by A, probed by B."""

    session: _Session
    spec: Spec
    owner: str
    peer: str
    canary: str
    notes: list[Finding]

    def sample(self, op: Operation, values: Mapping[str, Any], *, marker: str = "") -> Sample:
        sample = build_sample(op, operation_parameters(self.spec, op), values, values.keys())
        marked = with_canary(
            sample.body,
            request_properties(self.spec, op),
            marker or self.canary,
            keep=values.keys(),
        )
        return replace(sample, body=marked)

    async def create(self, producer: Producer) -> dict[str, Any] | str:
        """A's object and its children; the linked values, or why there are none."""
        sample = self.sample(producer.op, {})
        answer = await self.session.send(self.owner, producer.op, sample)
        if isinstance(answer, str):
            return answer
        if not _ok(answer):
            return f"{self.owner} could not create the object: {_why(answer, _request(sample))}"
        body = _json(answer)
        values: dict[str, Any] = {}
        for target in producer.targets:
            for name, expression in target.parameters.items():
                value = evaluate_link(expression, body)
                if value is None:
                    return f"the link {expression} found nothing in {producer.op.label}'s answer"
                values[name] = value
        for child in producer.children:
            wanted = set(request_properties(self.spec, child)) & set(values)
            child_sample = self.sample(child, values)
            if isinstance(child_sample.body, dict):
                child_sample = replace(
                    child_sample, body={**child_sample.body, **{n: values[n] for n in wanted}}
                )
            made = await self.session.send(self.owner, child, child_sample)
            if not _ok(made):
                why = _why(made, _request(child_sample))
                self.notes.append(
                    Finding(
                        f"no child object (only the parent was probed): {why}", severity="warning"
                    )
                )
        return values

    async def read(self, target: Target, values: Mapping[str, Any]) -> tuple[ContractResult, Any]:
        """The verdict on a safe target, and A's own answer (a baseline for the writes)."""
        op, started = target.op, time.monotonic()
        sample = self.sample(op, values)
        own = await self.session.send(self.owner, op, sample)
        if isinstance(own, str):
            return _result(op, Outcome.INCONCLUSIVE, reason=own), None
        if not _ok(own):
            reason = f"{self.owner} could not read its own object: {_why(own, _request(sample))}"
            return _result(op, Outcome.INCONCLUSIVE, reason=reason), None
        result = await self._peer(op, sample, started)
        return result, _json(own)

    async def write(
        self, target: Target, values: Mapping[str, Any], reader: Target | None, baseline: Any
    ) -> ContractResult:
        """B's write to A's object must be refused and leave the object as it was."""
        op, started = target.op, time.monotonic()
        if reader is None or baseline is None:
            reason = "no linked read of the object to confirm it is unchanged afterwards"
            return _result(op, Outcome.INCONCLUSIVE, reason=reason)
        # B's own marker: a server that echoes B's body must not pass for A's canary leaking.
        sample = self.sample(op, values, marker=f"chatcontract-peer-{secrets.token_hex(6)}")
        result = await self._peer(op, sample, started)
        if result.outcome is not Outcome.PASSED and result.outcome is not Outcome.FAILED:
            return result
        check = self.sample(reader.op, values)
        after = await self.session.send(self.owner, reader.op, check)
        findings = list(result.findings)
        if isinstance(after, str):
            return replace(result, outcome=Outcome.INCONCLUSIVE, reason=after)
        if not _ok(after):
            findings.append(
                Finding(
                    f"{self.owner}'s object is gone after {self.peer}'s {op.method.upper()}: "
                    f"{_request(check)} answered {after.status} to {self.owner}"
                )
            )
        elif _json(after) != baseline:
            findings.append(
                Finding(
                    f"{self.owner}'s object changed after {self.peer}'s {op.method.upper()}: "
                    f"{_request(check)} now answers {_excerpt(after)}"
                )
            )
        return _result(op, findings=findings, duration=time.monotonic() - started)

    async def _peer(self, op: Operation, sample: Sample, started: float) -> ContractResult:
        answer = await self.session.send(self.peer, op, sample)
        if isinstance(answer, str):
            return _result(op, Outcome.INCONCLUSIVE, reason=answer)
        if answer.status == 401:
            reason = f"credentials rejected: 401 from {_request(sample)} for {self.peer}"
            return _result(op, Outcome.INCONCLUSIVE, reason=reason)
        repro = self.session.repro(op, sample)
        problems = peer_findings(op, sample, answer, self.canary, owner=self.owner, peer=self.peer)
        findings = [
            Finding(self.session.ctx.redactor(p), location=op.label, repro=repro) for p in problems
        ]
        return _result(op, findings=[*findings, *self.notes], duration=time.monotonic() - started)


async def _producer_results(run: _Run, producer: Producer) -> list[ContractResult]:
    values = await run.create(producer)
    if isinstance(values, str):
        return [_result(t.op, Outcome.INCONCLUSIVE, reason=values) for t in producer.targets]
    results: dict[str, ContractResult] = {}
    baselines: dict[str, Any] = {}
    reads = [t for t in producer.targets if t.safe]
    for target in reads:
        results[target.op.label], baselines[target.op.label] = await run.read(target, values)
    # The read that takes exactly the link's parameters shows the object itself.
    names = {name for t in producer.targets for name in t.parameters}
    reader = next((t for t in reads if set(t.parameters) == names), reads[0] if reads else None)
    baseline = None if reader is None else baselines.get(reader.op.label)
    writes = sorted(
        (t for t in producer.targets if not t.safe), key=lambda t: t.op.method.upper() == "DELETE"
    )
    for target in writes:
        results[target.op.label] = await run.write(target, values, reader, baseline)
    cleanup = next((t for t in writes if t.op.method.upper() == "DELETE"), None)
    if cleanup is not None:
        await run.session.send(run.owner, cleanup.op, run.sample(cleanup.op, values))
    return [results[t.op.label] for t in producer.targets]


def _all(producers: Sequence[Producer], outcome: Outcome, reason: str) -> list[ContractResult]:
    return [_result(t.op, outcome, reason=reason) for p in producers for t in p.targets]


async def _verdict(ctx: RunContext) -> CredentialVerdict:
    found = shared_positive_control(ctx)
    return found if found is not None else await positive_control(ctx)


async def isolation_results(ctx: RunContext, ops: Collection[Operation]) -> list[ContractResult]:
    """One result per operation linked from a create among ``ops``; [] when the spec has none."""
    # Not schemathesis' object_level_authorization: it needs tokens in a file and judges fuzz only.
    planned = isolation_plan(ctx.spec, ops)
    # An open operation (no security, or `security: []`) has no owner to isolate.
    results = [
        _result(t.op, Outcome.SKIPPED, reason=no_auth_reason(t.op))
        for producer in planned
        for t in producer.targets
        if t.op.is_public
    ]
    producers = [
        replace(p, targets=tuple(t for t in p.targets if not t.op.is_public)) for p in planned
    ]
    producers = [p for p in producers if p.targets]
    if not producers:
        return results
    users = ctx.credentials.users
    if len(users) < 2:
        return results + _all(producers, Outcome.SKIPPED, TWO_USERS)
    owner, peer = users[0], users[1]
    verdict = await _verdict(ctx)
    if verdict.accepted is False or False in (verdict.accepts(owner), verdict.accepts(peer)):
        reason = verdict.reason or "credentials rejected"
        return results + _all(producers, Outcome.INCONCLUSIVE, reason)
    budget = ctx.services.budget
    if budget.exhausted:
        reason = budget.reason() or "budget exhausted"
        return results + _all(producers, Outcome.INCONCLUSIVE, reason)
    tokens: dict[str, str] = {}
    for user in (owner, peer):
        try:
            tokens[user] = await ctx.credentials.token(user)
        except TokenRequestError as exc:
            return results + _all(producers, Outcome.INCONCLUSIVE, f"credentials rejected: {exc}")
        ctx.redactor.add(tokens[user])
    async with new_client(ctx) as client:
        session = _Session(ctx, client, budget, tokens)
        for producer in producers:
            canary = f"chatcontract-canary-{secrets.token_hex(6)}"
            run = _Run(session, ctx.spec, owner, peer, canary, [])
            results += await _producer_results(run, producer)
    return results
