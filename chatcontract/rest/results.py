"""Turning a schemathesis recording into contract results, secrets out.

One result per REST operation (``rest/GET /api/threads``), one for the
stateful phase (``rest/stateful-links``). Every finding names the
schemathesis check and keeps its reproduction: the curl command, with the
bearer token replaced by ``$CHATCONTRACT_TOKEN`` (double-quoted, so the shell
expands it) and anything else secret-looking removed by the run's redactor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from typing import Literal

from chatcontract.presentation import escape_double_quoted
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.rest.engine import RecordedFailure, Recording
from chatcontract.spec import Operation

__all__ = [
    "CATEGORY",
    "STATEFUL_ID",
    "TOKEN_VARIABLE",
    "blocked_results",
    "not_applicable_stateful",
    "operation_results",
    "repro_command",
    "stateful_result",
]

CATEGORY = "rest"
STATEFUL_ID = "rest/stateful-links"
TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN"
MAX_FINDINGS = 10
_MESSAGE_CHARS = 600
_SINGLE_QUOTED = re.compile(r"'([^']*)'")


def repro_command(code_sample: str, tokens: Collection[str], redact: Callable[[str], str]) -> str:
    """The curl reproduction with our tokens as ``$CHATCONTRACT_TOKEN``, then redacted.

    Wherever the token went (``Authorization: token …``, an API-key header, a
    cookie, the query string), a single-quoted argument holding it becomes a
    double-quoted one so the shell expands the variable. Only tokens we handed
    out become the variable: a deliberately invalid token (``ignored_auth``
    sends one) must stay what it was, or the repro would test something else.
    """
    marker = "\x00chatcontract-token\x00"

    def swap(match: re.Match[str]) -> str:
        inner = match.group(1)
        if not any(token in inner for token in tokens):
            return match.group(0)
        for token in tokens:
            inner = inner.replace(token, marker)
        return '"' + escape_double_quoted(inner).replace(marker, TOKEN_VARIABLE) + '"'

    text = _SINGLE_QUOTED.sub(swap, code_sample)
    for token in tokens:
        text = text.replace(token, TOKEN_VARIABLE)
    return redact(text)


def _summary(message: str) -> str:
    text = message.strip()
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS].rstrip() + " …"
    return text


def _findings(
    failures: Iterable[RecordedFailure],
    tokens: Collection[str],
    redact: Callable[[str], str],
    *,
    located: bool = False,
) -> list[Finding]:
    findings = []
    for failure in list(failures)[:MAX_FINDINGS]:
        findings.append(
            Finding(
                message=": ".join(
                    part
                    for part in (failure.check, failure.title, _summary(failure.message))
                    if part
                ),
                location=failure.operation if located else "",
                repro=repro_command(failure.code_sample, tokens, redact)
                if failure.code_sample
                else None,
                # schemathesis' own check name is the stable code (a transport cut has ours).
                code=failure.check if failure.check != "transport" else failure.code,
            )
        )
    return findings


def _result(
    op: Operation,
    outcome: Outcome | None,
    *,
    findings: list[Finding] | None = None,
    reason: str = "",
    duration: float = 0.0,
) -> ContractResult:
    """``outcome`` None: judged from the findings (failed iff any failure)."""
    found = tuple(findings or ())
    if outcome is None:
        outcome = Outcome.FAILED if any(f.severity == "failure" for f in found) else Outcome.PASSED
    return ContractResult(
        id=f"{CATEGORY}/{op.label}",
        category=CATEGORY,
        name=f"{op.label} keeps its REST contract",
        tier=op.tier,
        outcome=outcome,
        findings=found,
        reason=reason,
        duration=duration,
        operation=op.label,
    )


def blocked_results(ops: Iterable[Operation], reason: str) -> list[ContractResult]:
    """Protected operations that cannot be judged because the credentials were refused."""
    return [_result(op, Outcome.INCONCLUSIVE, reason=reason) for op in ops]


def operation_results(
    ops: Iterable[Operation],
    rec: Recording,
    tokens: Collection[str],
    redact: Callable[[str], str],
) -> list[ContractResult]:
    results = []
    for op in ops:
        label = op.label
        duration = rec.durations.get(label, 0.0)
        failures = rec.failures.get(label, [])
        errors = rec.errors.get(label, [])
        if failures:
            findings = _findings(failures, tokens, redact)
            findings += [Finding(message=e, severity="warning") for e in errors[:3]]
            results.append(_result(op, None, findings=findings, duration=duration))
        elif label in rec.tested and (rec.stopped is None or label in rec.fuzzed):
            notes = [Finding(message=e, severity="warning") for e in errors[:3]]
            results.append(_result(op, None, findings=notes, duration=duration))
        elif label in rec.tested:
            # A few example requests are not the evidence a pass claims.
            ran = ", ".join(rec.phases.get(label, ())) or "nothing"
            reason = f"{rec.stopped} before fuzzing it (ran: {ran})"
            results.append(_result(op, Outcome.INCONCLUSIVE, reason=reason, duration=duration))
        else:
            reason = _untested_reason(rec, label)
            results.append(_result(op, Outcome.INCONCLUSIVE, reason=reason, duration=duration))
    return results


def _untested_reason(rec: Recording, label: str) -> str:
    """Why an operation got no request at all, most specific cause first."""
    errors = rec.errors.get(label)
    if errors:
        return f"schemathesis could not test it: {errors[0]}"
    if rec.stopped is not None:
        return rec.stopped
    if rec.run_errors:
        return rec.run_errors[0]
    if label in rec.skipped:
        return f"skipped: {rec.skipped[label]}"
    return "not tested"


def not_applicable_stateful() -> ContractResult:
    """The spec has links, but none gave schemathesis' stateful phase a sequence to run."""
    return ContractResult(
        id=STATEFUL_ID,
        category=CATEGORY,
        name="sequences along the spec's links keep the contract",
        tier="P1",
        outcome=Outcome.SKIPPED,
        reason="schemathesis found no runnable sequence along the spec's links",
    )


def stateful_result(
    rec: Recording,
    tokens: Collection[str],
    redact: Callable[[str], str],
    *,
    tier: Literal["P1", "P2"] = "P1",
    blocked: str | None = None,
) -> ContractResult | None:
    """The stateful phase's verdict; None when the spec gives it nothing to do."""

    def result(
        outcome: Outcome, reason: str = "", findings: list[Finding] | None = None
    ) -> ContractResult:
        return ContractResult(
            id=STATEFUL_ID,
            category=CATEGORY,
            name="sequences along the spec's links keep the contract",
            tier=tier,
            outcome=outcome,
            reason=reason,
            findings=tuple(findings or ()),
            duration=rec.durations.get("stateful", 0.0),
        )

    if blocked is not None:
        return result(Outcome.INCONCLUSIVE, blocked)
    if rec.stateful_failures or rec.stateful_ran:
        findings = _findings(rec.stateful_failures, tokens, redact, located=True)
        failed = any(f.severity == "failure" for f in findings)
        return result(Outcome.FAILED if failed else Outcome.PASSED, findings=findings)
    if rec.stopped is not None and rec.stateful_skip != "not_applicable":
        return result(Outcome.INCONCLUSIVE, rec.stopped)
    return None
