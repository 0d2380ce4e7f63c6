"""The hostile HTTP zoo against every REST-side requester: each request ends by its deadline
and each broken reply is named for what it is, a finding, never a pass or "inconclusive".

Deadlines are small (connect 0.5 s + read 1 s); every time bound below is that
deadline plus generous slack for a loaded CI core, not a benchmark.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from chatcontract.budget import RunBudget
from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import TargetUnreachable
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.rest.contracts import run_rest
from chatcontract.rest.engine import EnginePlan, Recording, run_engine
from chatcontract.rest.http import ensure_reachable, exchange, new_client
from chatcontract.rest.inventory import run_inventory
from chatcontract.spec import Spec, load_spec
from chatcontract.transport import FailureKind, TransportFailure, request_deadline

from . import hostile_http as zoo

SLACK = 5.0
"""Seconds past a deadline an operation may take before the bound counts as broken."""
FAST = {"connect_timeout": 0.5, "read_timeout": 1.0, "max_examples": 2}
DEADLINE = request_deadline(RunSettings(**FAST))  # type: ignore[arg-type]
HEALTH = "inventory/GET /health"
_FULL = load_spec()


def tiny_spec(
    paths: tuple[str, ...] = ("/health",), *, handshake: float = 1.0, first_event: float = 1.0
) -> Spec:
    """The bundled spec cut down to ``paths``, with short declared deadlines."""
    doc: dict[str, Any] = copy.deepcopy(dict(_FULL.document))
    doc["paths"] = {path: doc["paths"][path] for path in paths}
    streams = ("/api/chat/stream", "/api/agents/stream")
    if not any(path in paths for path in ("/ws", *streams)):
        doc["components"].pop("x-sequences", None)
    if "/ws" in paths:
        doc["paths"]["/ws"]["get"]["x-websocket"]["deadlines"]["handshake-seconds"] = handshake
    for path in streams:
        if path in paths:
            deadlines = doc["paths"][path]["post"]["x-stream"].setdefault("deadlines", {})
            deadlines.update({"connect-seconds": 0.5, "first-event-seconds": first_event})
    return load_spec(doc)


class OneToken:
    """Credentials: one opaque token for everybody (the zoo checks none)."""

    users = ("alice", "bob")

    async def token(self, user: str | None = None) -> str:
        return "opaque-test-token"

    def secrets(self) -> Iterable[str]:
        return ["opaque-test-token"]


def context(url: str, spec: Spec | None = None, **settings: Any) -> RunContext:
    return RunContext(spec or tiny_spec(), url, OneToken(), RunSettings(**{**FAST, **settings}))


def inventory(ctx: RunContext) -> tuple[dict[str, ContractResult], float]:
    async def collect() -> dict[str, ContractResult]:
        return {result.id: result async for result in run_inventory(ctx)}

    started = time.monotonic()
    results = asyncio.run(collect())
    return results, time.monotonic() - started


def judged(behaviour: zoo.Behaviour, **settings: Any) -> tuple[ContractResult, float]:
    """The inventory's verdict on ``GET /health`` when it behaves so (unknown routes: 404)."""
    with zoo.serving(zoo.routes({"/health": behaviour})) as server:
        results, elapsed = inventory(context(server.url, **settings))
    return results[HEALTH], elapsed


def only_finding(result: ContractResult) -> str:
    assert result.outcome is Outcome.FAILED, (result.outcome, result.reason)
    (finding,) = result.failures
    return finding.message


# -- the inventory (httpx, our own probes) ---------------------------------------------------


def test_a_trickling_response_is_cut_at_the_deadline_and_fails_with_the_bytes_so_far() -> None:
    result, elapsed = judged(zoo.trickle(0.1))
    message = only_finding(result)
    assert message.startswith(f"the response took longer than {DEADLINE:g} s (")
    received = int(message.split("(", 1)[1].split(" bytes received", 1)[0])
    assert 0 < received < 100  # about 15: ten bytes a second for 1.5 s
    assert result.failures[0].code == "transport-too-slow"
    assert result.duration < DEADLINE + SLACK
    assert elapsed < 3 * DEADLINE + SLACK  # calibration probes answer at once


