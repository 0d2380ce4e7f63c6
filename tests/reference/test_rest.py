"""REST behaviour of the clean reference server; every answer is checked against the spec."""

from __future__ import annotations

import base64
import time

import httpx
import jwt
import pytest

from .conftest import Api, ApiFactory
from .helpers import spec_errors, unsigned_token


def _form(**fields: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", **fields}


# the token endpoint


def test_client_credentials_yield_a_bearer_token_that_works(api: Api) -> None:
    """RFC 6749 §4.4: the answer's access_token authenticates the API."""
    anon = api.client(None)
    answer = anon.post(
        "/oauth/token", data=_form(client_id="carol", client_secret="reference-secret")
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == api.server.config.token_ttl_seconds
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "carol"
    assert {"iss", "aud", "iat", "nbf", "exp", "jti"} <= set(claims)
    me = api.client(token=body["access_token"])
    assert me.get("/api/threads").status_code == 200


def test_token_endpoint_accepts_http_basic_client_auth(api: Api) -> None:
    """RFC 6749 §2.3.1: client_id and secret may come in an HTTP Basic header."""
    basic = base64.b64encode(b"dave:reference-secret").decode()
    answer = api.client(None).post(
        "/oauth/token", data=_form(), headers={"Authorization": f"Basic {basic}"}
    )
    assert answer.status_code == 200
    assert (
        jwt.decode(answer.json()["access_token"], options={"verify_signature": False})["sub"]
        == "dave"
    )


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (_form(client_id="carol", client_secret="wrong"), 401, "invalid_client"),
        (_form(client_id="Not A User", client_secret="reference-secret"), 401, "invalid_client"),
        (_form(client_id="carol"), 401, "invalid_client"),
        (
            {"grant_type": "password", "client_id": "carol", "client_secret": "reference-secret"},
            400,
            "unsupported_grant_type",
        ),
        ({"client_id": "carol", "client_secret": "reference-secret"}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors_follow_rfc_6749(
    api: Api, form: dict[str, str], status: int, error: str
) -> None:
    answer = api.client(None).post("/oauth/token", data=form)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic")


# token validation


def _bad_tokens(api: Api) -> dict[str, str]:
    now = int(time.time())
    good = api.token("alice")
    claims = jwt.decode(good, options={"verify_signature": False})
    head, body, _ = good.split(".")
    return {
        "alg-none": unsigned_token(claims, "none"),
        "alg-nOnE": unsigned_token(claims, "nOnE"),
        "forged-signature": f"{head}.{body}.{'A' * 43}",
        "other-key": jwt.encode(claims, "x" * 48, algorithm="HS256"),
        "expired": api.token("alice", iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not-yet-valid": api.token("alice", nbf=now + 3600, exp=now + 7200),
        "wrong-issuer": api.token("alice", iss="someone-else"),
        "wrong-audience": api.token("alice", aud="another-api"),
        "no-exp": api.token("alice", exp=None),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "alg-none",
        "alg-nOnE",
        "forged-signature",
        "other-key",
        "expired",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "no-exp",
        "garbage",
    ],
)
def test_invalid_tokens_get_401_with_an_invalid_token_challenge(api: Api, kind: str) -> None:
    """RFC 6750 §3.1: a bad token is 401 with error="invalid_token", never accepted."""
    answer = api.client(token=_bad_tokens(api)[kind]).get("/api/threads")
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="chat"')
    assert 'error="invalid_token"' in challenge
    assert answer.headers["content-type"] == "application/problem+json"


def test_missing_token_gets_401_without_an_error_code(api: Api) -> None:
    answer = api.client(None).get("/api/agents")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="chat"'


def test_health_routes_are_public(api: Api) -> None:
    anon = api.client(None)
    for path in ("/health", "/health/live", "/health/ready"):
        answer = anon.get(path)
        assert answer.status_code == 200
        assert answer.json()["status"] == "healthy"


# routing and errors


def test_unknown_route_is_404_problem_json(api: Api) -> None:
    answer = api.client().get("/api/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/agents", {"GET"}),
        ("PATCH", "/api/threads", {"GET", "POST"}),
        ("OPTIONS", "/api/chat/messages", {"GET", "POST"}),
        ("HEAD", "/api/tools", {"GET"}),
        ("GET", "/oauth/token", {"POST"}),
    ],
)
def test_undeclared_method_is_405_with_allow(
    api: Api, method: str, path: str, allow: set[str]
) -> None:
    answer = api.client().request(method, path)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allow
    if method != "HEAD":
        assert answer.headers["content-type"] == "application/problem+json"


def test_validation_errors_are_422_validation_problems_with_pointers(api: Api) -> None:
    me = api.client()
    answer = me.post("/api/threads", json={"title": "", "extra": 1})
    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert "/title" in pointers
    limit = me.get("/api/threads", params={"limit": 101}).json()
    assert [e["pointer"] for e in limit["errors"]] == ["limit"]


def test_a_body_nested_deeper_than_any_parser_is_422_not_500(api: Api) -> None:
    """Hostile nesting must get the documented answer from the clean reference."""
    deep = "[" * 5000 + "]" * 5000
    answer = api.client().post(
        "/api/chat/stream",
        content=deep,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422


def test_malformed_path_ids_are_unknown_resources(api: Api) -> None:
    """A path id that cannot exist is 404: getThread documents no 422."""
    assert api.client().get("/api/threads/not-a-thread").status_code == 404


def test_plain_http_get_on_ws_asks_for_an_upgrade(api: Api) -> None:
    assert api.client().get("/ws").status_code == 426
    assert api.client(None).get("/ws").status_code == 401


# resources


def test_thread_lifecycle_and_messages(api: Api) -> None:
    me = api.client()
    created = me.post("/api/threads", json={"title": "Deploy failed", "metadata": {"k": "v"}})
    assert created.status_code == 201
    thread = created.json()
    assert thread["message_count"] == 0
    tid = thread["id"]
    assert (
        me.post("/api/chat/messages", json={"content": "hi", "thread_id": tid}).status_code == 201
    )
    assert me.get(f"/api/threads/{tid}").json()["message_count"] == 1
    page = me.get(f"/api/threads/{tid}/messages").json()
    assert [m["content"] for m in page["items"]] == ["hi"]
    assert me.get("/api/chat/messages", params={"thread_id": tid}).json()["total"] == 1
    assert me.put(f"/api/threads/{tid}", json={"title": "Fixed"}).json()["title"] == "Fixed"
    assert me.get("/api/threads").json()["items"][0]["id"] == tid
    assert me.delete(f"/api/threads/{tid}").status_code == 204
    assert me.get(f"/api/threads/{tid}").status_code == 404


def test_agents_tools_and_sync_execution(api: Api) -> None:
    me = api.client()
    names = {a["name"] for a in me.get("/api/agents").json()["agents"]}
    assert {"triage", "research", "data_helper"} <= names
    config = me.get("/api/agents/research/config").json()
    assert "run_sql" in config["tools"]
    assert me.get("/api/agents/nobody/config").status_code == 404
    tools = {t["name"]: t for t in me.get("/api/tools").json()["tools"]}
    assert {"search_docs", "query_metrics", "run_sql"} <= set(tools)
    assert tools["run_sql"]["parameters"]["type"] == "object"
    ran = me.post(
        "/api/tools/execute", json={"tool_name": "search_docs", "arguments": {"query": "ws"}}
    )
    assert ran.json()["status"] == "success"
    refused = me.post(
        "/api/tools/execute", json={"tool_name": "run_sql", "arguments": {"query": "DROP"}}
    )
    assert refused.json()["status"] == "error"
    execution = me.post("/api/agents/execute", json={"type": "triage", "message": "why?"}).json()
    assert execution["status"] == "completed"
    failed = me.post("/api/agents/execute", json={"type": "triage", "message": "x #fail"}).json()
    assert failed["status"] == "failed"
    status = me.get(f"/api/agents/runs/{execution['run_id']}").json()
    assert status["status"] == "completed"
    assert me.post(f"/api/agents/runs/{execution['run_id']}/cancel").status_code == 409


def test_execution_is_deterministic_under_the_seed(api: Api) -> None:
    me = api.client()
    first = me.post("/api/agents/execute", json={"type": "research", "message": "same"}).json()
    second = me.post("/api/agents/execute", json={"type": "research", "message": "same"}).json()
    assert first["response"] == second["response"]
    assert first["run_id"] != second["run_id"]


def test_users_cannot_see_each_others_resources(api: Api) -> None:
    """Isolation: another user's thread, messages and runs are 404, never content."""
    alice, bob = api.client("alice"), api.client("bob")
    tid = alice.post("/api/threads", json={"title": "private"}).json()["id"]
    alice.post("/api/chat/messages", json={"content": "secret", "thread_id": tid})
    run_id = alice.post("/api/agents/execute", json={"type": "triage", "message": "m"}).json()[
        "run_id"
    ]
    answers = [
        bob.get(f"/api/threads/{tid}"),
        bob.get(f"/api/threads/{tid}/messages"),
        bob.get("/api/chat/messages", params={"thread_id": tid}),
        bob.post("/api/chat/messages", json={"content": "x", "thread_id": tid}),
        bob.put(f"/api/threads/{tid}", json={"title": "mine"}),
        bob.delete(f"/api/threads/{tid}"),
        bob.get(f"/api/agents/runs/{run_id}"),
        bob.post(f"/api/agents/runs/{run_id}/cancel"),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all("secret" not in a.text and "private" not in a.text for a in answers)
    assert bob.get("/api/threads").json()["total"] == 0
    assert alice.get(f"/api/threads/{tid}").json()["title"] == "private"


def test_rate_limit_answers_429_with_ietf_headers(api_for: ApiFactory) -> None:
    api = api_for(rate_limit_per_minute=2)
    me = api.client()
    body = {"type": "triage", "message": "m"}
    assert [me.post("/api/agents/execute", json=body).status_code for _ in range(2)] == [200, 200]
    limited = me.post("/api/agents/execute", json=body)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-policy"] == '"default";q=2;w=60'
    assert limited.headers["ratelimit"].startswith('"default";r=0;t=')
    # Limits are per user and per operation: others are unaffected.
    assert api.client("bob").post("/api/agents/execute", json=body).status_code == 200
    assert me.get("/api/threads").status_code == 200


def test_spec_validation_helper_catches_a_wrong_answer(api: Api) -> None:
    """The helper itself must be able to fail, or every green test above is hollow."""
    me = api.client(validate=False)
    real = me.get("/api/agents")
    forged = httpx.Response(200, json={"agents": "nope"}, request=real.request)
    assert spec_errors(forged)
