"""APIs we did not design, without I/O: any token, any carrier, URLs with parameters.

Forged tokens keep the real one's shape; repro lines expand the token variable
in a real shell and nothing else; REST calls carry the token as the spec's
security scheme says; links find the object a URL needs and the DELETE that
removes it; a stall is remembered by kind.
"""

from __future__ import annotations

import dataclasses
import shutil
import string
import subprocess
from typing import Any

import pytest

from chatcontract.links import delete_for, fill_path, path_names, producers_of
from chatcontract.presentation import carried
from chatcontract.runner import build_plan
from chatcontract.spec import Spec, TokenCarrier, load_spec
from chatcontract.ws.client import Presented
from chatcontract.ws.evidence import repro
from chatcontract.ws.stalls import Stalls
from chatcontract.ws.tokens import FORGERIES, garbled, is_jwt, unissued
from tests.foreign.sse_servers import SPECS
from tests.ws.helpers import make_ctx, spec_with, target_of

KERNEL = load_spec(SPECS / "kernel.yaml")
HEX = "5f0c4e9a2b7d41c8a3e6f9b0d2c4e6a8b1d3f5a7c9e0b2d4"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
OPAQUE = "tok-alice-7F3a9c2e41_x"


def _shape(token: str) -> list[str]:
    def kind(ch: str) -> str:
        if set(token) <= set(string.hexdigits):
            return "hex"
        for name, chars in (
            ("digit", string.digits),
            ("lower", string.ascii_lowercase),
            ("upper", string.ascii_uppercase),
        ):
            if ch in chars:
                return name
        return ch

    return [kind(ch) for ch in token]


@pytest.mark.parametrize("token", [HEX, JWT, OPAQUE, "a", "0123"])
@pytest.mark.parametrize("forge", [garbled, unissued])
def test_forged_plain_tokens_keep_the_real_ones_shape(token: str, forge: Any) -> None:
    """Same length, same alphabet per character, separators in place: only the value is
    wrong, so a refusal can only be about the value."""
    for _ in range(20):
        forged = forge(token)
        assert forged != token
        assert _shape(forged) == _shape(token)


def test_a_garbled_token_keeps_most_of_the_real_one() -> None:
    forged = garbled(HEX)
    assert forged[:8] == HEX[:8]
    assert 1 <= sum(a != b for a, b in zip(forged, HEX, strict=True)) <= 4


def test_only_jwts_are_jwts() -> None:
    assert is_jwt(JWT)
    assert not is_jwt(HEX)
    assert not is_jwt(OPAQUE)
    assert not is_jwt("a.b.c")
    generic = [f.slug for f in FORGERIES if not f.jwt]
    assert generic == ["garbled", "unissued"]


def test_every_carrier_plans_the_rows_for_any_token() -> None:
    ids = {c.id for c in build_plan(KERNEL).contracts}
    prefix = "websocket/GET /api/kernels/{kernel_id}/channels/auth/"
    for carrier in ("header", "cookie"):
        for row in ("garbled", "unissued", "alg-none", "expired"):
            assert f"{prefix}{carrier}/{row}" in ids