def test_a_slow_body_after_a_fast_header_is_cut_too() -> None:
    result, _ = judged(zoo.slow_body(0.2))
    message = only_finding(result)
    assert message.startswith(f"the response took longer than {DEADLINE:g} s (")
    assert result.duration < DEADLINE + SLACK


def test_a_tarpit_is_no_answer_within_the_real_limit_and_the_real_wait() -> None:
    result, _ = judged(zoo.tarpit)
    message = only_finding(result)
    # httpx's read timeout (1 s of silence) ends it before the 1.5 s total deadline.
    assert message.startswith("no answer within 1 s (waited ")
    waited = float(message.split("waited ", 1)[1].split(" s)", 1)[0])
    assert 0.9 <= waited < DEADLINE + SLACK
    assert result.duration < DEADLINE + SLACK


def test_a_reply_that_is_not_http_fails_and_shows_what_came() -> None:
    result, _ = judged(zoo.garbage())
    message = only_finding(result)
    assert message.startswith("the reply is not HTTP: it began b'SSH-2.0-OpenSSH_9.6p1")
    assert "no answer" not in message
    assert result.failures[0].code == "transport-not-http"
    assert result.duration < SLACK


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (zoo.reset_at_once, "the server reset the connection before any answer"),
        (zoo.reset_mid_body, "the server reset the connection mid-response, after "),
        (zoo.close_mid_body, "the server closed the connection mid-response, after "),
        (
            zoo.switching_protocols,
            "answered 101 Switching Protocols to a plain HTTP request that asked for no upgrade",
        ),
    ],
    ids=["reset", "reset-mid-body", "closed-mid-body", "101"],
)
def test_broken_replies_are_named_for_what_they_are(
    behaviour: zoo.Behaviour, expected: str
) -> None:
    result, _ = judged(behaviour)
    assert only_finding(result).startswith(expected)
    assert result.duration < DEADLINE + SLACK


def test_an_unknown_route_answer_that_cannot_be_learned_says_why() -> None:
    """Every path trickles: no calibration, so no presence verdict, and the reason names it."""
    with zoo.serving(zoo.routes({}, default=zoo.garbage())) as server:
        results, _ = inventory(context(server.url))
    result = results[HEALTH]
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.reason.startswith("the unknown-route answer could not be learned: ")
    assert "the reply is not HTTP" in result.reason


def test_declared_route_deadlines_replace_the_run_wide_one() -> None:
    """A silent /ws and a silent stream take their spec'd seconds, not the 20 s of REST."""
    spec = tiny_spec(("/health", "/ws", "/api/chat/stream", "/api/agents/stream"), handshake=1.0)
    table = {"/health": zoo.ok(), "/ws": zoo.tarpit, "/api/chat/stream": zoo.tarpit}
    with zoo.serving(zoo.routes(table)) as server:
        ctx = context(server.url, spec, connect_timeout=5.0, read_timeout=15.0)
        results, elapsed = inventory(ctx)
    ws = results["inventory/GET /ws"]
    assert only_finding(ws).startswith("no answer within 1 s (waited ")
    # The plain GET, then the handshake: each bounded by the declared 1 s.
    assert ws.duration < 2 * 1.0 + SLACK
    stream = results["inventory/POST /api/chat/stream"]
    assert only_finding(stream).startswith("no answer within 1.5 s (waited ")  # 0.5 + 1
    assert stream.duration < 1.5 + SLACK
    assert elapsed < 20.0


# -- our probes' edge: exchange, ensure_reachable --------------------------------------------


def test_tls_to_a_plain_http_port_is_a_tls_mismatch_not_a_timeout() -> None:
    with zoo.serving(zoo.ok()) as server:
        with pytest.raises(TargetUnreachable) as reach:
            asyncio.run(ensure_reachable(server.https_url, 2.0))

        async def ask() -> Any:
            async with new_client(context(server.https_url)) as client:
                return await exchange(client, "GET", "/health", deadline=DEADLINE)

        with pytest.raises(TargetUnreachable) as fetched:
            asyncio.run(ask())
    for error in (reach.value, fetched.value):
        assert "TLS mismatch: an https:// URL, but the port answers plain HTTP" in str(error)


