"""Reproductions and results: how a WebSocket finding becomes evidence a person can rerun.

A repro never holds a token: the token's place is taken by a shell variable
(``$CHATCONTRACT_TOKEN``), and forged tokens are described, not printed.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from chatcontract.presentation import escape_double_quoted
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.spec import TokenCarrier, WebSocketContract
from chatcontract.ws.client import Presented, WsTarget
from chatcontract.ws.frames import Transcript

__all__ = [
    "CATEGORY",
    "FOREIGN_ORIGIN",
    "ORIGIN_ROWS",
    "TOKEN_VARIABLE",
    "Clock",
    "attach",
    "carrier_slug",
    "contract_id",
    "control_name",
    "forbidden_name",
    "inconclusive",
    "judged",
    "origin_carrier",
    "origin_name",
    "repro",
    "skipped",
]

CATEGORY = "websocket"
TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN"
FOREIGN_ORIGIN = "https://attacker.chatcontract.invalid"
"""An Origin no allowlist has (``.invalid`` never resolves, RFC 6761)."""
ORIGIN_ROWS = (("origin-foreign", FOREIGN_ORIGIN), ("origin-null", "null"))
"""``(slug, Origin)`` of the Origin rows."""


def contract_id(target: WsTarget, suffix: str) -> str:
    return f"{CATEGORY}/{target.contract.operation.label}/{suffix}"


def forbidden_name(carrier: TokenCarrier) -> str:
    """ "tokens in the query string (token) are refused": planner and checker say the same."""
    where = {"query": "the query string", "cookie": "a cookie", "header": "a header"}
    detail = carrier.name or carrier.protocol or carrier.kind
    return f"tokens in {where.get(carrier.kind, carrier.kind)} ({detail}) are refused"


def control_name(contract: WebSocketContract) -> str:
    """The positive control's name: planner and checker say the same."""
    if not contract.carriers:
        return "the channel opens without credentials"
    return "valid tokens open the channel (" + ", ".join(c.kind for c in contract.carriers) + ")"


def origin_carrier(contract: WebSocketContract) -> TokenCarrier | None:
    """The carrier Origin rows present their token on: the first one the rule is scoped to
    (``origin.carriers``), ``None`` for an unscoped rule (the proven carrier)."""
    scoped = contract.origin_carriers
    return next((c for c in contract.carriers if c.kind in scoped), None) if scoped else None


def origin_name(contract: WebSocketContract, origin: str) -> str:
    """``handshakes from a foreign Origin are refused (cookie session)``."""
    shown = "a null Origin" if origin == "null" else "a foreign Origin"
    carrier = origin_carrier(contract)
    return f"handshakes from {shown} are refused" + (f" ({carrier.label})" if carrier else "")


def carrier_slug(carriers: Sequence[TokenCarrier], carrier: TokenCarrier) -> str:
    """``header``, or ``header-x-api-key`` when two carriers of one kind must stay apart."""
    if sum(1 for c in carriers if c.kind == carrier.kind) < 2:
        return carrier.kind
    detail = carrier.protocol if carrier.kind == "subprotocol" else carrier.name
    return f"{carrier.kind}-{(detail or '').lower()}".rstrip("-")


def _with_token(literal: str, token: str = TOKEN_VARIABLE) -> str:
    """``"literal$CHATCONTRACT_TOKEN"``: double quotes so the variable (or the command
    substitution ``token``) expands, every shell character of ``literal`` escaped."""
    return '"' + escape_double_quoted(literal) + token + '"'


def _websocat(url: str, presented: Presented | None, token_note: str) -> str:
    """A websocat line: literal arguments single-quoted, the token variable where it expands."""
    args = ["websocat"]
    shown = shlex.quote(url)
    if presented is not None and presented.carrier is not None:
        carrier = presented.carrier
        if carrier.kind == "header":
            scheme = f"{carrier.scheme} " if carrier.scheme else ""
            args += ["-H", _with_token(f"{carrier.name or 'Authorization'}: {scheme}")]
        elif carrier.kind == "subprotocol":
            encoded = (
                "$(printf %s " + TOKEN_VARIABLE + " | basenc --base64url | tr -d =)"
                if carrier.encoding == "base64url-nopad"
                else TOKEN_VARIABLE
            )
            literal = f"{carrier.protocol}, {carrier.token_prefix}"
            args += ["--protocol", _with_token(literal, encoded)]
        elif carrier.kind == "query":
            sep = "&" if "?" in url else "?"
            shown = _with_token(f"{url}{sep}{quote(carrier.name or 'token')}=")
        else:
            args += ["-H", _with_token(f"Cookie: {carrier.name or 'token'}=")]
    if presented is not None and presented.origin is not None:
        args += ["--origin", shlex.quote(presented.origin)]
    return " ".join([*args, shown]) + token_note


