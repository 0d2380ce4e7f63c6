"""The handshake auth matrix: a valid token opens the channel, nothing else does.

The positive control runs first, per declared carrier. Only when a real token
opens the channel does a refusal of a spoiled token mean anything; when the
target refuses the real token too, every row built on a token is
inconclusive ("credentials rejected"), never passed. That is the status
report's WebSocket 403, classified: the server may be right and the
credentials wrong, and no run can tell which from a refusal alone.

A WebSocket operation that declares no authentication (no security
requirement, or ``security: []``) is connected to without a token: the
positive control and every token row are skipped with the reason (the origin
rows still run, anonymously), and :func:`presented_for` gives the other
contracts an anonymous handshake.

Tokens need not be JWTs: an opaque token gets the rows that apply to any
token (none, garbled, well-formed but never issued, in a forbidden carrier),
and the JWT rows are skipped. A 404 at the handshake is *no such resource*
(the URL's parameters name nothing the server has), never rejected credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from chatcontract.auth import no_auth_reason
from chatcontract.context import shared_positive_control
from chatcontract.errors import ChatContractError, TargetUnreachable
from chatcontract.report.model import ContractResult, Finding
from chatcontract.spec import TokenCarrier
from chatcontract.ws.carriers import message_presented
from chatcontract.ws.client import (
    Closed,
    OpenFailed,
    Presented,
    Received,
    Silence,
    WsTarget,
    handshake,
    open_socket,
    present,
    shown_url,
)
from chatcontract.ws.evidence import (
    FOREIGN_ORIGIN,
    ORIGIN_ROWS,
    Clock,
    carrier_slug,
    control_name,
    forbidden_name,
    inconclusive,
    judged,
    origin_carrier,
    origin_name,
    repro,
    skipped,
)
from chatcontract.ws.frames import Transcript
from chatcontract.ws.tokens import FORGERIES, Forgery, is_jwt, resign

__all__ = [
    "FOREIGN_ORIGIN",
    "NOT_JWT_REASON",
    "SIGNING_KEY_REASON",
    "Access",
    "allowed_origin",
    "auth_matrix",
    "positive_control",
    "presented_for",
    "primary_presented",
    "refusal_findings",
]

SIGNING_KEY_REASON = "needs a signing key (CHATCONTRACT_SIGNING_KEY)"
NOT_JWT_REASON = "the credentials are not JWTs"


@dataclass(slots=True)
class Access:
    """What the positive control established, read by every later contract."""

    primary: TokenCarrier | None = None
    """The carrier every other contract connects with."""
    blocked: str | None = None
    """Why contracts that need a working token cannot be judged (``None``: they can)."""
    rejected: bool = False
    """``blocked`` because valid credentials were refused with an HTTP status."""
    carriers: dict[TokenCarrier, str | None] = field(default_factory=dict)
    """Per carrier: ``None`` when it works, else why it does not."""
    key_control: str | None = None
    """``"ok"`` or why re-signed tokens are refused; ``None`` until tried."""
    anonymous: str | None = None
    """Why connections go without a token (the operation declares no authentication)."""
    jwt: bool | None = None
    """Whether the run's tokens are JWTs (``None``: no token was seen)."""

    def reason_for(self, carrier: TokenCarrier) -> str | None:
        return self.blocked or self.carriers.get(carrier)

    @property
    def unusable(self) -> str | None:
        """Why no connection can be opened for a contract (``None``: one can)."""
        if self.anonymous is not None:
            return None
        if self.blocked is not None or self.primary is None:
            return self.blocked or "no working carrier"
        return None


def allowed_origin(target: WsTarget) -> str | None:
    allow = target.contract.origin_allowlist
    return allow[0] if allow else None


def _presented(
    target: WsTarget, carrier: TokenCarrier | None, token: str | None, url: str | None = None
) -> Presented:
    carriers = target.contract.carriers
    if carrier is None and carriers and all(c.kind == "message" for c in carriers):
        # No token for a protocol that takes it in a message: the same subprotocol and
        # first frame, without the token (an anonymous handshake tests the subprotocol).
        carrier = carriers[0]
    if carrier is not None and carrier.kind == "message":
        # The token goes in the first frame after the 101 (graphql-transport-ws).
        contract, validator = target.contract, target.validator
        origin = allowed_origin(target)
        return message_presented(contract, validator, url or target.url, carrier, token, origin)
    return present(url or target.url, carrier, token, origin=allowed_origin(target))


