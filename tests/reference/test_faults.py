"""Each fault profile, observed from outside: the server really misbehaves as documented.

These are the proofs other checkers lean on: if a profile stopped breaking
its part of the contract, a checker "catching" it would prove nothing.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from chatcontract.reference.faults import FAULTS
from chatcontract.sse.parser import SSEComment, SSEEvent, SSEParser

from .conftest import Api, ApiFactory
from .helpers import (
    EVENT_VALIDATORS,
    WS_SERVER_VALIDATORS,
    assert_agent_run,
    parse_sse,
    schema_errors,
    spec_errors,
    sse_payloads,
    types,
    unsigned_token,
    ws_frame,
    ws_frames,
    ws_next,
)
from .test_ws import _close_code, _send

AGENT_RUN = {"agent": "research", "message": "compare regions"}


def _sse(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    with client.stream("POST", path, json=body) as response:
        raw = b"".join(response.iter_bytes())
    return response.status_code, sse_payloads(parse_sse(raw)) if response.status_code == 200 else []


def _ws_run(api: Api, user: str = "alice") -> list[dict[str, Any]]:
    ws = api.ws(user)
    _send(ws, {"type": "start_agent", "payload": AGENT_RUN})
    return list(ws_frames(ws, until={"agent_completed", "agent_error"}))


def test_every_profile_is_named_exactly_as_checkers_expect() -> None:
    assert list(FAULTS) == [
        "chat-stream-missing",
        "agents-stream-missing",
        "ws-accepts-no-token",
        "ws-accepts-expired",
        "accepts-alg-none",
        "ws-accepts-query-token",
        "events-out-of-order",
        "missing-terminal",
        "cross-user-leak",
        "thread-idor",
        "response-drift",
        "event-drift",
        "server-error",
        "ws-drops-oversize",
        "ws-acks-unknown-type",
        "ws-bad-json-1011",
        "rate-limit-no-retry-after",
        "stream-stall",
        "staging-2025-09",
    ]


@pytest.mark.parametrize(
    ("fault", "gone", "kept"),
    [
        ("chat-stream-missing", "/api/chat/stream", "/api/agents/stream"),
        ("agents-stream-missing", "/api/agents/stream", "/api/chat/stream"),
    ],
)
def test_stream_route_missing_answers_404_like_an_unknown_route(
    api_for: ApiFactory, fault: str, gone: str, kept: str
) -> None:
    me = api_for(fault).client(validate=False)
    missing = me.post(gone, json={"agent": "triage", "message": "m"})
    unknown = me.post("/api/no-such-route", json={})
    assert missing.status_code == unknown.status_code == 404
    assert missing.headers["content-type"] == unknown.headers["content-type"]
    assert missing.json()["detail"] == unknown.json()["detail"]
    status, payloads = _sse(me, kept, {"agent": "triage", "message": "m"})
    assert status == 200
    assert payloads


def test_ws_accepts_no_token(api_for: ApiFactory) -> None:
    api = api_for("ws-accepts-no-token")
    ws = api.ws(user=None, welcome=False)
    assert ws_next(ws)["user_id"] == "anonymous"
    assert api.client(None).get("/api/threads").status_code == 401  # REST still guarded


def test_ws_accepts_expired_tokens(api_for: ApiFactory) -> None:
    api = api_for("ws-accepts-expired")
    now = int(time.time())
    expired = api.token("alice", iat=now - 600, nbf=now - 600, exp=now - 60)
    ws = api.ws(token=expired, welcome=False)
    assert ws_next(ws)["type"] == "connection_established"
    assert api.client(token=expired).get("/api/threads").status_code == 401


def test_accepts_alg_none_on_rest_and_ws(api_for: ApiFactory) -> None:
    api = api_for("accepts-alg-none")
    now = int(time.time())
    claims = {"sub": "mallory", "iat": now, "nbf": now, "exp": now + 60}
    for alg in ("none", "nOnE"):
        token = unsigned_token(claims, alg)
        assert api.client(token=token).get("/api/threads").status_code == 200
        assert ws_next(api.ws(token=token, welcome=False))["user_id"] == "mallory"
    forged = api.token("alice")[:-4] + "AAAA"
    assert api.client(token=forged).get("/api/threads").status_code == 401


def test_ws_accepts_query_token(api_for: ApiFactory) -> None:
    api = api_for("ws-accepts-query-token")
    ws = api.ws(user=None, query=f"?token={api.token('alice')}", welcome=False)
    assert ws_next(ws)["user_id"] == "alice"
    with pytest.raises(InvalidStatus):
        api.ws(user=None)


def _first_completed_before_executing(events: list[dict[str, Any]]) -> bool:
    seen_executing: set[str] = set()
    for event in events:
        call_id = event["payload"].get("tool_call_id")
        if event["type"] == "tool_executing":
            seen_executing.add(call_id)
        if event["type"] == "tool_completed" and call_id not in seen_executing:
            return True
    return False


def test_events_out_of_order_on_sse_and_ws(api_for: ApiFactory) -> None:
    api = api_for("events-out-of-order")
    _, sse = _sse(api.client(), "/api/agents/stream", AGENT_RUN)
    for events in (sse, _ws_run(api)):
        assert _first_completed_before_executing(events)
        with pytest.raises(AssertionError, match="completed before"):
            assert_agent_run(events)


def test_missing_terminal_on_sse_and_ws(api_for: ApiFactory) -> None:
    api = api_for("missing-terminal")
    me = api.client()
    _, agent_events = _sse(me, "/api/agents/stream", AGENT_RUN)
    assert agent_events[-1]["type"] == "response_chunk"
    assert not {"agent_completed", "agent_error"} & set(types(agent_events))
    _, chat = _sse(me, "/api/chat/stream", {"message": "m"})
    assert types(chat)[-1] == "response_chunk"
    assert not {"response_complete", "stream_end", "agent_completed"} & set(types(chat))
    ws = api.ws()
    _send(ws, {"type": "start_agent", "payload": AGENT_RUN})
    while (frame := ws_next(ws))["type"] != "response_chunk" or not frame["payload"]["is_final"]:
        pass
    time.sleep(0.2)  # long enough for a terminal event to have been sent
    _send(ws, {"type": "ping"})
    assert ws_next(ws)["type"] == "pong"
    assert me.get(f"/api/agents/runs/{frame['run_id']}").json()["status"] == "completed"


def test_cross_user_leak_reaches_other_users_sockets_and_streams(api_for: ApiFactory) -> None:
    api = api_for("cross-user-leak", event_delay_seconds=0.05)
    alice_ws = api.ws("alice")
    alice = api.client("alice")
    with ThreadPoolExecutor(1) as pool:
        alice_stream = pool.submit(_sse, alice, "/api/agents/stream", AGENT_RUN)
        time.sleep(0.3)  # alice's stream is open and mid-run
        bob_ws = api.ws("bob")
        _send(bob_ws, {"type": "start_agent", "payload": {"agent": "triage", "message": "bob's"}})
        # Bob's socket may show alice's events first: that is the same leak, seen from his side.
        bob_run = next(
            f["run_id"]
            for f in iter(lambda: ws_next(bob_ws), None)
            if f["type"] == "agent_started" and f["payload"]["message"] == "bob's"
        )
        _, alice_sse = alice_stream.result(timeout=10)
    assert any(ws_next(alice_ws)["run_id"] == bob_run for _ in range(50))
    assert bob_run in {e["run_id"] for e in alice_sse}


def test_clean_server_does_not_leak(api: Api) -> None:
    alice_ws = api.ws("alice")
    _ws_run(api, "bob")
    _send(alice_ws, {"type": "ping"})
    assert ws_next(alice_ws)["type"] == "pong"


def test_thread_idor_exposes_reads_but_not_writes(api_for: ApiFactory) -> None:
    api = api_for("thread-idor")
    alice, bob = api.client("alice"), api.client("bob")
    tid = alice.post("/api/threads", json={"title": "alice's secret"}).json()["id"]
    alice.post("/api/chat/messages", json={"content": "the secret", "thread_id": tid})
    assert bob.get(f"/api/threads/{tid}").json()["title"] == "alice's secret"
    assert bob.get(f"/api/threads/{tid}/messages").json()["items"][0]["content"] == "the secret"
    assert bob.put(f"/api/threads/{tid}", json={"title": "mine"}).status_code == 404
    assert bob.delete(f"/api/threads/{tid}").status_code == 404


def test_response_drift_sends_message_count_as_a_string(api_for: ApiFactory) -> None:
    me = api_for("response-drift").client(validate=False)
    created = me.post("/api/threads", json={"title": "t"})
    assert created.json()["message_count"] == "0"
    assert any("message_count" in e or "'0'" in e for e in spec_errors(created))
    listed = me.get("/api/threads")
    assert listed.json()["items"][0]["message_count"] == "0"
    assert spec_errors(listed)


def test_event_drift_sends_step_number_as_a_string(api_for: ApiFactory) -> None:
    api = api_for("event-drift")
    _, sse = _sse(api.client(), "/api/chat/stream", {"message": "m"})
    ws = api.ws()
    _send(ws, {"type": "start_agent", "payload": AGENT_RUN})
    ws_events = []
    while (frame := json.loads(ws.recv(timeout=5)))["type"] not in {
        "agent_completed",
        "agent_error",
    }:
        ws_events.append(frame)
    for events, validators in ((sse, EVENT_VALIDATORS), (ws_events, WS_SERVER_VALIDATORS)):
        thinking = next(e for e in events if e["type"] == "agent_thinking")
        assert thinking["payload"]["step_number"] == "1"
        assert schema_errors(validators["agent_thinking"], thinking)


def test_server_error_on_the_limit_boundary(api_for: ApiFactory) -> None:
    me = api_for("server-error").client(validate=False)
    assert me.get("/api/threads", params={"limit": 100}).status_code == 500
    assert me.get("/api/threads", params={"limit": 99}).status_code == 200


def test_ws_drops_oversize_silently(api_for: ApiFactory) -> None:
    ws = api_for("ws-drops-oversize").ws()
    ws.send("x" * 9000)
    _send(ws, {"type": "ping"})
    assert ws_next(ws)["type"] == "pong"  # no close, no error frame


def test_ws_acks_unknown_types(api_for: ApiFactory) -> None:
    ws = api_for("ws-acks-unknown-type").ws()
    _send(ws, {"type": "teleport"})
    assert ws_frame(ws)["type"] == "message_ack"


def test_ws_bad_json_closes_1011(api_for: ApiFactory) -> None:
    ws = api_for("ws-bad-json-1011").ws()
    ws.send("{oops")
    assert _close_code(ws) == 1011


def test_rate_limit_without_retry_after(api_for: ApiFactory) -> None:
    api = api_for("rate-limit-no-retry-after")
    me = api.client(validate=False)
    tid = me.post("/api/threads", json={"title": "t"}).json()["id"]
    body = {"content": "c", "thread_id": tid}
    assert [me.post("/api/chat/messages", json=body).status_code for _ in range(3)] == [201] * 3
    limited = me.post("/api/chat/messages", json=body)
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert "ratelimit" in limited.headers
    assert any("Retry-After" in e for e in spec_errors(limited))
    assert (
        me.post("/api/agents/execute", json={"type": "triage", "message": "m"}).status_code == 200
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/chat/stream", {"message": "m"}), ("/api/agents/stream", AGENT_RUN)],
)
def test_stream_stall_sends_one_event_then_nothing(
    api_for: ApiFactory, path: str, body: dict[str, Any]
) -> None:
    api = api_for("stream-stall", sse_heartbeat_seconds=0.05)
    parser = SSEParser()
    timeout = httpx.Timeout(5.0, read=1.0)

    def read_until_the_client_gives_up() -> None:
        with api.client().stream("POST", path, json=body, timeout=timeout) as response:
            for chunk in response.iter_bytes():
                parser.receive_data(chunk)

    with pytest.raises(httpx.ReadTimeout):
        read_until_the_client_gives_up()
    items = parser.events_received()
    assert len([i for i in items if isinstance(i, SSEEvent)]) == 1
    assert not [i for i in items if isinstance(i, SSEComment)], "a stall sends no heartbeats"


def test_staging_2025_09_reproduces_the_status_report(api_for: ApiFactory) -> None:
    api = api_for("staging-2025-09")
    me = api.client(validate=False)
    assert me.get("/api/threads").status_code == 200  # REST accepts the token...
    for path in ("/api/chat/stream", "/api/agents/stream"):
        assert me.post(path, json={"agent": "triage", "message": "m"}).status_code == 404
    for user in ("alice", None):  # ...the WebSocket refuses it, and everyone else
        with pytest.raises(InvalidStatus) as refused:
            api.ws(user)
        assert refused.value.response.status_code == 403
