"""Reports built by hand from the model: a staging-like run, its shards, a baseline."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jsonschema_rs

from chatcontract.plan import shard_of
from chatcontract.report.json_report import report_schema
from chatcontract.report.model import (
    ContractResult,
    Finding,
    Outcome,
    RunMeta,
    RunReport,
    TranscriptEntry,
)

SHA = "ab" * 32
ROUTE_MISSING = "answered like an unknown route (404 {'detail': 'Not Found'})"


def assert_valid(document: dict[str, Any]) -> None:
    """Every document a test produces must match the shipped schema."""
    jsonschema_rs.validator_for(report_schema()).validate(document)


def meta(**changes: Any) -> RunMeta:
    base = RunMeta(
        tool_version="0.1.0",
        spec_source="openapi.yaml",
        spec_sha256=SHA,
        target="https://staging.example.com",
        seed=42,
        started_at="2025-09-07T13:10:00Z",
        duration=252.5,
        spec_title="Chat API",
        versions={"python": "3.11.9", "schemathesis": "4.3.2"},
        planned=0,
    )
    return replace(base, **changes)


def result(
    id: str,
    outcome: Outcome = Outcome.PASSED,
    *,
    tier: str = "P1",
    findings: tuple[Finding, ...] = (),
    **changes: Any,
) -> ContractResult:
    category, _, rest = id.partition("/")
    return ContractResult(
        id=id,
        category=category,
        name=changes.pop("name", rest.replace("/", " ")),
        tier=tier,  # type: ignore[arg-type]
        outcome=outcome,
        findings=findings,
        **changes,
    )


def missing(route: str, tier: str = "P1") -> ContractResult:
    method, path = route.split(" ", 1)
    return result(
        f"inventory/{route}/implemented",
        Outcome.FAILED,
        tier=tier,
        name=f"{route} is implemented",
        operation=route,
        findings=(
            Finding(
                ROUTE_MISSING,
                location=route,
                code="route-missing",
                repro=f"curl -X {method} -H 'Authorization: Bearer $CHATCONTRACT_TOKEN' "
                f"https://staging.example.com{path}",
            ),
        ),
    )


def staging_results() -> tuple[ContractResult, ...]:
    """The status report's run, as chatcontract reports it."""
    transcript = (
        TranscriptEntry("sent", 0.0, '{"type": "start_agent", "payload": {"message": "hi"}}'),
        TranscriptEntry("received", 0.012, '{"type": "agent_started", "run_id": "r1"}'),
        TranscriptEntry("received", 0.254, "line one\nline two"),
        TranscriptEntry("note", 5.0, "idle deadline reached"),
    )
    return (
        result("inventory/GET /health/implemented", operation="GET /health", duration=0.02),
        missing("POST /api/chat/stream"),
        missing("POST /api/agents/stream"),
        result(
            "rest/POST /api/threads/status-conformance",
            Outcome.FAILED,
            operation="POST /api/threads",
            duration=1.5,
            findings=(
                Finding(
                    "status 500 | not documented for `POST /api/threads`",
                    location="/title",
                    code="not_a_server_error",
                    repro="curl -X POST https://staging.example.com/api/threads -d '{}'",
                ),
                Finding("slow answer", severity="warning", code="slow"),
            ),
        ),
        result(
            "rest/GET /api/threads/response-schema",
            tier="P2",
            operation="GET /api/threads",
            metrics={"elapsed_seconds": 0.231, "requests": 12},
            findings=(Finding("Retry-After missing", severity="warning", code="retry-after"),),
        ),
        result(
            "sse/POST /api/chat/stream/first-event",
            Outcome.SKIPPED,
            reason="blocked: POST /api/chat/stream is not implemented",
        ),
        result(
            "sse/POST /api/agents/stream/terminal",
            Outcome.SKIPPED,
            tier="P2",
            reason="blocked: POST /api/agents/stream is not implemented",
        ),
        result(
            "websocket/GET /ws/auth/no-token-refused",
            operation="GET /ws",
            tier_source="default",
            details={"status": "403"},
        ),
        result(
            "websocket/GET /ws/auth/valid-token-accepted",
            Outcome.INCONCLUSIVE,
            operation="GET /ws",
            reason="credentials rejected: HTTP 403 at the handshake; REST accepted them",
        ),
        result(
            "websocket/GET /ws/flow/start-agent",
            Outcome.FAILED,
            operation="GET /ws",
            duration=5.1,
            metrics={"first_frame_seconds": 0.012},
            findings=(
                Finding(
                    "no terminal event before the idle deadline",
                    location="frame #3",
                    code="deadline-idle",
                    repro="chatcontract run --only 'websocket/GET /ws/flow/start-agent' --seed 42",
                    transcript=transcript,
                ),
            ),
        ),
        result("websocket/GET /ws/hygiene/unknown-type", tier="P2", duration=0.3),
        result("websocket/GET /ws/limits/oversize", tier="P2", duration=0.4),
    )


def staging_report(**changes: Any) -> RunReport:
    results = staging_results()
    return RunReport(meta(**{"planned": len(results), **changes}), results)


REQUIRES = {
    "sse/POST /api/chat/stream/first-event": ("inventory/POST /api/chat/stream/implemented",),
    "sse/POST /api/agents/stream/terminal": ("inventory/POST /api/agents/stream/implemented",),
    "websocket/GET /ws/flow/start-agent": ("websocket/GET /ws/auth/valid-token-accepted",),
}


def shard(whole: RunReport, k: int, n: int, *, duration: float) -> RunReport:
    """Shard k/n of ``whole`` as `--shard k/n` reports it: owned ids plus their prerequisites."""
    owned = {r.id for r in whole.results if shard_of(r.id, n) == k}
    needed = set(owned)
    for contract_id in owned:
        needed.update(REQUIRES.get(contract_id, ()))
    results = tuple(r for r in whole.results if r.id in needed)
    return RunReport(
        replace(
            whole.meta,
            shard=(k, n),
            selection=(f"shard={k}/{n}",),
            planned=len(owned),
            duration=duration,
        ),
        results,
        prerequisites=frozenset(needed - owned),
    )
