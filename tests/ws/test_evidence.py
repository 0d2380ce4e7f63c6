"""Evidence: a planted token never leaks, and every failure can be reproduced by hand."""

from __future__ import annotations

import asyncio
from typing import Any

from chatcontract.reference.config import ServerConfig
from chatcontract.reference.server import running_reference
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.ws.contracts import check_websocket
from chatcontract.ws.tokens import b64url
from tests.ws import hostile
from tests.ws.helpers import MintedCredentials, make_ctx, spec_with, target_of

PLANTED_JTI = "planted0secret0jti0value"


def _all_text(results: list[ContractResult]) -> str:
    parts: list[str] = []
    for result in results:
        parts += [result.name, result.reason, repr(result.details)]
        for finding in result.findings:
            parts += [finding.message, finding.location, finding.repro or ""]
            parts += [entry.content for entry in finding.transcript]
    return "\n".join(parts)


async def _collect(ctx: Any) -> list[ContractResult]:
    # check_websocket directly, not run_contracts: the runner's own redaction pass
    # must not be what keeps the tokens out.
    return [r async for r in check_websocket(target_of(ctx))]


def _assert_no_token(results: list[ContractResult], credentials: MintedCredentials) -> None:
    text = _all_text(results)
    assert credentials.given, "the checks asked for tokens"
    for token in credentials.given:
        _, payload, signature = token.split(".")
        for secret in (token, b64url(token.encode()), payload, signature):
            assert secret not in text
    assert PLANTED_JTI not in text


def test_planted_tokens_never_appear_in_findings_transcripts_or_repros() -> None:
    """Faults that accept tokens everywhere (query string included) make every handshake,
    with its tokens, part of the evidence; none of it may carry a token."""
    faults = frozenset({"ws-accepts-no-token", "ws-accepts-query-token", "accepts-alg-none"})
    with running_reference(faults=faults) as server:
        credentials = MintedCredentials(server.config, jti=PLANTED_JTI)
        ctx = make_ctx(server.url, credentials, signing_key=server.config.signing_key)
        results = asyncio.run(_collect(ctx))
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    assert {r.id.rsplit("/ws/", 1)[1] for r in failed} >= {"auth/no-token", "auth/query-token"}
    assert all(f.transcript and f.repro for r in failed for f in r.failures)
    _assert_no_token(results, credentials)
    query = next(r for r in failed if r.id.endswith("auth/query-token"))
    assert "token=$CHATCONTRACT_TOKEN" in (query.failures[0].repro or "")
    assert any("token=<redacted>" in e.content for e in query.failures[0].transcript)


def test_subprotocol_tokens_are_redacted_from_the_handshake_evidence() -> None:
    with running_reference(faults=frozenset({"accepts-alg-none"})) as server:
        credentials = MintedCredentials(server.config)
        # No expiry row: it only waits out a short-lived token, and the test above covers it.
        ctx = make_ctx(
            server.url,
            credentials,
            spec=spec_with(expiry_close_code=None),
            signing_key=server.config.signing_key,
        )
        results = asyncio.run(_collect(ctx))
    row = next(r for r in results if r.id.endswith("auth/subprotocol/alg-none"))
    handshake = row.failures[0].transcript[0].content
    assert "Sec-WebSocket-Protocol: jwt-auth, jwt.<redacted>" in handshake
    assert '--protocol "jwt-auth, jwt.$(printf %s $CHATCONTRACT_TOKEN' in (
        row.failures[0].repro or ""
    )
    _assert_no_token(results, credentials)


def test_fuzz_repro_names_the_seed_the_frame_and_a_placeholder_token() -> None:
    async def main() -> tuple[list[ContractResult], MintedCredentials]:
        async with hostile.hostile_server(hostile.drops_mid_conversation) as url:
            credentials = MintedCredentials(ServerConfig(), jti=PLANTED_JTI)
            ctx = make_ctx(url, credentials, target_is_reference=False, seed=1234)
            return await _collect(ctx), credentials

    results, credentials = asyncio.run(main())
    fuzz = next(r for r in results if r.id.endswith("/fuzz"))
    repro = fuzz.failures[0].repro or ""
    assert "chatcontract run --category websocket --seed 1234 --base-url http://127.0.0.1:" in repro
    # Double quotes: the shell expands the variable (single quotes would send it literally).
    assert 'websocat -H "Authorization: Bearer $CHATCONTRACT_TOKEN"' in repro
    assert "then send: {" in repro
    _assert_no_token(results, credentials)


def test_bytes_are_reproduced_exactly_never_as_replacement_characters() -> None:
    """A frame with invalid UTF-8 is shown as a printf argument bash turns back into it."""
    import subprocess

    from chatcontract.ws.evidence import _printf_escaped

    sent = b'{"type":"user_message","content":"\xc3\x28 back\\slash it\'s \xff"}'
    argument = _printf_escaped(sent)
    assert "\ufffd" not in argument
    done = subprocess.run(
        ["bash", "-c", f"printf '%b' {argument}"], capture_output=True, check=True, timeout=10
    )
    assert done.stdout == sent
