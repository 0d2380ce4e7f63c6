"""A WebSocket API chatcontract did not design: a notebook-kernel gateway (issue #12, part 1).

Measured on a real gateway, every one of these was a false alarm or a gap: the
channel's ``{kernel_id}`` sent literally (and its 404 called rejected
credentials), an auth matrix that only forged JWTs (eight rows inconclusive
for an opaque token, none sending a wrong plain token), a session cookie no
carrier, and a kernel started on every run and never shut down. The server
(:mod:`tests.foreign.ws_servers`) records what it was sent, so each is
checked on the wire.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from chatcontract.auth import Anonymous, EnvTokens, credentials_from_env, no_auth_reason
from chatcontract.context import Credentials, RunContext, RunSettings
from chatcontract.links import PLACEHOLDER
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import build_plan, run_contracts
from chatcontract.spec import Spec, diagnose, load_spec

from ..rest.servers import serving
from .sse_servers import SPECS
from .ws_servers import KERNEL_TOKEN, Seen, kernel_app

SPEC_PATH = SPECS / "kernel.yaml"
WS = "websocket/GET /api/kernels/{kernel_id}/channels/"
JWT_ROWS = (
    "malformed",
    "bad-signature",
    "alg-none",
    "alg-none-mixed-case",
    "expired",
    "nbf-future",
    "wrong-iss",
    "wrong-aud",
)
TOKEN_ROWS = ("garbled", "unissued")
CHANNEL = re.compile(r"^/api/kernels/([0-9a-f-]{36})/channels(\?.*)?$")


def _document() -> dict[str, Any]:
    loaded = yaml.safe_load(SPEC_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _run(
    *,
    fault: str | None = None,
    spec: Spec | None = None,
    credentials: Credentials | None = None,
    open_api: bool = False,
    before: Callable[[Seen], None] | None = None,
    categories: tuple[str, ...] = ("inventory", "websocket"),
    **settings: Any,
) -> tuple[dict[str, ContractResult], Seen]:
    """inventory + websocket against a fresh gateway; results by id, and what it saw."""
    spec = spec or load_spec(SPEC_PATH)
    credentials = credentials or EnvTokens({"alice": KERNEL_TOKEN})
    seen = Seen()
    if before is not None:
        before(seen)
    chosen = RunSettings(
        **{"connect_timeout": 2.0, "read_timeout": 5.0, "max_examples": 10, **settings}
    )
    with serving(kernel_app(seen, fault, open_api=open_api)) as url:
        ctx = RunContext(spec=spec, base_url=url, credentials=credentials, settings=chosen)
        for secret in credentials.secrets():
            ctx.redactor.add(secret)
        results = asyncio.run(run_contracts(ctx, list(categories)))
    return {r.id: r for r in results}, seen


def _failed(results: Mapping[str, ContractResult]) -> dict[str, list[str]]:
    return {
        rid: [f.line() for f in r.failures] or [r.reason]
        for rid, r in results.items()
        if r.outcome is Outcome.FAILED
    }


def _outcomes(results: Mapping[str, ContractResult], *suffixes: str) -> dict[str, Outcome]:
    return {s: results[WS + s].outcome for s in suffixes}


def _ws(results: Mapping[str, ContractResult]) -> list[ContractResult]:
    return [r for r in results.values() if r.id.startswith(WS)]


def test_the_kernel_spec_lints_without_a_problem() -> None:
    where, found = diagnose(SPEC_PATH)
    assert [d.line(where) for d in found] == []


def test_clean_gateway_fails_no_contract() -> None:
    """Zero false alarms: the channel is found, opened with an opaque token, judged."""
    results, _ = _run()
    assert _failed(results) == {}
    passed = {
        "auth/positive-control",
        "auth/no-token",
        "auth/query-token",
        "auth/origin-foreign",
        "auth/origin-null",
        "frames/welcome",
        "flow:kernel-info",
        "flow:execute",
        "fuzz",
        "frames/server",
    }
    passed |= {f"auth/{carrier}/{row}" for carrier in ("header", "cookie") for row in TOKEN_ROWS}
    assert _outcomes(results, *passed) == dict.fromkeys(passed, Outcome.PASSED)
    assert not [r.id for r in _ws(results) if r.outcome is Outcome.INCONCLUSIVE]


def test_opaque_tokens_get_their_rows_and_the_jwt_rows_are_skipped() -> None:
    results, seen = _run(categories=WS_ONLY)
    for carrier in ("header", "cookie"):
        for row in JWT_ROWS:
            result = results[f"{WS}auth/{carrier}/{row}"]
            assert result.outcome is Outcome.SKIPPED, result
            assert result.reason == "the credentials are not JWTs"
    names = {results[f"{WS}auth/header/{row}"].name for row in TOKEN_ROWS}
    assert names == {
        "garbled tokens are refused (header)",
        "well-formed tokens the server never issued are refused (header)",
    }
    # Every token went as the spec says: `Authorization: token <hex>` (or the session cookie).
    assert {scheme for url, scheme in seen.handshakes if url in _checker_urls(seen)} == {
        "token",
        None,
    }


WS_ONLY = ("websocket",)
"""The inventory's probe handshake carries the declared ``token`` scheme too (like every
request of the run), so tests about the WebSocket checks' URLs run them without the
inventory's own kernel."""


