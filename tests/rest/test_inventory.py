"""The endpoint inventory against the reference server and small hostile targets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chatcontract.reference.testing import ReferenceFactory
from chatcontract.report.model import Outcome

from .helpers import by_outcome, context, run, spec
from .servers import serving

ALL_OPERATIONS = {f"inventory/{op.label}" for op in spec().operations}
STREAMS = {"inventory/POST /api/chat/stream", "inventory/POST /api/agents/stream"}


def test_every_operation_of_the_clean_reference_is_present(reference_factory: ReferenceFactory):
    """The baseline: no false 'missing' on a server that implements the whole spec."""
    server = reference_factory()
    results = run(context(server.url), "inventory")
    assert {r.id for r in results} == ALL_OPERATIONS
    assert by_outcome(results, Outcome.PASSED) == ALL_OPERATIONS


def test_staging_2025_09_misses_exactly_the_two_stream_routes(reference_factory: ReferenceFactory):
    """The status report's 404s, named as missing routes and nothing else."""
    server = reference_factory("staging-2025-09")
    results = run(context(server.url), "inventory")
    assert by_outcome(results, Outcome.FAILED) == STREAMS
    assert by_outcome(results, Outcome.PASSED) == ALL_OPERATIONS - STREAMS
    for result in results:
        if result.id in STREAMS:
            assert result.name == f"{result.operation} is implemented"
            finding = result.failures[0]
            assert finding.message.startswith("missing: answered like an unknown route: 404")
            assert "chatcontract-probe-" in finding.message
            assert finding.repro is not None
            assert "$CHATCONTRACT_TOKEN" in finding.repro


def test_streams_are_judged_by_their_headers_without_reading_a_stalled_body(
    reference_factory: ReferenceFactory,
) -> None:
    """A stream that stalls after its first event must not hold the inventory."""
    server = reference_factory("stream-stall")
    started = time.monotonic()
    results = run(context(server.url, read_timeout=20.0), "inventory")
    assert time.monotonic() - started < 10
    assert by_outcome(results, Outcome.PASSED) >= STREAMS


def _thread_lookup(request: Request) -> Response:
    return JSONResponse(
        {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Thread not found"},
        status_code=404,
        media_type="application/problem+json",
    )


def _health(request: Request) -> Response:
    return JSONResponse({"status": "healthy", "service": "t", "version": "1", "timestamp": "x"})


def _not_found_page(kind: str) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        if kind == "html":
            path = request.url.path
            page = (
                f"<!DOCTYPE html><html><body><h1>404</h1><p>{path} was not found</p></body></html>"
            )
            return HTMLResponse(page, status_code=404)
        return PlainTextResponse("Not Found", status_code=404)

    return handler


@pytest.mark.parametrize("kind", ["text", "html"])
def test_a_text_or_html_not_found_target_with_a_json_404_route(kind: str) -> None:
    """Unknown routes answer text/HTML; the one real route answers a documented JSON 404."""
    app = Starlette(
        routes=[
            Route("/health", _health),
            Route("/api/threads/{thread_id}", _thread_lookup, methods=["GET"]),
        ],
        exception_handlers={404: _not_found_page(kind)},
    )
    with serving(app) as url:
        results = run(context(url, env={"CHATCONTRACT_TOKEN": "opaque-test-token"}), "inventory")
    outcome = {r.id: r.outcome for r in results}
    assert outcome["inventory/GET /api/threads/{thread_id}"] is Outcome.PASSED
    assert outcome["inventory/GET /health"] is Outcome.PASSED
    # The path exists, but not these methods: 405 where the spec has the method.
    for method in ("PUT", "DELETE"):
        result = next(
            r for r in results if r.id == f"inventory/{method} /api/threads/{{thread_id}}"
        )
        assert result.outcome is Outcome.FAILED
        assert result.failures[0].message.startswith("method missing: answered 405")
    missing = {r.id for r in results if r.failures and r.failures[0].message.startswith("missing:")}
    assert missing == ALL_OPERATIONS - {
        "inventory/GET /api/threads/{thread_id}",
        "inventory/PUT /api/threads/{thread_id}",
        "inventory/DELETE /api/threads/{thread_id}",
        "inventory/GET /health",
        "inventory/GET /ws",
    }
    # Starlette refuses an unknown WebSocket path with 403, like a refused token: undecidable.
    assert outcome["inventory/GET /ws"] is Outcome.INCONCLUSIVE


def test_a_target_that_authenticates_before_routing_is_inconclusive_not_passed() -> None:
    """Every path answers 401 without a valid token: presence cannot be told, so no passes."""

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await PlainTextResponse("Unauthorized", status_code=401)(scope, receive, send)

    with serving(refuse) as url:
        results = run(context(url, env={"CHATCONTRACT_TOKEN": "opaque-test-token"}), "inventory")
    protected = {f"inventory/{op.label}" for op in spec().operations if not op.is_public}
    assert protected <= by_outcome(results, Outcome.INCONCLUSIVE)
    assert not by_outcome(results, Outcome.PASSED) & protected
    # /health is public: probed without a token it too gets 401, like every unknown route.
    assert not by_outcome(results, Outcome.FAILED)


def test_rejected_credentials_do_not_blind_the_inventory(reference_factory: ReferenceFactory):
    """A 401 from a real route is not the unknown-route answer: presence is still judged."""
    server = reference_factory("staging-2025-09")
    ctx = context(server.url, env={"CHATCONTRACT_CLIENT_SECRET": "not-the-secret"})
    results = run(ctx, "inventory")
    assert ctx.services.control is not None
    assert ctx.services.control.accepted is False
    assert by_outcome(results, Outcome.FAILED) == STREAMS
    assert by_outcome(results, Outcome.PASSED) == ALL_OPERATIONS - STREAMS
