"""The sans-I/O pieces: forged tokens, frame verdicts, close codes, transcripts, carriers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings

from chatcontract.redact import Redactor
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.tokens import TokenError, mint_token, verify_token
from chatcontract.spec import TokenCarrier, load_spec
from chatcontract.ws.client import present
from chatcontract.ws.frames import (
    MAX_SHOWN,
    FrameValidator,
    Transcript,
    close_code_problem,
    render,
    scope_of,
    with_value,
)
from chatcontract.ws.outgoing import fresh_flow_frame
from chatcontract.ws.strategies import MUTATIONS, client_frames, fuzzed_mutations
from chatcontract.ws.tokens import (
    FORGERIES,
    b64url,
    bad_signature,
    claims_of,
    header_of,
    malformed,
    resign,
    unsigned,
)
from tests.ws.helpers import spec_with

CONFIG = ServerConfig()
WS = spec_with().websockets[0]
CLAIMS = {"iss": "chat-reference", "aud": "chat-api"}


def _token() -> str:
    return mint_token("alice", CONFIG)


def test_the_unspoiled_token_verifies() -> None:
    assert verify_token(_token(), CONFIG).user == "alice"


@pytest.mark.parametrize("forgery", FORGERIES, ids=lambda f: f.slug)
def test_every_forgery_is_refused_by_a_correct_verifier(forgery: object) -> None:
    """Each row's token really is bad, so a pass means the server refused a bad token."""
    from chatcontract.ws.tokens import Forgery

    assert isinstance(forgery, Forgery)
    forged = forgery.make(_token(), CONFIG.signing_key, CLAIMS, time.time())
    with pytest.raises(TokenError):
        verify_token(forged, CONFIG)


def test_resign_without_changes_is_the_key_control() -> None:
    assert verify_token(resign(_token(), CONFIG.signing_key), CONFIG).user == "alice"


def test_forgeries_keep_the_claims_and_change_one_thing() -> None:
    token = _token()
    assert claims_of(unsigned(token, "nOnE")) == claims_of(token)
    assert header_of(unsigned(token, "nOnE"))["alg"] == "nOnE"
    assert unsigned(token).endswith(".")
    assert claims_of(bad_signature(token)) == claims_of(token)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            bad_signature(token), CONFIG.signing_key, algorithms=["HS256"], audience="chat-api"
        )
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter"):
        header_of(malformed(token))
    expired = claims_of(resign(token, "k" * 32, exp=1))
    assert expired == {**claims_of(token), "exp": 1}


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (1000, None),
        (1008, None),
        (1011, None),
        (4000, None),
        (1005, "must never be sent"),
        (1006, "must never be sent"),
        (1015, "must never be sent"),
        (1004, "reserved"),
        (2999, "reserved"),
        (999, "reserved"),
        (1010, "clients only"),
    ],
)
def test_close_codes(code: int, problem: str | None) -> None:
    found = close_code_problem(code)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_server_frames_are_judged_by_their_discriminator() -> None:
    validator = FrameValidator(WS)
    good = {"type": "pong"}
    assert validator.check_server(good).ok
    drift = {"type": "error", "error_code": "NOPE", "message": "x"}
    check = validator.check_server(drift)
    assert check.type == "error"
    assert check.problems[0].startswith("/error_code")
    assert "not a server frame type" in validator.check_server({"type": "start_agent"}).problems[0]
    assert "not JSON" in validator.check_server_text("{nope")[1].problems[0]
    assert "JSON object" in validator.check_server([1]).problems[0]


def test_transcripts_redact_on_entry_cut_big_frames_and_keep_head_and_tail() -> None:
    token = _token()
    redactor = Redactor([token])
    clock = iter(float(i) for i in range(1000))
    transcript = Transcript(redactor, clock=lambda: next(clock), limit=10)
    transcript.sent(f"Authorization: Bearer {token}")
    transcript.received("x" * 10_000)
    for i in range(20):
        transcript.note(f"note {i}")
    entries = transcript.entries()
    assert token not in entries[0].content
    assert entries[1].content.endswith("(10000 bytes)")
    assert len(entries[1].content) < MAX_SHOWN + 30
    assert any("entries left out" in e.content for e in entries)
    assert entries[-1].content == "note 19"
    assert render(b"\xff\xfe") == repr(b"\xff\xfe")