def primary_presented(target: WsTarget, access: Access, token: str) -> Presented:
    """A token on the carrier the positive control proved, as every other contract connects."""
    return _presented(target, access.primary, token)


async def presented_for(target: WsTarget, access: Access, user: str | None = None) -> Presented:
    """How ``user`` connects for a contract: anonymously on an open channel, else with a
    token on the proved carrier. Check :attr:`Access.unusable` first."""
    url = await target.url_for(user)
    if access.anonymous is not None:
        return _presented(target, None, None, url)
    return _presented(target, access.primary, await target.token(user), url)


def _rest_note(target: WsTarget) -> str:
    rest = shared_positive_control(target.ctx)
    if rest is not None and rest.accepted:
        return (
            "; REST accepted the same credentials, so the WebSocket either wants another "
            "kind of token or refuses valid ones"
        )
    return ""


async def positive_control(target: WsTarget) -> tuple[ContractResult, Access]:
    """A valid token must get 101 and the welcome frame, on every declared carrier."""
    clock = Clock()
    access = Access()
    name = control_name(target.contract)
    operation = target.contract.operation
    if operation.is_public:
        access.anonymous = no_auth_reason(operation)
        return skipped(target, "auth/positive-control", name, access.anonymous), access
    if not target.contract.carriers:
        access.blocked = (
            "the security scheme names no place one token can travel (basic, mutual TLS or "
            "combined schemes): declare x-websocket.auth.carriers"
        )
        return skipped(target, "auth/positive-control", name, access.blocked), access
    findings: list[Finding] = []
    failures: list[OpenFailed] = []
    transcript = target.transcript()
    user = target.ctx.credentials.users[0]
    for carrier in target.contract.carriers:
        try:
            token = await target.token(user)
        except ChatContractError as exc:
            access.blocked = f"no token for {user}: {exc}"
            result = inconclusive(target, "auth/positive-control", name, access.blocked, clock)
            return result, access
        access.jwt = is_jwt(token)
        presented = _presented(target, carrier, token)
        try:
            sock = await open_socket(target, presented, transcript, user=user)
        except OpenFailed as exc:
            if exc.kind == "unreachable":
                raise TargetUnreachable(exc.message) from exc
            access.carriers[carrier] = f"positive control failed ({carrier.kind}): {exc.message}"
            failures.append(exc)
            message = f"a valid token in the {carrier.label} was not accepted: {exc.message}"
            if exc.status == 404:
                message = _no_such_resource(target, presented)
            findings.append(
                Finding(
                    message,
                    location=f"handshake ({carrier.kind})",
                    repro=repro(target, presented=presented),
                )
            )
            if exc.kind != "rejected" and access.primary is None:
                # The server does not finish valid handshakes at all: every further
                # connection would only wait out the same deadline.
                break
            continue
        problem = _subprotocol_problem(carrier, sock.subprotocol)
        await sock.close()
        if problem is not None:
            access.carriers[carrier] = f"positive control failed ({carrier.kind}): {problem}"
            findings.append(
                Finding(
                    problem, f"handshake ({carrier.kind})", repro=repro(target, presented=presented)
                )
            )
            continue
        access.carriers[carrier] = None
        if access.primary is None:
            access.primary = carrier
    if access.primary is not None:
        result = judged(
            target, "auth/positive-control", name, findings, clock, transcript=transcript
        )
        return result, access
    if failures and all(f.status == 404 for f in failures):
        return _missing_resource(target, access, name, findings, clock, transcript), access
    if failures and all(f.kind == "rejected" for f in failures):
        statuses = sorted({f.status for f in failures if f.status is not None})
        access.rejected = True
        access.blocked = (
            f"credentials rejected: HTTP {'/'.join(map(str, statuses))} at the handshake"
            + _rest_note(target)
        )
        # Kept as warnings: the refusal is the evidence, but not a verdict on the server.
        evidence = [replace(f, severity="warning") for f in findings]
        result = inconclusive(
            target,
            "auth/positive-control",
            name,
            access.blocked,
            clock,
            findings=evidence,
            transcript=transcript,
        )
        return result, access
    first = findings[0].message if findings else "no carrier is declared"
    access.blocked = f"positive control failed: {first}"
    result = judged(target, "auth/positive-control", name, findings, clock, transcript=transcript)
    return result, access