def _checker_urls(seen: Seen) -> list[str]:
    """The channel URLs a ``WS_ONLY`` run's WebSocket checks connected to (the route's
    inventory entry, run as their prerequisite, probes it with a placeholder id)."""
    return [url for url, _scheme in seen.handshakes if PLACEHOLDER not in url]


def test_the_channel_url_is_filled_with_a_kernel_made_for_it_and_shut_down_after() -> None:
    """The template never reaches the server from the WebSocket checks; the kernel they
    start through the spec's link is shut down through the spec's DELETE at the end."""
    results, seen = _run(categories=WS_ONLY)
    urls = _checker_urls(seen)
    assert len(urls) >= 10
    matched = [CHANNEL.match(u) for u in urls]
    assert all(matched), [u for u, m in zip(urls, matched, strict=True) if m is None]
    kernels = {m.group(1) for m in matched if m is not None}
    assert len(kernels) == 1
    assert kernels <= set(seen.started)
    assert seen.kernels == {}, "every kernel started by the run was shut down"
    assert kernels <= set(seen.shut_down)
    last = _ws(results)[-1]
    (kernel,) = kernels
    assert last.details["cleaned up"] == f"DELETE /api/kernels/{kernel}"
    assert "not cleaned up" not in last.details


def test_the_inventory_never_sends_the_channel_template_either() -> None:
    _, seen = _run()
    assert not [url for url, _ in seen.handshakes if "{" in url or "%7B" in url]


def test_one_seeded_fault_fails_exactly_its_row() -> None:
    """A header check that compares only a prefix accepts a garbled token: that row fails,
    the cookie's garbled row and the never-issued rows still pass."""
    results, _ = _run(fault="garbled-header")
    failed = _failed(results)
    assert list(failed) == [f"{WS}auth/header/garbled"]
    (message,) = failed[f"{WS}auth/header/garbled"]
    assert "accepted the handshake (101) instead of HTTP 403 and sent a 'status' frame" in message
    assert "user_id" not in message
    finding = results[f"{WS}auth/header/garbled"].failures[0]
    assert 'websocat -H "Authorization: token $CHATCONTRACT_TOKEN"' in (finding.repro or "")
    assert KERNEL_TOKEN not in (finding.repro or "")
    assert all(KERNEL_TOKEN not in entry.content for entry in finding.transcript)


def test_a_link_to_another_operation_still_names_the_kernel() -> None:
    """Specs often link the create to ``getKernel`` only: the parameter's name is enough."""
    document = _document()
    links = document["paths"]["/api/kernels"]["post"]["responses"]["201"]["links"]
    del links["KernelChannels"]
    results, seen = _run(spec=load_spec(document))
    assert _failed(results) == {}
    assert results[f"{WS}flow:execute"].outcome is Outcome.PASSED
    assert seen.kernels == {}


