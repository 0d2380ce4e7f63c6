"""Any spec, any server: an API without authentication, and one open in one place only.

The server is a small real Starlette app (:mod:`tests.foreign.open_servers`)
that records what it was sent, so every request body chatcontract built can
be checked against its schema: stream bodies come from the spec, never carry a
field the schema does not allow, and a route without a ``requestBody`` gets
no body at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping

import jsonschema_rs
import pytest

from chatcontract.auth import NO_AUTH_REASON, Anonymous, credentials_from_env, no_auth_reason
from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import ConfigError
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import run_contracts
from chatcontract.spec import Spec, load_spec
from chatcontract.spec.model import StreamDeadlines
from chatcontract.sse.session import OPTIONS_KEY, SSEOptions
from chatcontract.ws.handshake import auth_matrix, positive_control
from chatcontract.ws.isolation import isolation_contracts

from ..rest.servers import serving
from ..ws.helpers import make_ctx, spec_with, target_of
from .open_servers import ASK_SCHEMA, TOKENS, Received, open_app, open_spec, partly_open_spec

FAST = SSEOptions(deadlines=StreamDeadlines(connect=2, first_event=3, idle=3, total=10), grace=0.2)
TWO_USERS = {f"CHATCONTRACT_TOKEN_{user.upper()}": token for token, user in TOKENS.items()}


def _run(spec: Spec, url: str, env: Mapping[str, str]) -> dict[str, ContractResult]:
    credentials = credentials_from_env(spec, url, env)
    settings = RunSettings(connect_timeout=2.0, read_timeout=5.0)
    ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=settings)
    for secret in credentials.secrets():
        ctx.redactor.add(secret)
    ctx.cache[OPTIONS_KEY] = FAST
    results = asyncio.run(run_contracts(ctx, ["inventory", "sse"]))
    return {result.id: result for result in results}


def _unexpected(results: Mapping[str, ContractResult]) -> dict[str, tuple[str, str, list[str]]]:
    return {
        rid: (r.outcome.value, r.reason, [f.message for f in r.failures])
        for rid, r in results.items()
        if r.outcome in (Outcome.FAILED, Outcome.INCONCLUSIVE)
    }


def _check_bodies(received: Received) -> None:
    ask = received.bodies.get("/ask", [])
    assert ask, "nothing was streamed from POST /ask"
    validator = jsonschema_rs.validator_for(ASK_SCHEMA)
    for body in ask:
        assert validator.is_valid(body), body
    # A route without a requestBody is sent none (the server answers 415 to any).
    assert received.bodies.get("/ticks")
    assert all(body is None for body in received.bodies["/ticks"])


@pytest.fixture
def open_server() -> Iterator[tuple[str, Received]]:
    received = Received()
    with serving(open_app(received)) as url:
        yield url, received


@pytest.fixture
def partly_open_server() -> Iterator[tuple[str, Received]]:
    received = Received()
    with serving(open_app(received, protected=True)) as url:
        yield url, received


def test_an_api_without_authentication_is_checked_without_credentials(
    open_server: tuple[str, Received],
) -> None:
    url, received = open_server
    spec = load_spec(open_spec())
    assert isinstance(credentials_from_env(spec, url, {}), Anonymous)
    results = _run(spec, url, {})
    assert _unexpected(results) == {}
    assert {f"inventory/{op.label}" for op in spec.operations} <= results.keys()
    passed = {rid for rid, r in results.items() if r.outcome is Outcome.PASSED}
    assert {"sse/POST /ask/events", "sse/POST /ask/sequence:answer", "sse/GET /ticks/events"} <= (
        passed
    )
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.SKIPPED
    assert isolation.reason == NO_AUTH_REASON
    _check_bodies(received)
    assert not any(any(received.authorization[path]) for path in received.authorization)


def test_the_canary_goes_into_a_free_string_the_schema_allows(
    open_server: tuple[str, Received],
) -> None:
    """The generated body is the schema's; the canary only joins its free-text field."""
    url, received = open_server
    _run(load_spec(open_spec()), url, {})
    streamed = [b for b in received.bodies["/ask"] if isinstance(b, dict)]
    assert streamed
    assert all(set(body) <= set(ASK_SCHEMA["properties"]) for body in streamed)
    assert all("message" not in body for body in streamed)
    assert any("canary-" in body["question"] for body in streamed)
    assert all("style" not in body or body["style"] in ("short", "long") for body in streamed)


