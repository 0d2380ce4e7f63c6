"""What every SSE check of one run shares: the client, tokens, options, evidence.

A :class:`Session` opens streams for the ``sse`` category (and for anyone who
wants the same behaviour from a test): it fetches tokens and registers them
with the redactor, builds request bodies from the spec (its example, else an
instance generated from the schema) with fresh canaries where the schema
allows free text, sends no token to open (``security: []``) routes, knows
whether this is the run's very first connection (a refusal then means the
target is unreachable, not that a contract failed), and turns a stream that
never opened into the right verdict: a missing route fails, rejected
credentials are inconclusive.

It also remembers which routes stalled (:class:`Stall`): once a read of a
fresh run stopped on its first-event, idle or total deadline, a later check
of the same route that would wait on the same thing (resume, isolation)
reports the stall as inconclusive instead of waiting out the deadline again,
so a stalled target costs one deadline per route, not one per contract. The
memo lives as long as the session, i.e. one run of the ``sse`` category.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import httpx

from chatcontract.auth import TokenRequestError
from chatcontract.bodies import body_for, with_marker
from chatcontract.context import RunContext, shared_positive_control
from chatcontract.presentation import presentation_for
from chatcontract.report.model import Finding, Outcome, TranscriptEntry
from chatcontract.spec.model import Operation, StreamDeadlines
from chatcontract.sse.checker import CompiledStream
from chatcontract.sse.parser import ParserLimits
from chatcontract.sse.stream import StreamRequest, StreamRun, read_stream

__all__ = [
    "OPTIONS_KEY",
    "SSEOptions",
    "Session",
    "Stall",
    "Verdict",
    "new_canary",
    "request_body",
    "stalled",
]

OPTIONS_KEY: Final = "sse.options"
"""``ctx.cache`` key under which an :class:`SSEOptions` overrides the defaults."""
_OWN_CONTROL_KEY: Final = "sse.positive_control"
_MISSING_ROUTE = (404, 405)
_REJECTED = (401, 403)


@dataclass(frozen=True, slots=True)
class SSEOptions:
    """Knobs of the ``sse`` category; put one in ``ctx.cache[OPTIONS_KEY]``."""

    deadlines: StreamDeadlines | None = None
    """Replaces every stream's spec deadlines (tests use short ones)."""
    limits: ParserLimits = field(default_factory=ParserLimits)
    grace: float = 1.0
    """Seconds the isolation check keeps listening after a run's terminal event."""
    raw_capture_bytes: int = 4 << 20
    """Body bytes kept per isolation stream, to search for the other user's canary."""

    @classmethod
    def of(cls, ctx: RunContext) -> SSEOptions:
        found = ctx.cache.get(OPTIONS_KEY)
        return found if isinstance(found, SSEOptions) else cls()


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a stream that did not open is judged."""

    outcome: Outcome
    reason: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Stall:
    """A read of a route that stopped on its first-event, idle or total deadline."""

    contract: str
    """The id of the contract whose read stalled."""
    detail: str
    """Why reading stopped (``idle deadline 10.0 s missed after event #1 (agent_started)``)."""

    @property
    def reason(self) -> str:
        """The inconclusive reason of a contract that did not wait on the route again."""
        return f"the route stalled in {self.contract} ({self.detail})"


def stalled(run: StreamRun) -> bool:
    """Whether ``run`` stopped on a deadline the route will likely miss again.

    Once the stream opened, only the first-event, idle and total deadlines
    remain (connect and response-header timeouts leave it unopened, and those
    routes are judged by :meth:`Session.verdict` without another read).
    """
    return run.opened and run.stop == "deadline"


def new_canary() -> str:
    """A unique marker to send in a message and look for in other users' streams."""
    return f"canary-{secrets.token_hex(8)}"


def request_body(operation: Operation, canary: str | None = None) -> Any:
    """The body of a stream request; ``None``: the operation takes none (send no body).

    The spec's example, else one instance generated from the request schema
    (see :mod:`chatcontract.bodies`), with ``canary`` in its free-text fields
    (or in an optional one the schema declares). Where the schema allows no
    free text the body goes without it: check with
    :func:`chatcontract.bodies.carries`.
    """
    body = body_for(operation)
    if canary is None:
        return body
    return with_marker(body, operation.request_schema, canary, add=True)


def _shared_control(ctx: RunContext, user: str | None) -> bool | None:
    """The REST category's verdict on ``user``'s token: True, False or None (unknown)."""
    control = shared_positive_control(ctx)
    if control is None:
        return None
    if user is not None:
        verdict = control.accepts(user)
        if verdict is not None:
            return verdict
    return control.accepted


class Session:
    """Opens streams for one run of the ``sse`` category."""

    def __init__(self, ctx: RunContext, client: httpx.AsyncClient) -> None:
        self.ctx = ctx
        self.client = client
        self.options = SSEOptions.of(ctx)
        self._connected = False
        self._no_token: dict[str | None, str] = {}
        """User -> why no token could be had (the request then went without one)."""
        self._stalls: dict[str, Stall] = {}
        """Route label -> the first read of a fresh run of it that stalled."""

    async def token(self, user: str | None = None) -> str:
        token = await self.ctx.credentials.token(user)
        self.ctx.redactor.add(token)
        return token

    def note_stall(self, run: StreamRun, contract: str) -> Stall | None:
        """Remember that ``run``, read for ``contract``, stalled (if it did); the route's stall.

        Only reads of a fresh run belong here (not a resumed one): later checks
        take the first stall noted for the route as what they would wait on.
        """
        label = run.checker.compiled.label
        if stalled(run) and label not in self._stalls:
            self._stalls[label] = Stall(contract, run.stop_detail)
        return self._stalls.get(label)

    def stall(self, compiled: CompiledStream) -> Stall | None:
        """The stall an earlier read of ``compiled``'s route met, if one did."""
        return self._stalls.get(compiled.label)

    def deadlines(self, compiled: CompiledStream) -> StreamDeadlines:
        return self.options.deadlines or compiled.stream.deadlines

    async def open(
        self,
        compiled: CompiledStream,
        body: Any,
        *,
        user: str | None = None,
        headers: Mapping[str, str] | None = None,
        token_variable: str = "$CHATCONTRACT_TOKEN",
        **read: Any,
    ) -> StreamRun:
        """Send one stream request as ``user`` and read it (see :func:`read_stream`)."""
        operation = compiled.stream.operation
        token = None
        if not operation.is_public:
            try:
                token = await self.token(user)
            except TokenRequestError as exc:
                # Sent without one: a refusal is then judged as ours, never the route's.
                self._no_token[user] = str(exc)
        request = StreamRequest(
            operation.method,
            self.ctx.url(operation.path),
            body,
            token,
            dict(headers or {}),
            token_variable,
            user,
            presentation_for(self.ctx.spec, operation),
        )
        first = not self._connected
        await self.ctx.services.pacer.wait()  # --rate-limit paces streams like requests
        self.ctx.services.budget.note()
        run = await read_stream(
            self.client,
            compiled,
            request,
            deadlines=self.deadlines(compiled),
            limits=self.options.limits,
            unreachable_raises=first,
            **read,
        )
        self._connected = True
        return run

    async def verdict(self, run: StreamRun) -> Verdict:
        """Judge a stream that did not open: route missing, credentials, other status."""
        label = run.checker.compiled.label
        status = run.status
        expected = run.checker.compiled.stream.success_status
        if status in _MISSING_ROUTE:
            message = f"{label} answered {status}: the stream route is missing"
            return Verdict(Outcome.FAILED, message, self.evidence(run, [Finding(message)]))
        protected = not run.checker.compiled.stream.operation.is_public
        no_token = self._no_token.get(run.request.user) if protected else None
        if status in _REJECTED and run.request.token is None and no_token is not None:
            return Verdict(
                Outcome.INCONCLUSIVE,
                f"credentials rejected: {label} answered {status} to a request without a token "
                f"({no_token})",
                (),
            )
        if status in _REJECTED and run.request.token is not None:
            accepted, control = await self._control(run.request.token, run.request.user)
            if accepted:
                message = (
                    f"{label} answered {status} to a token that {control} accepts: "
                    "the stream route rejects valid credentials"
                )
                return Verdict(Outcome.FAILED, message, self.evidence(run, [Finding(message)]))
            why = "rejected by " + control if accepted is False else f"not confirmed ({control})"
            return Verdict(
                Outcome.INCONCLUSIVE,
                f"credentials rejected: {label} answered {status}; the token was {why}",
                (),
            )
        if status is not None:
            message = f"{label} answered {status}, expected {expected} with an event stream"
            if run.stop == "content-type":
                message = f"{label}: {run.stop_detail}, expected text/event-stream"
            return Verdict(Outcome.FAILED, message, self.evidence(run, [Finding(message)]))
        findings = [f for aspect in run.findings.values() for f in aspect]
        message = findings[0].message if findings else f"{label}: the stream did not open"
        return Verdict(Outcome.FAILED, message, self.evidence(run, findings or [Finding(message)]))

    async def _control(self, token: str, user: str | None) -> tuple[bool | None, str]:
        """Whether ``token`` is accepted elsewhere: the REST control, else our own GET."""
        users = self.ctx.credentials.users
        user = user or (users[0] if users else "")
        shared = _shared_control(self.ctx, user)
        if shared is not None:
            return shared, "the REST positive control"
        # One control request per user and run, however many streams refuse them.
        controls = self.ctx.cache.setdefault(_OWN_CONTROL_KEY, {})
        if user not in controls:
            controls[user] = await self._own_control(token)
        accepted, control = controls[user]
        return accepted, control

    async def _own_control(self, token: str) -> tuple[bool | None, str]:
        candidates = [
            op
            for op in self.ctx.spec.rest_operations
            if op.method == "GET" and not op.is_public and "{" not in op.path
        ]
        if not candidates:
            return None, "no authenticated GET operation to control it with"
        operation = candidates[0]
        settings = self.ctx.settings
        presented = presentation_for(self.ctx.spec, operation)
        request = self.client.build_request(
            "GET",
            self.ctx.url(operation.path),
            params=presented.params(token),
            headers=presented.headers(token),
            timeout=httpx.Timeout(settings.connect_timeout, read=settings.read_timeout),
        )
        # httpx bounds each read, not the exchange: headers trickled in a byte at a
        # time would hold us for ever. The status is all the control needs, so the
        # body is never read and a huge or endless one costs nothing.
        limit = settings.connect_timeout + settings.read_timeout
        try:
            async with asyncio.timeout(limit):
                response = await self.client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            return None, f"{operation.label} did not answer within {limit:g} s"
        except httpx.HTTPError as exc:
            return None, f"{operation.label} failed: {type(exc).__name__}"
        if response.is_success:
            return True, operation.label
        if response.status_code in _REJECTED:
            return False, f"{operation.label} too ({response.status_code})"
        return None, f"{operation.label} answered {response.status_code}"

    def evidence(
        self, run: StreamRun, findings: Sequence[Finding], extra_repro: str | None = None
    ) -> tuple[Finding, ...]:
        """Attach ``run``'s transcript and a curl repro to every failure, redacted."""
        redact = self.ctx.redactor
        transcript = tuple(
            TranscriptEntry(e.direction, e.offset, redact(e.content))
            for e in run.transcript.entries()
        )
        repro = redact(run.request.curl())
        if extra_repro:
            repro = f"{repro} & {redact(extra_repro)}; wait"
        return tuple(
            replace(f, transcript=transcript, repro=repro) if f.severity == "failure" else f
            for f in findings
        )
