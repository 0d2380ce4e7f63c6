"""Object-level authorization: what one user creates, another may neither read nor change."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatcontract.reference.testing import ReferenceFactory
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.rest.isolation import (
    ISOLATION_PREFIX,
    isolation_plan,
    isolation_results,
    with_canary,
)
from chatcontract.rest.samples import request_properties

from .helpers import by_outcome, context, run, spec
from .servers import serving

READS = {
    f"{ISOLATION_PREFIX}/GET /api/threads/{{thread_id}}",
    f"{ISOLATION_PREFIX}/GET /api/threads/{{thread_id}}/messages",
    f"{ISOLATION_PREFIX}/GET /api/chat/messages",
}
WRITES = {
    f"{ISOLATION_PREFIX}/PUT /api/threads/{{thread_id}}",
    f"{ISOLATION_PREFIX}/DELETE /api/threads/{{thread_id}}",
}
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.")


def isolation(ctx: Any) -> list[ContractResult]:
    return asyncio.run(isolation_results(ctx, spec().rest_operations))


def everything_said(results: list[ContractResult]) -> str:
    parts = []
    for r in results:
        parts += [r.reason, r.name, *(f.message for f in r.findings)]
        parts += [f.repro or "" for f in r.findings]
    return "\n".join(parts)


def test_the_plan_comes_from_the_spec_links() -> None:
    """Producers, targets and children are read from the spec, not listed in the checker."""
    (producer,) = isolation_plan(spec(), spec().rest_operations)
    assert producer.op.operation_id == "createThread"
    assert {f"{ISOLATION_PREFIX}/{t.op.label}" for t in producer.targets} == READS | WRITES
    assert all(dict(t.parameters) == {"thread_id": "$response.body#/id"} for t in producer.targets)
    assert [c.operation_id for c in producer.children] == ["createChatMessage"]


def test_the_canary_goes_only_where_the_schema_allows_it() -> None:
    create = next(op for op in spec().rest_operations if op.operation_id == "createChatMessage")
    properties = request_properties(spec(), create)
    body = {"content": "hello", "thread_id": "thread_1"}
    marked = with_canary(body, properties, "CANARY", keep={"thread_id"})
    assert marked == {"content": "hello CANARY", "thread_id": "thread_1"}
    tight = {"title": {"type": "string", "maxLength": 8}, "kind": {"type": "string", "enum": ["a"]}}
    assert with_canary({"title": "long title", "kind": "a"}, tight, "CANARY") == {
        "title": "CANARY",
        "kind": "a",
    }


def test_the_clean_reference_keeps_every_isolation_contract(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory()
    results = isolation(context(server.url))
    assert {r.id for r in results} == READS | WRITES
    assert by_outcome(results, Outcome.PASSED) == READS | WRITES
    by_id = {r.id: r for r in results}
    assert by_id[f"{ISOLATION_PREFIX}/GET /api/threads/{{thread_id}}"].name == (
        "GET /api/threads/{thread_id} never serves another user's object"
    )
    assert by_id[f"{ISOLATION_PREFIX}/PUT /api/threads/{{thread_id}}"].tier == "P2"


def test_thread_idor_fails_exactly_the_three_reads_after_the_fuzzing_results(
    reference_factory: ReferenceFactory,
) -> None:
    """``thread-idor``: bob reads alice's thread and its messages; writes stay refused."""
    server = reference_factory("thread-idor")
    results = run(context(server.url, max_examples=3), "rest")
    ids = [r.id for r in results]
    first_isolation = min(ids.index(i) for i in READS | WRITES)
    assert all(i.startswith(ISOLATION_PREFIX) for i in ids[first_isolation:])
    assert "rest/stateful-links" in ids[:first_isolation]
    assert by_outcome(results, Outcome.FAILED) == READS
    assert by_outcome(results, Outcome.PASSED) >= WRITES

    for result in results:
        if result.id not in READS:
            continue
        assert result.category == "rest"
        assert result.tier == "P1"
        leak, canary = (f.message for f in result.failures)
        assert re.match(
            r"bob got alice's object: GET /api/\S+thread_\w+\S* answered 200, "
            r"expected a documented 404; body: \{",
            leak,
        )
        assert re.fullmatch(
            r"alice's canary chatcontract-canary-[0-9a-f]+ is in the body bob received \(200\)",
            canary,
        )
        repro = result.failures[0].repro or ""
        assert repro.startswith('curl -sS -X GET -H "Authorization: Bearer $CHATCONTRACT_TOKEN_2"')
        assert server.url + (result.operation or "").split(" ")[1].split("{")[0] in repro
    chat = next(r for r in results if r.id == f"{ISOLATION_PREFIX}/GET /api/chat/messages")
    assert "?thread_id=thread_" in (chat.failures[0].repro or "")