def test_a_refused_connection_is_unreachable_and_says_so() -> None:
    url = zoo.refused_url()

    async def ask() -> Any:
        async with new_client(context(url)) as client:
            return await exchange(client, "GET", "/health", deadline=DEADLINE)

    with pytest.raises(TargetUnreachable, match="the connection was refused"):
        asyncio.run(ask())


def test_the_client_ignores_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", zoo.refused_url())
    monkeypatch.setenv("ALL_PROXY", zoo.refused_url())
    with zoo.serving(zoo.ok()) as server:

        async def ask() -> Any:
            async with new_client(context(server.url)) as client:
                return await exchange(client, "GET", "/health", deadline=DEADLINE)

        answer = asyncio.run(ask())
    assert not isinstance(answer, TransportFailure)
    assert answer.status == 200


# -- schemathesis' engine (requests) ---------------------------------------------------------


def test_the_rest_category_cuts_a_trickling_server_at_the_deadline() -> None:
    """Every path trickles, schemathesis' own probes included: each request still ends."""
    with zoo.serving(zoo.routes({}, default=zoo.trickle(0.1))) as server:
        ctx = context(server.url)

        async def collect() -> dict[str, ContractResult]:
            return {result.id: result async for result in run_rest(ctx)}

        started = time.monotonic()
        results = asyncio.run(collect())
        elapsed = time.monotonic() - started
    result = results["rest/GET /health"]
    assert result.outcome is Outcome.FAILED, (result.reason, result.findings)
    cut = [f for f in result.failures if f.message.startswith("transport: ")]
    assert cut, [f.message for f in result.findings]
    assert cut[0].message.startswith("transport: the response took longer than ")
    assert "curl" in (cut[0].repro or "")
    # Before the deadline, one such request took ~20 s (a 200-byte reply at 10 bytes/s).
    sent = max(ctx.services.budget.spent, 1)
    assert elapsed < sent * (DEADLINE + 1.0) + 2 * SLACK


def plan(url: str, tmp_path: Path) -> EnginePlan:
    return EnginePlan(
        document=tiny_spec().document,
        base_url=url,
        operation_ids=("getHealth",),
        protected={},
        token=None,
        budget=RunBudget(200),
        max_examples=2,
        request_timeout=1.0,
        request_deadline=DEADLINE,
        cache_dir=tmp_path / "cache",
    )


def engine(behaviour: zoo.Behaviour, tmp_path: Path) -> tuple[Recording, float]:
    with zoo.serving(zoo.routes({"/health": behaviour})) as server:
        started = time.monotonic()
        recording = run_engine(plan(server.url, tmp_path))
        return recording, time.monotonic() - started


@pytest.mark.parametrize(
    ("behaviour", "kind", "expected"),
    [
        (zoo.slow_body(0.2), FailureKind.TOO_SLOW, f"the response took longer than {DEADLINE:g} s"),
        (zoo.tarpit, FailureKind.NO_ANSWER, "no answer within 1 s"),
        (zoo.garbage(), FailureKind.NOT_HTTP, "the reply is not HTTP: it began b'SSH-2.0-"),
        (zoo.switching_protocols, FailureKind.SWITCHED, "answered 101 Switching Protocols"),
        (zoo.reset_mid_body, FailureKind.RESET, "the server reset the connection mid-response"),
        (zoo.close_mid_body, FailureKind.CLOSED, "the server closed the connection mid-response"),
    ],
    ids=["slow-body", "tarpit", "garbage", "101", "reset-mid-body", "closed-mid-body"],
)
def test_the_engine_names_each_broken_reply_as_a_failure(
    behaviour: zoo.Behaviour, kind: FailureKind, expected: str, tmp_path: Path
) -> None:
    recording, elapsed = engine(behaviour, tmp_path)
    failures = recording.failures.get("GET /health", [])
    transport = [f for f in failures if f.check == "transport"]
    assert transport, (failures, recording.errors, recording.run_errors)
    assert transport[0].message.startswith(expected)
    assert transport[0].code == TransportFailure(kind, "", 0.0).code
    assert "Network Error" not in " ".join(recording.errors.get("GET /health", []))
    assert elapsed < recording.requests * (DEADLINE + 1.0) + 2 * SLACK