def _no_such_resource(target: WsTarget, presented: Presented) -> str:
    filled = target.resources.filled()
    source = f" ({filled.provenance()})" if filled is not None and filled.sources else ""
    return (
        f"no such resource: the handshake to {shown_url(presented.url)} answered HTTP 404" + source
    )


def _missing_resource(
    target: WsTarget,
    access: Access,
    name: str,
    findings: list[Finding],
    clock: Clock,
    transcript: Transcript,
) -> ContractResult:
    """Every valid handshake got 404: the URL names nothing, whatever the credentials.

    A failure when the URL is the spec's own (no parameter) or names an object this
    run just created; inconclusive when a parameter came from an example or the
    settings, which may simply name nothing on this server.
    """
    access.blocked = findings[0].message
    filled = target.resources.filled()
    if filled is None or filled.made:
        return judged(target, "auth/positive-control", name, findings, clock, transcript=transcript)
    return inconclusive(
        target,
        "auth/positive-control",
        name,
        access.blocked,
        clock,
        findings=[replace(f, severity="warning") for f in findings],
        transcript=transcript,
    )


def _subprotocol_problem(carrier: TokenCarrier, chosen: str | None) -> str | None:
    if carrier.kind != "subprotocol":
        return None
    if chosen is not None and carrier.token_prefix and chosen.startswith(carrier.token_prefix):
        return (
            "the server selected the token-bearing subprotocol, echoing the token in its response"
        )
    if chosen != carrier.protocol:
        return f"the server selected subprotocol {chosen!r}, the contract says {carrier.protocol!r}"
    return None


async def refusal_findings(
    target: WsTarget,
    presented: Presented,
    transcript: Transcript,
    *,
    statuses: tuple[int, ...] | None = None,
) -> list[Finding]:
    """One handshake that must be refused; no retry, no reconnect."""
    contract = target.contract
    expected = statuses or contract.rejection_statuses
    # A refusal after the 101 (a close the contract names) is the designed one for a
    # token in a message; an explicit status list (Origin rows) asks for HTTP only.
    closes = () if statuses else contract.rejection_close_codes
    shown = _refusal_text(expected, closes)
    result = await handshake(target, presented, transcript)
    if result.outcome == "rejected":
        if result.status in expected:
            return []
        refused = f"refused with HTTP {result.status}; the contract says {shown}"
        return [Finding(refused, "handshake")]
    if result.outcome != "accepted" or result.socket is None:
        return [Finding(f"expected {shown}, got {result.detail}", "handshake")]
    sock = result.socket
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.deadlines.first_frame
    try:
        seen = await sock.receive(deadline, answer_heartbeats=False)
    finally:
        await sock.close()
    if isinstance(seen, Closed) and seen.by == "server" and seen.code in closes:
        return []
    accepted = f"accepted the connection instead of {shown}"
    if not closes:
        accepted = f"accepted the handshake (101) instead of {shown}"
    if isinstance(seen, Received):
        what = f"{seen.type!r} frame" if seen.type else "an application frame"
        who = ""
        if (
            seen.type == contract.welcome_type
            and isinstance(seen.value, dict)
            and "user_id" in seen.value
        ):
            who = f" for user_id={seen.value['user_id']!r}"
        return [Finding(f"{accepted} and sent a {what}{who}", seen.label)]
    if isinstance(seen, Silence):
        return [
            Finding(
                f"{accepted} and kept the connection open for {seen.waited:.1f} s without closing",
                "after 101",
            )
        ]
    return [_close_after_accept(target, seen, accepted)]


def _refusal_text(statuses: tuple[int, ...], closes: tuple[int, ...]) -> str:
    """``HTTP 401 or 403``, ``close 4403``, ``HTTP 403 or close 4403``."""
    parts = []
    if statuses:
        parts.append("HTTP " + " or ".join(map(str, statuses)))
    if closes:
        parts.append("close " + " or ".join(map(str, closes)))
    return " or ".join(parts) or "a refusal"