def test_one_open_operation_is_checked_without_a_token(
    partly_open_server: tuple[str, Received],
) -> None:
    url, received = partly_open_server
    spec = load_spec(partly_open_spec())
    results = _run(spec, url, TWO_USERS)
    assert _unexpected(results) == {}
    isolation = results["sse/isolation"]
    # POST /ask is protected: alice and bob stream it at once, and nothing crosses.
    assert isolation.outcome is Outcome.PASSED
    assert isolation.details["not checked"] == no_auth_reason(spec.operation("ticks"))
    _check_bodies(received)
    assert received.authorization["/ticks"]
    assert not any(received.authorization["/ticks"])
    assert all(header is not None for header in received.authorization["/ask"])


def test_a_protected_spec_without_credentials_names_what_to_set() -> None:
    spec = load_spec(partly_open_spec())
    with pytest.raises(ConfigError) as raised:
        credentials_from_env(spec, "http://127.0.0.1:9", {})
    message = str(raised.value)
    assert "\n" not in message
    assert "CHATCONTRACT_TOKEN" in message
    assert "CHATCONTRACT_CLIENT_SECRET" in message


def test_a_fully_open_spec_ignores_configured_tokens() -> None:
    credentials = credentials_from_env(load_spec(open_spec()), "http://h", TWO_USERS)
    assert isinstance(credentials, Anonymous)
    assert credentials.users == ("anonymous",)
    assert list(credentials.secrets()) == []


def test_isolation_without_a_place_for_a_canary_or_a_run_id_is_skipped(
    partly_open_server: tuple[str, Received],
) -> None:
    """No free text in the request, no correlated run id: nothing to judge isolation by."""
    url, received = partly_open_server
    document = partly_open_spec()
    ask = document["paths"]["/ask"]["post"]
    schema = ask["requestBody"]["content"]["application/json"]["schema"]
    schema["properties"]["question"]["pattern"] = "^[a-z0-9 ]+$"
    del document["components"]["x-sequences"]["answer"]["correlate"]
    spec = load_spec(document)
    results = _run(spec, url, TWO_USERS)
    assert _unexpected(results) == {}
    isolation = results["sse/isolation"]
    assert isolation.outcome is Outcome.SKIPPED
    assert isolation.reason.startswith(no_auth_reason(spec.operation("ticks")) + "; POST /ask: ")
    assert "allows no free text to carry a canary" in isolation.reason
    assert not any("canary-" in str(body) for body in received.bodies["/ask"])


def test_an_open_websocket_skips_every_contract_that_needs_a_token() -> None:
    """``security: []`` on the upgrade operation: no token is ever asked for or sent."""
    ws = spec_with().websockets[0]
    operation = dataclasses.replace(ws.operation, security=())
    spec = spec_with(operation=operation, origin_allowlist=None)
    target = target_of(make_ctx("http://127.0.0.1:9", Anonymous(), spec=spec))

    async def judge() -> list[ContractResult]:
        control, access = await positive_control(target)
        assert access.anonymous is not None
        assert access.unusable is None
        rows = [result async for result in auth_matrix(target, access)]
        return [control, *rows, *await isolation_contracts(target, access)]

    results = asyncio.run(judge())
    reason = no_auth_reason(operation)
    assert {r.outcome for r in results} == {Outcome.SKIPPED}, [(r.id, r.reason) for r in results]
    assert {r.reason for r in results} == {reason}
    assert any(r.id.endswith("/auth/positive-control") for r in results)
    assert any(r.id.endswith("/isolation/threads") for r in results)
