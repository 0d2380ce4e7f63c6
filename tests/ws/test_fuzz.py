"""Frame fuzzing: generated frames are what they claim, bugs are found, shrunk and reproducible."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.reference.config import ServerConfig
from chatcontract.reference.server import running_reference
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import WebSocketDeadlines
from chatcontract.ws.frames import FrameValidator
from chatcontract.ws.fuzz import fuzz_contract
from chatcontract.ws.handshake import positive_control
from chatcontract.ws.strategies import client_frames, from_schema
from tests.ws import hostile
from tests.ws.helpers import MintedCredentials, make_ctx, reference_ctx, spec_with, target_of

WS = spec_with().websockets[0]
VALIDATOR = FrameValidator(WS)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_valid_examples_match_their_client_schema(data: st.DataObject) -> None:
    kind, frame = data.draw(client_frames(VALIDATOR, WS.client_schemas))
    if kind == "valid":
        assert VALIDATOR.check_client(frame).ok, frame


@settings(max_examples=60, deadline=None)
@given(client_frames(VALIDATOR, WS.client_schemas))
def test_malformed_variants_mostly_break_the_schema(example: tuple[str, Any]) -> None:
    """Every mutation except dropping an optional field breaks the frame's schema."""
    kind, frame = example
    if kind in ("wrong-type", "extra-field", "unknown-type", "not-an-object"):
        assert not VALIDATOR.check_client(frame).ok, (kind, frame)


@given(from_schema({"type": "string", "pattern": "^thread_[A-Za-z0-9]{6,64}$"}))
def test_patterned_strings_match_their_pattern(value: str) -> None:
    assert value.startswith("thread_")
    assert 13 <= len(value) <= 71


async def _fuzz(url: str, **settings: Any) -> ContractResult:
    ctx = make_ctx(url, MintedCredentials(ServerConfig()), target_is_reference=False, **settings)
    target = target_of(ctx)
    _, access = await positive_control(target)
    return await fuzz_contract(target, access)


async def _against_victim(**settings: Any) -> tuple[ContractResult, float]:
    async with hostile.hostile_server(hostile.fuzz_victim("message_id")) as url:
        started = time.monotonic()
        result = await _fuzz(url, **settings)
        return result, time.monotonic() - started


def test_fuzzing_finds_shrinks_and_reports_a_1011_bug() -> None:
    result, elapsed = asyncio.run(_against_victim(max_examples=60, seed=11))
    assert result.outcome is Outcome.FAILED
    finding = result.failures[0]
    assert "closed the connection with 1011 (internal error)" in finding.message
    repro = finding.repro or ""
    assert "--seed 11" in repro
    assert '"message_id"' in repro.split("then send:", 1)[1]
    assert finding.transcript
    assert elapsed < 15


def test_the_same_seed_finds_the_same_minimal_frame() -> None:
    first, _ = asyncio.run(_against_victim(max_examples=60, seed=5))
    second, _ = asyncio.run(_against_victim(max_examples=60, seed=5))
    sent = [(r.failures[0].repro or "").split("then send:", 1)[1] for r in (first, second)]
    assert sent[0] == sent[1]


def test_the_time_budget_bounds_a_fuzz_run() -> None:
    result, elapsed = asyncio.run(_against_victim(max_examples=10_000, seed=3, time_budget=1.0))
    assert elapsed < 5
    assert result.outcome is Outcome.FAILED


@pytest.mark.slow
def test_long_fuzz_of_the_clean_reference_finds_nothing() -> None:
    with running_reference() as server:
        ctx = reference_ctx(server, max_examples=500, seed=2025)
        ctx.spec = spec_with(WebSocketDeadlines(handshake=5, first_frame=5, idle=10, total=120))
        target = target_of(ctx)

        async def main() -> ContractResult:
            _, access = await positive_control(target)
            return await fuzz_contract(target, access)

        result = asyncio.run(main())
    assert result.outcome is Outcome.PASSED, [f.line() for f in result.findings]
    assert int(result.details["examples"]) >= 100
    assert int(result.details["rate_limited"]) >= 1, "100 messages a minute per connection"