def _close_after_accept(target: WsTarget, closed: Closed, accepted: str) -> Finding:
    contract = target.contract
    if closed.by == "server" and closed.code == contract.close_after_accept_code:
        return Finding(
            f"{accepted}, then closed with {closed.code}: the weaker pattern the contract "
            "tolerates "
            f"(refusing before 101 keeps the upgrade from ever happening)",
            "after 101",
            severity=contract.close_after_accept_severity,
        )
    return Finding(f"{accepted}, then ended it with {closed.describe()}", "after 101")


async def _key_control(target: WsTarget, access: Access, key: str) -> str:
    """Whether tokens re-signed with ``key`` open the channel; run once per run."""
    if access.key_control is None:
        assert access.primary is not None
        transcript = target.transcript()
        token = target.secret(resign(await target.token(), key))
        try:
            sock = await open_socket(target, _presented(target, access.primary, token), transcript)
        except OpenFailed as exc:
            access.key_control = (
                f"a token re-signed with the signing key is refused ({exc.message}): "
                "the key is not the target's"
            )
        else:
            await sock.close()
            access.key_control = "ok"
    return access.key_control


async def _forged_row(
    target: WsTarget, access: Access, carrier: TokenCarrier, forgery: Forgery
) -> ContractResult:
    clock = Clock()
    suffix = f"auth/{carrier_slug(target.contract.carriers, carrier)}/{forgery.slug}"
    name = f"{forgery.name} are refused ({carrier.kind})"
    claims = target.contract.claims
    if access.anonymous is not None:
        return skipped(target, suffix, name, access.anonymous)
    if forgery.jwt and access.jwt is False:
        return skipped(target, suffix, name, NOT_JWT_REASON)
    if forgery.claim is not None and forgery.claim not in claims:
        return skipped(target, suffix, name, f"the contract declares no {forgery.claim} claim")
    blocked = access.reason_for(carrier)
    if blocked is not None:
        return inconclusive(target, suffix, name, blocked, clock)
    key = target.ctx.settings.signing_key
    if forgery.needs_key:
        if key is None:
            return skipped(target, suffix, name, SIGNING_KEY_REASON)
        control = await _key_control(target, access, key)
        if control != "ok":
            return inconclusive(target, suffix, name, control, clock)
    real = await target.token()
    try:
        forged = target.secret(forgery.make(real, key, claims, time.time()))
    except ValueError as exc:
        return inconclusive(target, suffix, name, f"no {forgery.name} can be made: {exc}", clock)
    transcript = target.transcript()
    presented = _presented(target, carrier, forged)
    findings = await refusal_findings(target, presented, transcript)
    note = f"   # with {forgery.name.removesuffix('s')} in place of {'$CHATCONTRACT_TOKEN'}"
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented, token_note=note),
    )


async def _expiry_row(target: WsTarget, access: Access) -> ContractResult:
    """A token that expires while connected must end the connection with the declared code."""
    clock = Clock()
    contract = target.contract
    suffix, name = (
        "auth/expiry",
        f"connections close with {contract.expiry_close_code} when their token expires",
    )
    if access.anonymous is not None:
        return skipped(target, suffix, name, access.anonymous)
    if access.jwt is False:
        return skipped(target, suffix, name, NOT_JWT_REASON)
    unusable = access.unusable
    if unusable is not None or access.primary is None:
        return inconclusive(target, suffix, name, unusable or "no working carrier", clock)
    key = target.ctx.settings.signing_key
    if key is None:
        return skipped(target, suffix, name, SIGNING_KEY_REASON)
    control = await _key_control(target, access, key)
    if control != "ok":
        return inconclusive(target, suffix, name, control, clock)
    # At least 3 s of validity left after the whole-second truncation, so a slow
    # handshake on a loaded machine cannot present an already expired token.
    lifetime = 4
    now = int(time.time())
    expires = now + lifetime
    token = target.secret(resign(await target.token(), key, iat=now, nbf=now, exp=expires))
    transcript = target.transcript()
    presented = _presented(target, access.primary, token)
    try:
        sock = await open_socket(target, presented, transcript)
    except OpenFailed as exc:
        return inconclusive(
            target, suffix, name, f"the short-lived token was refused: {exc.message}", clock
        )
    loop = asyncio.get_running_loop()
    grace = 2.0
    deadline = loop.time() + max(0.0, expires - time.time()) + grace
    findings: list[Finding] = []
    try:
        while True:
            seen = await sock.receive(deadline)
            if isinstance(seen, Received):
                continue
            if isinstance(seen, Silence):
                findings.append(
                    Finding(
                        f"the connection stayed open {grace:g} s past its token's expiry",
                        "after exp",
                    )
                )
            elif seen.code != contract.expiry_close_code or seen.by != "server":
                findings.append(
                    Finding(
                        f"at expiry the connection ended with {seen.describe()}, "
                        f"not close {contract.expiry_close_code}",
                        "after exp",
                    )
                )
            break
    finally:
        await sock.close()
    return judged(
        target,
        suffix,
        name,
        findings + sock.findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )


