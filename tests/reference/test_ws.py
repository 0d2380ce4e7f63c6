"""The WebSocket /ws over a real handshake with the websockets client."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection

from .conftest import Api, ApiFactory
from .helpers import (
    assert_agent_run,
    component_validator,
    schema_errors,
    unsigned_token,
    ws_frames,
    ws_next,
)


def _send(ws: ClientConnection, frame: dict[str, object]) -> None:
    ws.send(json.dumps(frame))


def _close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent (None: no close frame)."""
    try:
        while True:
            ws.recv(timeout=5)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def _refused_status(api: Api, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        api.ws(**kwargs)  # type: ignore[arg-type]
    return refused.value.response.status_code


def test_handshake_without_token_is_refused_with_403(api: Api) -> None:
    assert _refused_status(api, user=None) == 403


def test_handshake_refusal_is_a_problem_json_forbidden(api: Api) -> None:
    """The spec's 403 for /ws is problem+json, like every other error."""
    with pytest.raises(InvalidStatus) as refused:
        api.ws(user=None)
    response = refused.value.response
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(bytes(response.body or b""))
    errors = schema_errors(component_validator("#/components/schemas/Problem"), problem)
    assert not errors
    assert problem["status"] == 403


def test_handshake_with_bad_tokens_is_refused_with_403(api: Api) -> None:
    claims = {"sub": "alice", "iss": "chat-reference", "aud": "chat-api"}
    now = int(time.time())
    for token in (
        unsigned_token({**claims, "iat": now, "nbf": now, "exp": now + 60}),
        api.token("alice", iat=now - 100, nbf=now - 100, exp=now - 10),
        api.token("alice", aud="elsewhere"),
    ):
        assert _refused_status(api, token=token) == 403


def test_header_token_gets_the_welcome_frame_first(api: Api) -> None:
    ws = api.ws(welcome=False)
    welcome = ws_next(ws)  # validated against ConnectionEstablished
    assert welcome["type"] == "connection_established"
    assert welcome["user_id"] == "alice"
    assert welcome["max_message_size"] == 8192
    assert welcome["heartbeat_interval"] == 30


def test_subprotocol_token_is_accepted_and_jwt_auth_selected(api: Api) -> None:
    ws = api.ws(subprotocol=True)
    assert ws.subprotocol == "jwt-auth"


def test_query_token_is_refused_even_when_valid(api: Api) -> None:
    """Tokens in URLs leak into logs; the contract forbids that carrier."""
    assert _refused_status(api, user=None, query=f"?token={api.token()}") == 403
    assert _refused_status(api, query=f"?token={api.token()}") == 403


def test_bad_json_is_a_format_error_and_the_connection_stays_usable(api: Api) -> None:
    ws = api.ws()
    ws.send("{not json")
    assert ws_next(ws)["error_code"] == "FORMAT_ERROR"
    ws.send("NaN")
    assert ws_next(ws)["error_code"] == "FORMAT_ERROR"
    ws.send(b"\x00binary")
    assert ws_next(ws)["error_code"] == "FORMAT_ERROR"
    ws.send("[" * 4000 + "]" * 4000)  # valid JSON under the size limit, deeper than any parser
    assert ws_next(ws)["error_code"] == "FORMAT_ERROR"
    _send(ws, {"type": "ping", "payload": {}})
    assert ws_next(ws)["type"] == "pong"


def test_unknown_type_and_schema_mismatch_get_error_frames(api: Api) -> None:
    ws = api.ws()
    _send(ws, {"type": "teleport", "message_id": "c1"})
    error = ws_next(ws)
    assert (error["error_code"], error["client_message_id"]) == ("UNKNOWN_MESSAGE_TYPE", "c1")
    _send(ws, {"type": "start_agent", "payload": {"agent": "research"}, "message_id": "c2"})
    error = ws_next(ws)
    assert (error["error_code"], error["client_message_id"]) == ("VALIDATION_ERROR", "c2")
    _send(ws, {"type": "switch_thread", "payload": {}})
    assert ws_next(ws)["error_code"] == "VALIDATION_ERROR"


def test_oversize_message_closes_with_1009(api: Api) -> None:
    ws = api.ws()
    ws.send("x" * 8193)
    assert _close_code(ws) == 1009


def test_message_at_the_limit_is_processed(api: Api) -> None:
    ws = api.ws()
    frame = {"type": "ping", "payload": {}, "message_id": ""}
    padding = 8192 - len(json.dumps(frame))
    frame["message_id"] = "m" * min(64, padding)
    ws.send(json.dumps(frame).ljust(8192))
    assert ws_next(ws)["type"] == "pong"


def test_invalid_utf8_closes_with_1007(api: Api) -> None:
    ws = api.ws()
    ws.send(b'{"type": "ping\xff"}', text=True)
    assert _close_code(ws) == 1007


def test_start_agent_streams_a_full_agent_run(api: Api) -> None:
    ws = api.ws()
    _send(ws, {"type": "start_agent", "payload": {"agent": "research", "message": "regions?"}})
    events = list(ws_frames(ws, until={"agent_completed", "agent_error"}))
    assert_agent_run(events)
    _send(ws, {"type": "start_agent", "payload": {"agent": "nobody", "message": "m"}})
    assert ws_next(ws)["error_code"] == "AGENT_NOT_FOUND"


def test_user_message_thread_history_and_switching(api: Api) -> None:
    ws = api.ws()
    _send(ws, {"type": "user_message", "payload": {"content": "Summarise"}, "message_id": "c9"})
    ack = ws_next(ws)
    assert ack["type"] == "message_ack"
    assert ack["client_message_id"] == "c9"
    thread_id = ack["thread_id"]
    events = list(ws_frames(ws, until={"agent_completed", "agent_error"}))
    assert_agent_run(events, thread_id=thread_id)
    _send(ws, {"type": "get_thread_history", "payload": {"limit": 10}, "thread_id": thread_id})
    history = ws_next(ws)
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    other = api.client().post("/api/threads", json={"title": "other"}).json()["id"]
    _send(ws, {"type": "switch_thread", "payload": {}, "thread_id": other})
    assert ws_next(ws) == {"type": "thread_switched", "thread_id": other}
    bobs = api.client("bob").post("/api/threads", json={"title": "bob's"}).json()["id"]
    for kind in ("switch_thread", "get_thread_history"):
        _send(ws, {"type": kind, "payload": {}, "thread_id": bobs})
        assert ws_next(ws)["error_code"] == "THREAD_NOT_FOUND"


def test_stop_agent_ends_the_run_with_cancelled(api_for: ApiFactory) -> None:
    api = api_for(event_delay_seconds=0.1)
    ws = api.ws()
    _send(ws, {"type": "start_agent", "payload": {"agent": "triage", "message": "slow"}})
    started = ws_next(ws)
    _send(ws, {"type": "stop_agent", "payload": {"run_id": started["run_id"]}})
    events = [started, *ws_frames(ws, until={"agent_completed", "agent_error"})]
    assert_agent_run(events)
    assert events[-1]["payload"]["error_code"] == "CANCELLED"
    _send(ws, {"type": "stop_agent", "payload": {"run_id": "run_000000000000"}})
    assert ws_next(ws)["error_code"] == "RUN_NOT_FOUND"


def test_fourth_connection_of_a_user_is_closed_1008(api: Api) -> None:
    for _ in range(3):
        api.ws()
    fourth = api.ws(welcome=False)
    assert _close_code(fourth) == 1008
    api.ws("bob")  # other users are unaffected


def test_message_rate_limit_answers_rate_limited(api_for: ApiFactory) -> None:
    api = api_for(ws_messages_per_minute=3)
    ws = api.ws()
    for _ in range(3):
        _send(ws, {"type": "ping"})
        assert ws_next(ws)["type"] == "pong"
    _send(ws, {"type": "ping"})
    assert ws_next(ws)["error_code"] == "RATE_LIMITED"


def test_server_sends_heartbeat_pings(api_for: ApiFactory) -> None:
    api = api_for(ws_heartbeat_seconds=0.1)
    ws = api.ws()
    assert ws_next(ws, skip=())["type"] == "ping"
    _send(ws, {"type": "pong"})
    _send(ws, {"type": "ping"})
    assert ws_next(ws)["type"] == "pong"


def test_token_expiry_while_connected_closes_1008(api: Api) -> None:
    now = int(time.time())
    ws = api.ws(token=api.token("alice", exp=now + 2))
    assert _close_code(ws) == 1008