def test_one_user_skips_isolation(reference_factory: ReferenceFactory) -> None:
    server = reference_factory()
    results = isolation(context(server.url, env={"CHATCONTRACT_USERS": "alice"}))
    assert {r.id for r in results} == READS | WRITES
    assert {(r.outcome, r.reason) for r in results} == {
        (Outcome.SKIPPED, "needs two users (CHATCONTRACT_USERS)")
    }


def test_rejected_credentials_make_isolation_inconclusive(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory("thread-idor")
    planted = {"alice": "planted-alice-token-0001", "bob": "planted-bob-token-0002"}
    env = {f"CHATCONTRACT_TOKEN_{user.upper()}": token for user, token in planted.items()}
    results = isolation(context(server.url, env=env))
    assert by_outcome(results, Outcome.INCONCLUSIVE) == READS | WRITES
    assert all(r.reason.startswith("credentials rejected: 401") for r in results)
    said = everything_said(results)
    assert not any(token in said for token in planted.values())


def test_no_token_ever_reaches_a_finding(reference_factory: ReferenceFactory) -> None:
    server = reference_factory("thread-idor")
    ctx = context(server.url)
    results = isolation(ctx)
    assert by_outcome(results, Outcome.FAILED) == READS
    tokens = [asyncio.run(ctx.credentials.token(user)) for user in ctx.credentials.users]
    said = everything_said(results)
    assert "$CHATCONTRACT_TOKEN_2" in said
    assert not any(token in said for token in tokens)
    assert not JWT.search(said)


def permissive_writes() -> Starlette:
    """Reads are isolated, but anyone may rename or delete anyone's thread."""
    threads: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}

    def user(request: Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    async def agents(request: Request) -> Response:
        return JSONResponse({"agents": []})

    async def create(request: Request) -> Response:
        body = await request.json()
        thread = {"id": f"thread_{len(threads) + 1:06d}", "title": body["title"]}
        threads[thread["id"]], owners[thread["id"]] = thread, user(request)
        return JSONResponse(thread, status_code=201)

    async def one(request: Request) -> Response:
        thread_id = request.path_params.get("thread_id") or request.query_params["thread_id"]
        if thread_id not in threads or (
            request.method == "GET" and owners[thread_id] != user(request)
        ):
            return JSONResponse({"status": 404}, status_code=404)
        if request.method == "PUT":
            threads[thread_id]["title"] = (await request.json())["title"]
        if request.method == "DELETE":
            del threads[thread_id]
            return Response(status_code=204)
        if request.url.path.endswith("messages"):
            return JSONResponse({"items": [], "total": 0, "limit": 20, "offset": 0})
        return JSONResponse(threads[thread_id])

    async def message(request: Request) -> Response:
        return JSONResponse({"id": "msg_1"}, status_code=201)

    return Starlette(
        routes=[
            Route("/api/agents", agents),
            Route("/api/threads", create, methods=["POST"]),
            Route("/api/threads/{thread_id}", one, methods=["GET", "PUT", "DELETE"]),
            Route("/api/threads/{thread_id}/messages", one),
            Route("/api/chat/messages", one, methods=["GET"]),
            Route("/api/chat/messages", message, methods=["POST"]),
        ]
    )


def test_a_write_to_another_users_object_is_caught_and_the_change_shown() -> None:
    env = {"CHATCONTRACT_TOKEN_ALICE": "alice-token-1", "CHATCONTRACT_TOKEN_BOB": "bob-token-2"}
    with serving(permissive_writes()) as url:
        results = isolation(context(url, env=env))
    assert by_outcome(results, Outcome.PASSED) == READS
    assert by_outcome(results, Outcome.FAILED) == WRITES
    by_id = {r.id: r for r in results}
    put = [f.message for f in by_id[f"{ISOLATION_PREFIX}/PUT /api/threads/{{thread_id}}"].failures]
    assert put[0].startswith("bob was allowed to change alice's object: PUT /api/threads/thread_")
    assert put[1].startswith("alice's object changed after bob's PUT: GET /api/threads/thread_")
    assert "chatcontract-peer-" in put[1]
    delete = by_id[f"{ISOLATION_PREFIX}/DELETE /api/threads/{{thread_id}}"].failures
    assert delete[1].message.startswith(
        "alice's object is gone after bob's DELETE: GET /api/threads/thread_"
    )
    assert delete[1].message.endswith("answered 404 to alice")
    assert "bob-token-2" not in everything_said(results)
