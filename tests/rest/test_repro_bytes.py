"""Reproductions send exactly the bytes that were sent, never a decoded guess."""

from __future__ import annotations

import shlex
import subprocess
from types import SimpleNamespace

from chatcontract.rest.engine import _exact_sample
from chatcontract.rest.results import TOKEN_VARIABLE, repro_command

BODY = b'{"title": "caf\xe9 \xff\\ it\'s"}'


def _recorder(body: bytes) -> SimpleNamespace:
    request = SimpleNamespace(
        method="POST",
        uri="http://127.0.0.1:8000/api/threads",
        body=body,
        headers={"Authorization": ["Bearer planted-token-0123"], "Content-Type": ["text/plain"]},
    )
    return SimpleNamespace(interactions={"c1": SimpleNamespace(request=request)})


def test_a_non_utf8_body_is_sent_byte_for_byte_through_printf() -> None:
    sample = _exact_sample(_recorder(BODY), "c1")
    assert sample is not None
    assert "\ufffd" not in sample
    printf = sample.split(" | curl ", 1)[0]
    done = subprocess.run(["bash", "-c", printf], capture_output=True, check=True, timeout=10)
    assert done.stdout == BODY
    curl = shlex.split(sample.split(" | ", 1)[1])
    assert curl[:3] == ["curl", "-X", "POST"]
    assert curl[-2:] == ["@-", "http://127.0.0.1:8000/api/threads"]


def test_the_token_becomes_the_variable_in_the_exact_repro_too() -> None:
    sample = _exact_sample(_recorder(BODY), "c1")
    assert sample is not None
    repro = repro_command(sample, {"planted-token-0123"}, lambda text: text)
    assert "planted-token-0123" not in repro
    assert f'"Authorization: Bearer {TOKEN_VARIABLE}"' in repro


def test_utf8_bodies_keep_schemathesis_own_sample() -> None:
    assert _exact_sample(_recorder(b'{"title": "caf\xc3\xa9"}'), "c1") is None
    assert _exact_sample(SimpleNamespace(interactions={}), "c1") is None