CARRIERS = [
    (TokenCarrier("header", name="Authorization", scheme="token"), "Authorization: token SECRET"),
    (TokenCarrier("header", name="X-Api-Key"), "X-Api-Key: SECRET"),
    (TokenCarrier("cookie", name="session"), "Cookie: session=SECRET"),
    (
        TokenCarrier(
            "subprotocol", protocol="jwt-auth", token_prefix="jwt.", encoding="base64url-nopad"
        ),
        "jwt-auth, jwt.U0VDUkVU",
    ),
    (TokenCarrier("query", name="token"), "ws://h:1/k/%7Bx%7D/c?a=$b&token=SECRET"),
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("carrier", "expanded"), CARRIERS, ids=lambda c: str(c)[:30])
def test_repro_lines_expand_the_token_variable_and_nothing_else(
    carrier: TokenCarrier, expanded: str
) -> None:
    """A shell must put the token where the carrier says (single quotes never expand it),
    and keep every other character as written."""
    target = target_of(make_ctx("http://127.0.0.1:9", None))
    url = "ws://h:1/k/%7Bx%7D/c?a=$b"
    token_url = f"{url}&token=real" if carrier.kind == "query" else url
    text = repro(target, presented=Presented(carrier.kind, token_url, carrier=carrier))
    line = text.splitlines()[1]
    assert line.startswith("websocat ")
    assert "real" not in line
    words = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + line.removeprefix("websocat ")],
        capture_output=True,
        text=True,
        env={"CHATCONTRACT_TOKEN": "SECRET", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.splitlines()
    assert expanded in words
    if carrier.kind != "query":
        assert url in words


def _scheme_spec(scheme: dict[str, Any]) -> Spec:
    document = KERNEL.document
    changed = dict(document)
    changed["components"] = {**document["components"], "securitySchemes": {"token": scheme}}
    return load_spec(changed)


@pytest.mark.parametrize(
    ("scheme", "header"),
    [
        ({"type": "http", "scheme": "bearer"}, ("Authorization", "Bearer T")),
        ({"type": "http", "scheme": "token"}, ("Authorization", "token T")),
        ({"type": "apiKey", "in": "header", "name": "X-Api-Key"}, ("X-Api-Key", "T")),
        # An API-key header the WebSocket takes with a scheme: the same scheme on REST.
        ({"type": "apiKey", "in": "header", "name": "authorization"}, ("authorization", "token T")),
        ({"type": "apiKey", "in": "cookie", "name": "session"}, ("Cookie", "session=T")),
        (
            {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/t", "scopes": {}}}},
            ("Authorization", "Bearer T"),
        ),
    ],
)
def test_rest_calls_carry_the_token_as_the_security_scheme_says(
    scheme: dict[str, Any], header: tuple[str, str]
) -> None:
    spec = _scheme_spec(scheme)
    op = spec.operation("startKernel")
    assert carried(spec, op, "T") == (dict([header]), {})


def test_an_open_operation_or_no_token_sends_no_credentials() -> None:
    op = dataclasses.replace(KERNEL.operation("startKernel"), security=())
    assert carried(KERNEL, op, "T") == ({}, {})
    assert carried(KERNEL, KERNEL.operation("startKernel"), None) == ({}, {})


def test_links_find_what_a_websocket_url_needs_and_the_delete_that_removes_it() -> None:
    channels = KERNEL.websockets[0].operation
    assert path_names(channels.path) == ["kernel_id"]
    ((producer, link),) = producers_of(KERNEL, channels, "kernel_id")
    assert (producer.label, link.expression) == ("POST /api/kernels", "$response.body#/id")
    remove = delete_for(KERNEL, producer, {"kernel_id": "k 1"})
    assert remove is not None
    assert remove.label == "DELETE /api/kernels/{kernel_id}"
    assert fill_path(remove.path, {"kernel_id": "k 1"}) == "/api/kernels/k%201"
    assert delete_for(KERNEL, producer, {}) is None


def test_the_reference_thread_is_deleted_through_the_link_to_delete_thread() -> None:
    spec = spec_with()
    remove = delete_for(spec, spec.operation("createThread"), {"thread_id": "thread_1"})
    assert remove is not None
    assert remove.operation_id == "deleteThread"


def test_a_stall_blocks_later_waits_by_kind() -> None:
    stalls = Stalls()
    assert stalls.blocks(run=True) is None
    stalls.record("run", "ws/flow:a", "no frame for 2 s (idle deadline)")
    assert stalls.blocks() is None, "a stalled run does not stop single answers"
    assert stalls.blocks(run=True) == (
        "the endpoint stalled in ws/flow:a: no frame for 2 s (idle deadline)"
    )
    stalls.record("answer", "ws/flow:b", "no frame within 1 s")
    stalls.record("answer", "ws/flow:c", "later stalls add nothing")
    assert stalls.blocks() == "the endpoint stalled in ws/flow:b: no frame within 1 s"