def test_carriers_put_the_token_where_the_spec_says() -> None:
    header, subprotocol = WS.carriers
    (query,) = WS.forbidden_carriers
    url = "ws://127.0.0.1:1/ws"
    assert present(url, header, "T0KEN").headers == (("Authorization", "Bearer T0KEN"),)
    sub = present(url, subprotocol, "T0KEN")
    assert sub.subprotocols == ("jwt-auth", "jwt." + b64url(b"T0KEN"))
    assert sub.expected_subprotocol == "jwt-auth"
    assert present(url, query, "a+b").url == url + "?token=a%2Bb"
    assert present(url, None, None).label == "no token"
    cookie = TokenCarrier(kind="cookie", name="session")
    assert present(url, cookie, "T").headers == (("Cookie", "session=T"),)


# --- the grown language: typed anywhere, scoped answers, fresh frames -----------------------

KERNEL_SPEC = load_spec(
    Path(__file__).resolve().parents[1] / "foreign" / "specs" / "kernel_full.yaml"
)
KERNEL_WS = KERNEL_SPEC.websockets[0]
KERNEL_FRAMES = FrameValidator(KERNEL_WS)


def test_with_value_writes_at_a_pointer_making_the_objects_on_the_way() -> None:
    assert with_value({}, "/header/msg_type", "status") == {"header": {"msg_type": "status"}}
    assert with_value({"type": "a"}, "type", "b") == {"type": "b"}
    original = {"header": {"msg_id": "1"}}
    assert with_value(original, "/header/msg_id", "2") == {"header": {"msg_id": "2"}}
    assert original == {"header": {"msg_id": "1"}}


def test_frames_are_typed_at_the_discriminator_pointer() -> None:
    frame = {"header": {"msg_type": "status"}}
    assert KERNEL_FRAMES.kind_of(frame) == "status"
    check = KERNEL_FRAMES.check_server({"header": {}})
    assert check.problems == ("/header/msg_type: missing or not a string",)


def test_scope_follows_the_correlation_then_the_channel() -> None:
    execute = KERNEL_WS.flows[1]
    sent = {"header": {"msg_id": "m1"}}

    def reply(parent: str | None, channel: str) -> dict[str, Any]:
        return {"parent_header": {"msg_id": parent} if parent else {}, "channel": channel}

    assert scope_of(execute, sent, reply("m1", "iopub")) == "expected"
    assert scope_of(execute, sent, reply("m1", "shell")) == "other-channel"
    assert scope_of(execute, sent, reply("m0", "iopub")) == "unsolicited"
    assert scope_of(execute, sent, reply(None, "iopub")) == "unsolicited"


def test_every_send_gets_new_unique_values_its_schema_accepts() -> None:
    flow = KERNEL_WS.flows[1]
    first = fresh_flow_frame(KERNEL_WS, KERNEL_FRAMES, flow)
    second = fresh_flow_frame(KERNEL_WS, KERNEL_FRAMES, flow)
    assert KERNEL_FRAMES.check_client(first).ok
    assert KERNEL_FRAMES.check_client(second).ok
    assert first["header"]["msg_id"] != second["header"]["msg_id"]
    assert first["header"]["date"] != second["header"]["date"]
    assert first["content"] == {"code": "1 + 1", "silent": False}


def test_a_flow_without_an_example_sends_a_frame_generated_from_its_all_of_schema() -> None:
    info = KERNEL_WS.flows[0]
    assert info.example is None
    frame = fresh_flow_frame(KERNEL_WS, KERNEL_FRAMES, info)
    assert KERNEL_FRAMES.check_client(frame).ok
    assert frame["header"]["msg_type"] == "kernel_info_request"


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(client_frames(KERNEL_FRAMES, KERNEL_WS.client_schemas))
def test_fuzz_frames_are_drawn_from_all_of_schemas(example: tuple[str, Any]) -> None:
    """Hypothesis used to find these schemas unsatisfiable: schemathesis draws them now."""
    kind, frame = example
    if kind == "valid":
        assert KERNEL_FRAMES.check_client(frame).ok


def test_mutations_a_declared_close_covers_are_left_to_the_hygiene_rows() -> None:
    graphql = load_spec(
        Path(__file__).resolve().parents[1] / "foreign" / "specs" / "graphql_ws.yaml"
    ).websockets[0]
    validator = FrameValidator(graphql)
    assert fuzzed_mutations(validator) == ()
    assert validator.handshake_types == {"connection_init"}
    assert fuzzed_mutations(FrameValidator(WS)) == MUTATIONS