def test_a_url_nothing_can_fill_is_skipped_naming_the_parameter() -> None:
    document = _document()
    del document["paths"]["/api/kernels"]["post"]["responses"]["201"]["links"]
    results, seen = _run(spec=load_spec(document), categories=WS_ONLY)
    rows = _ws(results)
    assert {r.outcome for r in rows} == {Outcome.SKIPPED}
    reason = rows[0].reason
    assert "needs a value for its path parameter 'kernel_id'" in reason
    assert "path_parameters" in reason
    assert all(r.reason == reason for r in rows)
    assert _checker_urls(seen) == []


def test_a_refused_creation_leaves_the_contracts_inconclusive_not_skipped() -> None:
    """The spec's way of making a kernel was tried and refused: that is no configuration gap."""
    results, seen = _run(fault="start-fails", categories=WS_ONLY)
    rows = _ws(results)
    assert {r.outcome for r in rows} == {Outcome.INCONCLUSIVE}
    assert "(POST /api/kernels answered HTTP 503)" in rows[0].reason
    assert _checker_urls(seen) == []


def test_a_setting_fills_the_url_and_nothing_is_made_or_deleted() -> None:
    mine = str(uuid.uuid4())

    def existing(seen: Seen) -> None:
        seen.kernels[mine] = {"name": "python3", "execution_state": "idle", "connections": 0}

    results, seen = _run(path_parameters={"kernel_id": mine}, before=existing, categories=WS_ONLY)
    assert _failed(results) == {}
    assert results[f"{WS}flow:execute"].outcome is Outcome.PASSED
    assert f"/api/kernels/{mine}/channels" in _checker_urls(seen)
    assert mine in seen.kernels, "a kernel the run did not make is never shut down"
    assert "cleaned up" not in _ws(results)[-1].details


def test_an_example_fills_the_url_when_no_link_makes_a_kernel() -> None:
    """The example names no kernel this server has: no such resource, inconclusive."""
    document = _document()
    del document["paths"]["/api/kernels"]["post"]["responses"]["201"]["links"]
    example = "0b7c3f6e-5d2a-4e8b-9c1f-2a3b4c5d6e7f"
    document["components"]["parameters"]["KernelId"]["example"] = example
    results, seen = _run(spec=load_spec(document), categories=WS_ONLY)
    assert _failed(results) == {}
    assert _checker_urls(seen)
    assert all(url.startswith(f"/api/kernels/{example}/channels") for url in _checker_urls(seen))
    control = results[f"{WS}auth/positive-control"]
    assert control.outcome is Outcome.INCONCLUSIVE
    assert control.reason.endswith("(kernel_id from the spec's example)")


def test_a_404_at_the_handshake_is_no_such_resource_never_rejected_credentials() -> None:
    nowhere = str(uuid.uuid4())
    results, _ = _run(path_parameters={"kernel_id": nowhere})
    assert _failed(results) == {}
    control = results[f"{WS}auth/positive-control"]
    assert control.outcome is Outcome.INCONCLUSIVE
    assert control.reason.startswith("no such resource: the handshake to ws://127.0.0.1:")
    assert f"/api/kernels/{nowhere}/channels answered HTTP 404" in control.reason
    assert control.reason.endswith("(kernel_id from the path_parameters setting)")
    assert "credentials rejected" not in control.reason
    no_token = results[f"{WS}auth/no-token"]
    assert no_token.outcome is Outcome.INCONCLUSIVE
    assert no_token.reason == control.reason


def test_what_could_not_be_shut_down_is_listed() -> None:
    results, seen = _run(fault="shutdown-fails", categories=WS_ONLY)
    last = _ws(results)[-1]
    (kernel,) = {m.group(1) for m in map(CHANNEL.match, _checker_urls(seen)) if m}
    assert kernel in seen.kernels
    assert last.details["not cleaned up"] == (
        f"POST /api/kernels (kernel_id={kernel}): DELETE /api/kernels/{kernel} answered HTTP 500"
    )
    assert not [rid for rid in _failed(results) if rid.startswith(WS)]


def _open_spec() -> Spec:
    document = _document()
    document["security"] = []
    del document["components"]["securitySchemes"]
    return load_spec(document)