async def auth_matrix(target: WsTarget, access: Access) -> AsyncIterator[ContractResult]:
    """Every refusal the contract promises, one result each, after the positive control."""
    contract = target.contract
    # A server that cannot finish a valid handshake would make each row wait out
    # the same deadline; only a plain refusal of valid credentials lets the
    # anonymous row still say something.
    anonymous_blocked = access.blocked if access.blocked and not access.rejected else None
    clock = Clock()
    name = "unauthenticated connections are refused"
    if access.anonymous is not None:
        yield skipped(target, "auth/no-token", name, access.anonymous)
    elif anonymous_blocked:
        yield inconclusive(target, "auth/no-token", name, anonymous_blocked, clock)
    else:
        transcript = target.transcript()
        presented = _presented(target, None, None)
        findings = await refusal_findings(target, presented, transcript)
        yield judged(
            target,
            "auth/no-token",
            name,
            findings,
            clock,
            transcript=transcript,
            repro_text=repro(target, presented=presented),
        )
    for carrier in contract.carriers:
        for forgery in FORGERIES:
            yield await _forged_row(target, access, carrier, forgery)
    for forbidden in contract.forbidden_carriers:
        yield await _forbidden_row(target, access, forbidden)
    if contract.origin_allowlist is not None:
        for slug, origin in ORIGIN_ROWS:
            yield await _origin_row(target, access, slug, origin)
    if contract.expiry_close_code is not None:
        yield await _expiry_row(target, access)


async def _forbidden_row(target: WsTarget, access: Access, carrier: TokenCarrier) -> ContractResult:
    clock = Clock()
    suffix = f"auth/{carrier_slug(target.contract.forbidden_carriers, carrier)}-token"
    name = forbidden_name(carrier)
    if access.anonymous is not None:
        return skipped(target, suffix, name, access.anonymous)
    if access.blocked is not None:
        return inconclusive(target, suffix, name, access.blocked, clock)
    transcript = target.transcript()
    presented = present(target.url, carrier, await target.token(), origin=allowed_origin(target))
    findings = await refusal_findings(target, presented, transcript)
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )


async def _origin_row(target: WsTarget, access: Access, slug: str, origin: str) -> ContractResult:
    clock = Clock()
    suffix = f"auth/{slug}"
    name = origin_name(target.contract, origin)
    if access.anonymous is not None and target.contract.origin_carriers:
        # The rule covers logins by some carriers; an open channel has no login at all.
        return skipped(target, suffix, name, access.anonymous)
    scoped = origin_carrier(target.contract) if access.anonymous is None else None
    unusable = access.unusable or (access.reason_for(scoped) if scoped else None)
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    transcript = target.transcript()
    if scoped is not None:
        # The rule covers this carrier only (cookie logins): its token, a bad Origin.
        presented = replace(_presented(target, scoped, await target.token()), origin=origin)
    else:
        presented = replace(await presented_for(target, access), origin=origin)
    status = target.contract.origin_rejection_status
    findings = await refusal_findings(
        target, presented, transcript, statuses=(status,) if status else None
    )
    return judged(
        target,
        suffix,
        name,
        findings,
        clock,
        transcript=transcript,
        repro_text=repro(target, presented=presented),
    )
