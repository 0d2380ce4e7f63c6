"""The positive control: do the run's credentials work at all?

Before a refusal can count against the server, an authenticated request to a
protected operation must succeed. Otherwise a run with a wrong secret would
"prove" that every route enforces auth, or blame the server for 401s that
are ours. That is the September 2025 status report's WebSocket 403, which
nobody could attribute. When the control fails, dependent contracts are
INCONCLUSIVE with reason ``credentials rejected: <status>``: never passed,
never failed.

The verdict is computed once per run by whichever category asks first and
kept in the run's services (``ctx.services.control``), so the REST, SSE and
WebSocket checkers read the same answer.

An API that declares no authentication (or a run without credentials,
:class:`~chatcontract.auth.Anonymous`) has nothing to control: the verdict is
undecided (``accepted is None``) with the reason
:data:`~chatcontract.auth.NO_AUTH_REASON`, and no request is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chatcontract.auth import Anonymous, TokenRequestError, no_auth_reason, requires_credentials
from chatcontract.context import CredentialVerdict, RunContext
from chatcontract.presentation import presentation_for
from chatcontract.report.model import Outcome
from chatcontract.rest.fingerprint import Answer
from chatcontract.rest.http import exchange, new_client
from chatcontract.rest.samples import operation_parameters
from chatcontract.spec import Operation

__all__ = [
    "PositiveControl",
    "control_operations",
    "positive_control",
]

_REJECTED = (401, 403)


@dataclass(frozen=True, slots=True)
class PositiveControl:
    """The verdict on the run's credentials.

    ``accepted`` is True when every user's token got a 2xx from a protected
    operation, False when any was refused (by the token endpoint or with
    401/403), None when no protected operation could decide (it is missing,
    or failed otherwise). ``reason`` starts with ``credentials rejected:``
    when ``accepted`` is False.
    """

    accepted: bool | None
    reason: str = ""
    operation: str | None = None
    """The operation asked, e.g. ``GET /api/agents``."""
    statuses: Mapping[str, int | None] = field(default_factory=dict)
    """User -> status of their control request (None: no answer or no token)."""

    @property
    def outcome(self) -> Outcome:
        return Outcome.PASSED if self.accepted else Outcome.INCONCLUSIVE

    def accepts(self, user: str) -> bool | None:
        """Whether ``user``'s token was accepted (None: not decided)."""
        status = self.statuses.get(user)
        if status is None:
            return False if self.accepted is False and user in self.statuses else None
        if 200 <= status < 300:
            return True
        return False if status in _REJECTED else None


def control_operations(
    ops: tuple[Operation, ...], parameters: Mapping[str, bool]
) -> list[Operation]:
    """Protected GETs that need no parameter: safe to call, nothing to invent.

    ``parameters`` maps operationId -> whether the operation has a required parameter.
    """
    return [
        op
        for op in ops
        if op.method.upper() == "GET"
        and not op.is_public
        and op.kind == "rest"
        and not parameters.get(op.operation_id, True)
    ]


async def positive_control(ctx: RunContext) -> CredentialVerdict:
    """The run's positive control, computed on first call (by whichever category asks first)."""
    return await ctx.services.positive_control(lambda: _run_control(ctx))


async def _run_control(ctx: RunContext) -> PositiveControl:
    if not requires_credentials(ctx.spec):
        return PositiveControl(None, no_auth_reason())
    if isinstance(ctx.credentials, Anonymous):
        # Protected operations, and no credentials to call them with: nothing auth-related
        # can be judged, and a refusal must never count against the server.
        return PositiveControl(
            False, "credentials rejected: the run has no credentials for protected operations"
        )
    needs = {
        op.operation_id: any(p.required for p in operation_parameters(ctx.spec, op))
        for op in ctx.spec.operations
        if op.kind == "rest"
    }
    candidates = control_operations(ctx.spec.operations, needs)
    if not candidates:
        return PositiveControl(None, "no protected GET without parameters to check credentials")
    statuses: dict[str, int | None] = {}
    undecided: list[str] = []
    asked: str | None = None
    budget = ctx.services.budget
    deadline = ctx.settings.connect_timeout + ctx.settings.read_timeout
    async with new_client(ctx) as client:
        for user in ctx.credentials.users:
            try:
                token = await ctx.credentials.token(user)
            except TokenRequestError as exc:
                statuses[user] = None
                return PositiveControl(False, f"credentials rejected: {exc}", None, statuses)
            ctx.redactor.add(token)
            statuses[user] = None
            for op in candidates:
                budget.note()
                presented = presentation_for(ctx.spec, op)
                answer = await exchange(
                    client,
                    "GET",
                    op.path,
                    deadline=deadline,
                    headers=presented.headers(token),
                    query=presented.params(token),
                    read_body=False,
                )
                status = statuses[user] = answer.status if isinstance(answer, Answer) else None
                if status is not None and (200 <= status < 300 or status in _REJECTED):
                    asked = op.label
                    break
                # A missing or broken control route says nothing about the token; try the next.
                got = f"answered {status}" if isinstance(answer, Answer) else f"got {answer.line()}"
                undecided.append(f"{op.label} {got}")
                if not isinstance(answer, Answer):
                    break  # a target that does not answer one route is not asked them all
            status = statuses[user]
            if status in _REJECTED:
                return PositiveControl(
                    False,
                    f"credentials rejected: {status} from {asked} for {user}",
                    asked,
                    statuses,
                )
    if all(s is not None and 200 <= s < 300 for s in statuses.values()):
        return PositiveControl(True, "", asked, statuses)
    reason = "credentials not confirmed: " + "; ".join(dict.fromkeys(undecided))
    return PositiveControl(None, reason, None, statuses)
