"""The token travels as the spec's security scheme says, on every request the run sends.

The server (:mod:`tests.foreign.open_servers`) takes its token in one place
only and refuses it anywhere else, so a request that still sends
``Authorization: Bearer`` where the scheme says ``X-API-Key`` (or a cookie,
or the query string) is refused, and the run shows it. A seeded schema fault
shows the reproduction presents the token the same way, as a shell variable.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping

import pytest

from chatcontract.auth import credentials_from_env
from chatcontract.context import RunContext, RunSettings
from chatcontract.presentation import BEARER, Presentation, presentation_for
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.rest.results import TOKEN_VARIABLE
from chatcontract.runner import run_contracts
from chatcontract.spec import load_spec
from chatcontract.sse.session import OPTIONS_KEY

from ..rest.servers import serving
from .open_servers import SCHEMES, TOKENS, Received, open_app, partly_open_spec
from .test_open_api import FAST, TWO_USERS

pytestmark = pytest.mark.timeout(120)

EXPECTED = {
    "bearer": BEARER,
    "token": Presentation("header", "Authorization", "token "),
    "header": Presentation("header", "X-API-Key"),
    "cookie": Presentation("cookie", "sid"),
    "query": Presentation("query", "api_key"),
}


def _run(scheme: str, url: str, categories: list[str]) -> dict[str, ContractResult]:
    spec = load_spec(partly_open_spec(scheme))
    credentials = credentials_from_env(spec, url, TWO_USERS)
    settings = RunSettings(connect_timeout=2.0, read_timeout=5.0, max_examples=5)
    ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=settings)
    for secret in credentials.secrets():
        ctx.redactor.add(secret)
    ctx.cache[OPTIONS_KEY] = FAST
    return {r.id: r for r in asyncio.run(run_contracts(ctx, categories))}


def _unexpected(results: Mapping[str, ContractResult]) -> dict[str, tuple[str, str, list[str]]]:
    return {
        rid: (r.outcome.value, r.reason, [f.message for f in r.failures])
        for rid, r in results.items()
        if r.outcome in (Outcome.FAILED, Outcome.INCONCLUSIVE)
    }


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_each_security_scheme_gives_its_own_presentation(scheme: str) -> None:
    spec = load_spec(partly_open_spec(scheme))
    assert presentation_for(spec, spec.operation("getStatus")) == EXPECTED[scheme]
    assert presentation_for(spec) == EXPECTED[scheme]


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_request_presents_the_token_as_the_scheme_says(scheme: str) -> None:
    received = Received()
    with serving(open_app(received, protected=True, scheme=scheme)) as url:
        results = _run(scheme, url, ["inventory", "rest", "sse"])
    assert _unexpected(results) == {}
    assert results["rest/GET /status"].outcome is Outcome.PASSED
    assert results["inventory/GET /status"].outcome is Outcome.PASSED
    assert results["sse/isolation"].outcome is Outcome.PASSED
    assert results["sse/POST /ask/events"].outcome is Outcome.PASSED
    # REST (schemathesis), the inventory, the control and the streams all found the
    # token where the scheme puts it.
    assert set(received.tokens["/status"]) & set(TOKENS)
    assert set(received.tokens["/ask"]) & set(TOKENS)
    if scheme != "bearer":
        sent = [h for hs in received.authorization.values() for h in hs if h]
        assert not any(h.startswith("Bearer ") for h in sent), sent


@pytest.mark.parametrize("scheme", ["token", "header", "cookie", "query"])
def test_a_reproduction_presents_the_token_the_same_way_as_a_variable(scheme: str) -> None:
    received = Received()
    with serving(open_app(received, protected=True, scheme=scheme, broken_status=True)) as url:
        results = _run(scheme, url, ["rest"])
    failed = results["rest/GET /status"]
    assert failed.outcome is Outcome.FAILED
    repro = next(f.repro for f in failed.failures if f.repro)
    assert not any(token in repro for token in TOKENS)
    assert TOKEN_VARIABLE in repro
    # The shell expands the variable: it sits in a double-quoted (or bare) word.
    words = shlex.split(repro.replace(TOKEN_VARIABLE, "EXPANDED"))
    where = {
        "token": "Authorization: token EXPANDED",
        "header": "X-API-Key: EXPANDED",
        "cookie": "sid=EXPANDED",
        "query": "api_key=EXPANDED",
    }[scheme]
    assert any(where in word for word in words), repro


def _rest(scheme: str, refusal: int, documented: int) -> dict[str, ContractResult]:
    received = Received()
    with serving(open_app(received, protected=True, scheme=scheme, refusal=refusal)) as url:
        spec = load_spec(partly_open_spec(scheme, refusal=documented))
        credentials = credentials_from_env(spec, url, TWO_USERS)
        settings = RunSettings(connect_timeout=2.0, read_timeout=5.0, max_examples=5)
        ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=settings)
        return {r.id: r for r in asyncio.run(run_contracts(ctx, ["rest"]))}


def test_a_documented_403_for_a_missing_token_is_the_contract() -> None:
    """schemathesis expects 401 for a request without ``Authorization``; an API that
    documents 403 for it (Jupyter Server does) keeps its contract by answering 403."""
    results = _rest("token", refusal=403, documented=403)
    assert _unexpected(results) == {}


def test_an_undocumented_403_for_a_missing_token_still_fails() -> None:
    results = _rest("token", refusal=403, documented=401)
    failed = _unexpected(results)
    assert "rest/GET /status" in failed
    assert any("403" in message for message in failed["rest/GET /status"][2])
