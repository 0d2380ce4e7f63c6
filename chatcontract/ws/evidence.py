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

from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.ws.client import Presented, WsTarget
from chatcontract.ws.frames import Transcript

__all__ = [
    "CATEGORY",
    "TOKEN_VARIABLE",
    "Clock",
    "attach",
    "contract_id",
    "inconclusive",
    "judged",
    "repro",
    "skipped",
]

CATEGORY = "websocket"
TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN"


def contract_id(target: WsTarget, suffix: str) -> str:
    return f"{CATEGORY}/{target.contract.operation.label}/{suffix}"


def _websocat(target: WsTarget, presented: Presented | None, token_note: str) -> str:
    url = target.url
    args = ["websocat"]
    if presented is not None and presented.carrier is not None:
        carrier = presented.carrier
        if carrier.kind == "header":
            scheme = f"{carrier.scheme} " if carrier.scheme else ""
            args += ["-H", f"'{carrier.name or 'Authorization'}: {scheme}{TOKEN_VARIABLE}'"]
        elif carrier.kind == "subprotocol":
            encoded = (
                "$(printf %s " + TOKEN_VARIABLE + " | basenc --base64url | tr -d =)"
                if carrier.encoding == "base64url-nopad"
                else TOKEN_VARIABLE
            )
            args += ["--protocol", f'"{carrier.protocol}, {carrier.token_prefix}{encoded}"']
        elif carrier.kind == "query":
            url = f"{url}?{carrier.name or 'token'}={TOKEN_VARIABLE}"
        else:
            args += ["-H", f"'Cookie: {carrier.name or 'token'}={TOKEN_VARIABLE}'"]
    if presented is not None and presented.origin is not None:
        args += ["--origin", shlex.quote(presented.origin)]
    line = " ".join([*args, f"'{url}'"])
    return f"{line}{token_note}"


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
    lines = [command, _websocat(target, presented, token_note)]
    for frame in send[:5]:
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        lines.append(f"  then send: {text[:300]}")
    return "\n".join(lines)


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