def test_an_open_gateway_is_checked_without_credentials() -> None:
    """``security: []``: no token is asked for or sent, yet the channel is fully judged."""
    spec = _open_spec()
    credentials = credentials_from_env(spec, "http://127.0.0.1:9", {})
    assert isinstance(credentials, Anonymous)
    results, seen = _run(spec=spec, credentials=credentials, open_api=True)
    assert _failed(results) == {}
    reason = no_auth_reason(spec.operation("kernelChannels"))
    auth = [r for r in _ws(results) if "/auth/" in r.id]
    assert {(r.outcome, r.reason) for r in auth} == {(Outcome.SKIPPED, reason)}
    judged = ("frames/welcome", "flow:kernel-info", "flow:execute", "fuzz", "frames/server")
    assert _outcomes(results, *judged) == dict.fromkeys(judged, Outcome.PASSED)
    assert {scheme for _, scheme in seen.handshakes} <= {None, "Bearer"}
    assert seen.kernels == {}


def test_an_origin_rule_scoped_to_cookies_is_checked_with_the_cookie() -> None:
    """The gateway checks Origin for cookie logins only: the rows present the cookie, a
    token header from anywhere is no finding, and an unchecked cookie login is."""
    spec = load_spec(SPEC_PATH)
    names = {r.id: r.name for r in _ws(_run()[0])}
    assert names[f"{WS}auth/origin-foreign"] == (
        "handshakes from a foreign Origin are refused (cookie session)"
    )
    results, _ = _run(spec=spec, fault="origin-unchecked")
    failed = _failed(results)
    assert sorted(failed) == [f"{WS}auth/origin-foreign", f"{WS}auth/origin-null"]
    (message,) = failed[f"{WS}auth/origin-foreign"]
    assert "accepted the handshake (101) instead of HTTP 403" in message
    repro = results[f"{WS}auth/origin-foreign"].failures[0].repro or ""
    assert "Cookie: session=$CHATCONTRACT_TOKEN" in repro
    assert KERNEL_TOKEN not in repro


def test_an_unscoped_origin_rule_is_applied_to_every_carrier() -> None:
    """Without ``carriers`` the rule covers the proven (header) carrier too: the gateway,
    which lets token headers through from anywhere, then fails it (the spec says so)."""
    document = yaml.safe_load(SPEC_PATH.read_text())
    del document["paths"]["/api/kernels/{kernel_id}/channels"]["get"]["x-websocket"]["origin"][
        "carriers"
    ]
    results, _ = _run(spec=load_spec(document))
    assert sorted(_failed(results)) == [f"{WS}auth/origin-foreign", f"{WS}auth/origin-null"]


def test_planned_names_are_the_reported_names() -> None:
    """``chatcontract plan`` says what the run will report, scoped Origin rows included."""
    spec = load_spec(SPEC_PATH)
    planned = {c.id: c.name for c in build_plan(spec).contracts if c.id.startswith(WS)}
    results, _ = _run(spec=spec)
    assert {r.id: r.name for r in _ws(results)} == planned


def test_what_the_inventory_and_schemathesis_create_is_deleted_at_the_end() -> None:
    """A nightly run must not pile kernels up: every kernel the inventory's probe and
    schemathesis' successful POSTs started is shut down through the spec's DELETE, and
    the producer's results say so."""
    results, seen = _run(categories=("inventory", "rest"))
    assert len(seen.started) > 2
    assert seen.kernels == {}, "every kernel the run started was shut down"
    assert sorted(seen.shut_down) == sorted(seen.started)
    made_by_rest = results["rest/POST /api/kernels"].details["cleaned up"].split("; ")
    assert len(made_by_rest) >= 2
    assert all(line.startswith("DELETE /api/kernels/") for line in made_by_rest)
    assert "cleaned up" in results["inventory/POST /api/kernels"].details


def test_what_could_not_be_deleted_is_listed_on_the_producer() -> None:
    results, seen = _run(fault="shutdown-fails", categories=("inventory", "rest"))
    assert seen.kernels, "the gateway kept them"
    kept = results["rest/POST /api/kernels"].details["not cleaned up"]
    assert "answered HTTP 500" in kept
    assert "cleaned up" not in results["rest/POST /api/kernels"].details
