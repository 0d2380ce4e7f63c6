"""Any spec, any server: foreign SSE specs, each against a small real server.

The corpus (``specs/*.yaml`` with the servers of :mod:`tests.foreign.sse_servers`)
covers the stream shapes chat APIs actually use: OpenAI-style data-only chunks
with a ``[DONE]`` sentinel, Anthropic-style typed ``event:`` lines, a framework
stream whose ``end`` block has no data line, a FastAPI OpenAPI 3.1 export with
no ``x-`` extension, the standard discriminator mapping, and an untyped stream.
For each: the spec lints without error, the clean server fails no contract of
``inventory`` and ``sse`` (a false alarm is a bug in chatcontract), and one
seeded fault gives exactly the finding it should.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from chatcontract.auth import EnvTokens
from chatcontract.context import RunContext, RunSettings
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import run_contracts
from chatcontract.spec import diagnose, load_spec
from chatcontract.spec.model import StreamDeadlines
from chatcontract.sse.session import OPTIONS_KEY, SSEOptions

from .sse_servers import APPS, SPECS, TOKENS, serving

FAST = SSEOptions(deadlines=StreamDeadlines(connect=2, first_event=3, idle=3, total=10), grace=0.2)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    """``specs/<name>.yaml`` and its server in ``APPS``."""
    warnings: tuple[str, ...]
    """What lint must warn about (fragments, one per expected warning)."""
    fault: str
    result_id: str
    finding: str
    """The one failure the fault must give, word for word."""


CASES = [
    Case(
        "openai_chat",
        (),
        "no-done",
        "sse/POST /v1/chat/completions/sequence:completion",
        "POST /v1/chat/completions the events ended without a terminal completion event "
        "([DONE]) after 4 completion events",
    ),
    Case(
        "anthropic_messages",
        (),
        "bad-delta",
        "sse/POST /v1/messages/events",
        'POST /v1/messages event #4 (content_block_delta) /delta/text: 5 is not of type "string"',
    ),
    Case(
        "langserve_chain",
        (),
        "no-metadata",
        "sse/POST /chain/stream/sequence:chain-run",
        "POST /chain/stream event #1 (data): the first chain-run event must be metadata",
    ),
    Case(
        "fastapi_items",
        ("itemSchema needs OpenAPI 3.2; this document is 3.1",),
        "missing-name",
        "sse/GET /items/stream/events",
        'GET /items/stream event #2 /: "name" is a required property',
    ),
    Case(
        "discriminator_jobs",
        (),
        "percent-overflow",
        "sse/POST /jobs/stream/events",
        "POST /jobs/stream event #2 (progress) /percent: 150 is greater than the maximum of 100",
    ),
    Case(
        "untyped_logs",
        ("GET /logs/stream: sequence:tail will be skipped, its events carry no type",),
        "loud-level",
        "sse/GET /logs/stream/events",
        'GET /logs/stream event #3 /level: "loud" is not one of "debug", "info" or 2 other '
        "candidates",
    ),
]
BY_NAME = {case.name: case for case in CASES}


def _run(name: str, fault: str | None) -> dict[str, ContractResult]:
    spec = load_spec(SPECS / f"{name}.yaml")
    credentials = EnvTokens({user: token for token, user in TOKENS.items()})
    with serving(APPS[name](fault)) as url:
        settings = RunSettings(connect_timeout=2.0, read_timeout=5.0)
        ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=settings)
        for secret in credentials.secrets():
            ctx.redactor.add(secret)
        ctx.cache[OPTIONS_KEY] = FAST
        results = asyncio.run(run_contracts(ctx, ["inventory", "sse"]))
    return {result.id: result for result in results}


def _failed(results: Mapping[str, ContractResult]) -> dict[str, list[str]]:
    return {
        rid: [f.message for f in result.failures] or [result.reason]
        for rid, result in results.items()
        if result.outcome is Outcome.FAILED
    }


def _warnings(results: Mapping[str, ContractResult]) -> list[str]:
    return [f.message for result in results.values() for f in result.warnings]


def test_the_corpus_covers_every_server_and_its_spec() -> None:
    assert set(APPS) == set(BY_NAME)
    assert all((SPECS / f"{name}.yaml").is_file() for name in APPS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_spec_lints_without_error(case: Case) -> None:
    """A valid OpenAPI document is never rejected; what cannot be derived is a warning."""
    where, found = diagnose(SPECS / f"{case.name}.yaml")
    errors = [d.line(where) for d in found if d.severity == "error"]
    warnings = [d.line(where) for d in found if d.severity == "warning"]
    assert errors == []
    assert len(warnings) == len(case.warnings), warnings
    for fragment, line in zip(case.warnings, warnings, strict=True):
        assert fragment in line
        assert ": warning: " in line


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_clean_server_fails_no_contract(case: Case) -> None:
    """Zero false alarms: every stream is judged, and nothing fails."""
    results = _run(case.name, None)
    assert _failed(results) == {}
    spec = load_spec(SPECS / f"{case.name}.yaml")
    for stream in spec.streams:
        label = stream.operation.label
        assert results[f"inventory/{label}"].outcome is Outcome.PASSED
        assert results[f"sse/{label}/events"].outcome is Outcome.PASSED
        for sequence in stream.sequences:
            assert results[f"sse/{label}/sequence:{sequence}"].outcome is Outcome.PASSED


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_seeded_fault_gives_exactly_its_finding(case: Case) -> None:
    """One fault, one finding: the right contract, in the right words, and nothing else."""
    results = _run(case.name, case.fault)
    assert _failed(results) == {case.result_id: [case.finding]}


def test_an_end_block_without_data_is_a_warning_and_ends_the_run() -> None:
    """LangServe's `event: end` has no data line: EventSource never dispatch it, the wire
    carries it; declared in the spec, the sequence sees it as the terminal event."""
    results = _run("langserve_chain", None)
    assert _warnings(results) == [
        "POST /chain/stream: event #4 (end) has no data line: a browser's EventSource never "
        "dispatches such a block; the spec declares end without data, so it is judged as sent"
    ]
    assert results["sse/POST /chain/stream/sequence:chain-run"].outcome is Outcome.PASSED


def test_a_done_sentinel_without_its_blank_line_is_explained() -> None:
    """`curl` shows the final `data: [DONE]`, but without a blank line no client
    dispatches it: the missing terminal fails, and a warning says why."""
    results = _run("openai_chat", "done-unterminated")
    assert _failed(results) == {
        "sse/POST /v1/chat/completions/sequence:completion": [
            "POST /v1/chat/completions the events ended without a terminal completion event "
            "([DONE]) after 4 completion events"
        ]
    }
    assert _warnings(results) == [
        "POST /v1/chat/completions: the stream ended inside an event ([DONE]) after event #4 "
        "(chat.completion.chunk): no blank line terminated it, so a browser's EventSource never "
        "dispatches it; it is not judged as an event"
    ]


def test_operations_without_x_tier_count_as_p1_by_default() -> None:
    spec = load_spec(SPECS / "fastapi_items.yaml")
    assert {(op.tier, op.tier_source) for op in spec.operations} == {("P1", "default")}
    chain = load_spec(SPECS / "langserve_chain.yaml")
    assert chain.operation("streamChain").tier_source == "spec"


def _full_run(name: str) -> dict[str, ContractResult]:
    spec = load_spec(SPECS / f"{name}.yaml")
    credentials = EnvTokens({user: token for token, user in TOKENS.items()})
    with serving(APPS[name](None)) as url:
        settings = RunSettings(connect_timeout=2.0, read_timeout=5.0, max_examples=5)
        ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=settings)
        ctx.cache[OPTIONS_KEY] = FAST
        results = asyncio.run(run_contracts(ctx))
    return {result.id: result for result in results}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_full_run_on_the_clean_server_fails_nothing(case: Case) -> None:
    """Every category, schemathesis included: what `chatcontract run` would report."""
    results = _full_run(case.name)
    assert _failed(results) == {}
    assert any(rid.startswith("rest/") for rid in results)


def test_one_operation_with_two_answers_gets_both_checked() -> None:
    """OpenAI-style: 200 is JSON, or with `stream: true` an event stream. The JSON answer
    and the errors are REST contracts, the stream is the sse category's."""
    results = _full_run("openai_chat")
    assert results["rest/POST /v1/chat/completions"].outcome is Outcome.PASSED
    assert results["sse/POST /v1/chat/completions/events"].outcome is Outcome.PASSED
