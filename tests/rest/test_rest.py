"""REST contracts through schemathesis, against the reference server."""

from __future__ import annotations

import re
import time

from chatcontract.redact import Redactor
from chatcontract.reference.testing import ReferenceFactory
from chatcontract.report.model import Outcome
from chatcontract.rest.results import repro_command

from .helpers import by_outcome, context, run, spec

REST_OPERATIONS = {f"rest/{op.label}" for op in spec().rest_operations}
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.")


def test_the_clean_reference_keeps_every_rest_and_inventory_contract(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory()
    results = run(context(server.url, max_examples=10), "inventory", "rest")
    bad = [
        (r.id, r.reason, [f.line() for f in r.findings])
        for r in results
        if r.outcome is not Outcome.PASSED
    ]
    assert not bad
    ids = {r.id for r in results}
    assert REST_OPERATIONS | {"rest/stateful-links"} <= ids
    # Streams belong to the SSE checker and /ws to the WebSocket checker.
    assert not {i for i in ids if i.startswith("rest/") and ("stream" in i or "/ws" in i)}


def test_a_server_error_is_a_failure_with_a_redacted_reproduction(
    reference_factory: ReferenceFactory,
) -> None:
    """``server-error``: GET /api/threads?limit=100, a valid boundary value, answers 500."""
    server = reference_factory("server-error")
    results = run(context(server.url, max_examples=5), "rest")
    failed_ids = by_outcome(results, Outcome.FAILED)
    assert "rest/GET /api/threads" in failed_ids
    # The stateful phase may reach the same 500 along a sequence; nothing else may fail.
    assert failed_ids <= {"rest/GET /api/threads", "rest/stateful-links"}
    for result in results:
        if result.id == "rest/stateful-links":
            assert {f.location for f in result.failures} <= {"GET /api/threads"}
    failed = next(r for r in results if r.id == "rest/GET /api/threads")
    checks = {f.message.split(":")[0] for f in failed.failures}
    assert "not_a_server_error" in checks
    repro = failed.failures[0].repro or ""
    assert "limit=100" in repro
    assert '-H "Authorization: Bearer $CHATCONTRACT_TOKEN"' in repro
    assert not JWT.search(repro)


def test_the_request_budget_stops_new_work_and_nothing_untested_passes(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory()
    ctx = context(server.url, max_examples=5, request_budget=80)
    results = run(ctx, "rest")
    # schemathesis finishes the operation it is on; the overshoot is bounded by that.
    assert ctx.services.budget.spent < 80 + 200
    untested = [r for r in results if r.outcome is Outcome.INCONCLUSIVE]
    assert untested
    assert all(r.reason.startswith("request budget exhausted") for r in untested)
    assert all(r.outcome in (Outcome.PASSED, Outcome.INCONCLUSIVE) for r in results)


def test_the_time_budget_leaves_time_for_the_categories_after_rest(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory()
    ctx = context(server.url, max_examples=25, time_budget=6.0)
    started = time.monotonic()
    results = run(ctx, "rest")
    # REST may spend half of what is left; schemathesis stops before its next case.
    assert time.monotonic() - started < 6.0
    assert any(r.reason.startswith("time budget exhausted") for r in results)


def test_only_our_own_tokens_become_the_shell_variable() -> None:
    """An invalid token sent on purpose (ignored_auth) must stay invalid in the repro."""
    ours = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRva2Vu"
    sample = (
        f"curl -X GET -H 'Authorization: Bearer {ours}' http://h/api/agents\n"
        "curl -X GET -H 'Authorization: Bearer not-a-real-token-123' http://h/api/agents"
    )
    first, second = repro_command(sample, {ours}, Redactor([ours])).splitlines()
    assert first == 'curl -X GET -H "Authorization: Bearer $CHATCONTRACT_TOKEN" http://h/api/agents'
    assert "$CHATCONTRACT_TOKEN" not in second
    assert "not-a-real-token-123" not in second  # the redactor's bearer net still masks it