def _without_token(presented: Presented) -> str:
    """The URL a handshake went to, without the token a query carrier put in it."""
    carrier = presented.carrier
    if carrier is None or carrier.kind != "query":
        return presented.url
    base, _, query = presented.url.partition("?")
    name = quote(carrier.name or "token")
    kept = [part for part in query.split("&") if part and not part.startswith(f"{name}=")]
    return base + ("?" + "&".join(kept) if kept else "")


def repro(
    target: WsTarget,
    *,
    presented: Presented | None = None,
    send: Sequence[Any] = (),
    token_note: str = "",
    seed: int | None = None,
) -> str:
    """The run command that finds it again, plus a websocat line that shows it by hand."""
    settings = target.ctx.settings
    command = (
        f"chatcontract run --category {CATEGORY} --seed "
        f"{settings.seed if seed is None else seed} --base-url {shlex.quote(target.ctx.base_url)}"
    )
    url = target.url if presented is None else _without_token(presented)
    lines = [command, _websocat(url, presented, token_note)]
    for frame in send[:5]:
        if isinstance(frame, bytes):
            # The exact bytes, never a decoded guess (U+FFFD would send something else).
            lines.append(f"  then send the bytes: printf '%b' {_printf_escaped(frame[:300])}")
            continue
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        lines.append(f"  then send: {text[:300]}")
    return "\n".join(lines)


def _printf_escaped(data: bytes) -> str:
    """``data`` as a single-quoted ``printf '%b'`` argument: printable ASCII as is, the
    rest (and ``\\`` and ``'``) as ``\\xHH`` escapes."""
    out = []
    for byte in data:
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in "\\'":
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "'" + "".join(out) + "'"


def attach(
    findings: Iterable[Finding], transcript: Transcript | None, repro_text: str | None
) -> tuple[Finding, ...]:
    """Give every finding that lacks them the exchange's transcript and the repro."""
    entries = transcript.entries() if transcript is not None else ()
    out = []
    for finding in findings:
        out.append(
            replace(
                finding,
                transcript=finding.transcript or entries,
                repro=finding.repro or repro_text,
            )
        )
    return tuple(out)


class Clock:
    """Measures one contract's duration from construction."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self._start, 4)


def judged(
    target: WsTarget,
    suffix: str,
    name: str,
    findings: Iterable[Finding],
    clock: Clock,
    *,
    transcript: Transcript | None = None,
    repro_text: str | None = None,
    details: dict[str, str] | None = None,
) -> ContractResult:
    op = target.contract.operation
    return ContractResult.judged(
        id=contract_id(target, suffix),
        category=CATEGORY,
        name=name,
        tier=op.tier,
        findings=attach(findings, transcript, repro_text),
        duration=clock(),
        operation=op.label,
        details=details,
    )


def inconclusive(
    target: WsTarget,
    suffix: str,
    name: str,
    reason: str,
    clock: Clock | None = None,
    *,
    outcome: Outcome = Outcome.INCONCLUSIVE,
    findings: Iterable[Finding] = (),
    transcript: Transcript | None = None,
) -> ContractResult:
    op = target.contract.operation
    return ContractResult(
        id=contract_id(target, suffix),
        category=CATEGORY,
        name=name,
        tier=op.tier,
        outcome=outcome,
        findings=attach(findings, transcript, None),
        reason=reason,
        duration=clock() if clock is not None else 0.0,
        operation=op.label,
    )


def skipped(target: WsTarget, suffix: str, name: str, reason: str) -> ContractResult:
    return inconclusive(target, suffix, name, reason, outcome=Outcome.SKIPPED)
