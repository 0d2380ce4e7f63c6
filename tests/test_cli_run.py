"""``chatcontract run`` end to end (a real process against real servers), its exit codes and
its JUnit report."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatcontract.cli import EXIT_INCONCLUSIVE, exit_code
from chatcontract.reference.config import DEFAULT_CLIENT_SECRET
from chatcontract.reference.server import RunningReference, running_reference
from chatcontract.reference.tokens import mint_token
from chatcontract.report.junit import junit_xml
from chatcontract.report.model import ContractResult, Finding, Outcome
from chatcontract.rest.isolation import isolation_plan
from chatcontract.spec import load_spec

from .rest.servers import closed_port_url

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.")
Start = Callable[..., RunningReference]


@pytest.fixture
def reference_factory() -> Iterator[Start]:
    """``start("response-drift", signing_key=...)``: reference servers stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(*faults: str, **overrides: Any) -> RunningReference:
            return stack.enter_context(running_reference(faults=frozenset(faults), **overrides))

        yield start


def chatcontract(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 50
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATCONTRACT_")}
    clean.update({"COLUMNS": "200", "NO_COLOR": "1"}, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "chatcontract", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_help_documents_options_and_exit_codes(tmp_path: Path) -> None:
    done = chatcontract("run", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for word in ("--base-url", "--faults", "--junit-xml", "--rate-limit", "--time-budget"):
        assert word in done.stdout
    assert "4  nothing was violated, but a P1 contract is INCONCLUSIVE" in done.stdout
    assert "CHATCONTRACT_CLIENT_SECRET" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "no-such-fault"], "unknown fault profile 'no-such-fault'"),
        (["--rate-limit", "fast"], "invalid rate limit 'fast'"),
        (["--spec", "missing.yaml"], "missing.yaml"),
        (["--category", "nope"], "unknown category 'nope'"),
        (["--base-url", "http://127.0.0.1:9", "--faults", "server-error"], "--faults applies"),
        (["--base-url", "notaurl"], "invalid --base-url 'notaurl'"),
        (["--base-url", "http://[::1"], "invalid --base-url 'http://[::1'"),
        (["--base-url", "http://127.0.0.1:99999"], "port 99999 is out of range"),
        (["--base-url", "ftp://127.0.0.1"], "use http(s)://host"),
    ],
)
def test_wrong_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    done = chatcontract("run", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_target_that_is_down_is_one_line_exit_3_and_nothing_passes(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    url = closed_port_url()
    done = chatcontract(
        "run",
        "--base-url",
        url,
        "--junit-xml",
        str(report),
        cwd=tmp_path,
        env={"CHATCONTRACT_CLIENT_SECRET": DEFAULT_CLIENT_SECRET},
    )
    assert done.returncode == 3
    assert done.stderr.strip() == f"chatcontract: cannot reach {url}: connection refused"
    assert done.stdout == ""
    assert not report.exists()


def test_response_drift_fails_with_a_redacted_repro_everywhere(
    tmp_path: Path, reference_factory: Start
) -> None:
    """A planted token must not appear on the console or in the JUnit report."""
    server = reference_factory("response-drift")
    planted = mint_token("alice", server.config)
    env = {
        "CHATCONTRACT_TOKEN_ALICE": planted,
        "CHATCONTRACT_TOKEN_BOB": mint_token("bob", server.config),
    }
    report = tmp_path / "junit.xml"
    done = chatcontract(
        "run",
        "--base-url",
        server.url,
        "--category",
        "rest",
        "--max-examples",
        "5",
        "--junit-xml",
        str(report),
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CONTRACTS VIOLATED" in done.stdout
    assert "response_schema_conformance" in done.stdout
    assert 'reproduce: curl -X GET -H "Authorization: Bearer $CHATCONTRACT_TOKEN"' in done.stdout
    xml = report.read_text()
    for output in (done.stdout, done.stderr, xml):
        assert planted not in output
        assert not JWT.search(output)
    suites = ET.fromstring(xml)
    assert int(suites.get("failures", "0")) >= 1
    failed = [c for c in suites.iter("testcase") if c.find("failure") is not None]
    assert {c.get("classname") for c in failed} == {"rest"}
    assert any("$CHATCONTRACT_TOKEN" in (c.findtext("failure") or "") for c in failed)


def test_rejected_credentials_make_the_run_inconclusive_exit_4(
    tmp_path: Path, reference_factory: Start
) -> None:
    """The token endpoint issues tokens the API rejects: no REST auth verdict, and no exit 0."""
    api = reference_factory()
    issuer = reference_factory(signing_key="an-issuer-whose-tokens-this-api-does-not-trust")
    report = tmp_path / "junit.xml"
    done = chatcontract(
        "run",
        "--base-url",
        api.url,
        "--category",
        "rest",
        "--max-examples",
        "3",
        "--junit-xml",
        str(report),
        cwd=tmp_path,
        env={
            "CHATCONTRACT_OAUTH_TOKEN_URL": issuer.url + "/oauth/token",
            "CHATCONTRACT_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        },
    )
    assert done.returncode == EXIT_INCONCLUSIVE, done.stdout + done.stderr
    spec = load_spec()
    blocked = sum(1 for op in spec.rest_operations if op.tier == "P1" and not op.is_public)
    # ...plus the stateful phase, which runs along links between protected operations,
    # plus every P1 object-isolation contract (they need working tokens too).
    isolation = sum(
        1
        for producer in isolation_plan(spec, spec.rest_operations)
        for target in producer.targets
        if target.op.tier == "P1"
    )
    expected = blocked + 1 + isolation
    assert f"INCONCLUSIVE: {expected} P1 contract(s) could not be judged" in done.stdout
    assert "credentials rejected: 401 from GET /api/agents for alice" in done.stdout
    errors = [c for c in ET.parse(report).iter("testcase") if c.find("error") is not None]
    assert errors
    for case in errors:
        error = case.find("error")
        assert error is not None
        assert error.get("type") == "inconclusive"
        assert (error.get("message") or "").startswith("inconclusive: credentials rejected: 401")


def test_without_base_url_the_embedded_reference_runs_with_the_faults(tmp_path: Path) -> None:
    done = chatcontract(
        "run", "--faults", "staging-2025-09", "--category", "inventory", cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # Not a terminal: one plain line per contract as it is judged.
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED  ")]
    assert len(failed) == 2
    assert any("POST /api/chat/stream is implemented" in line for line in failed)
    assert any("POST /api/agents/stream is implemented" in line for line in failed)


def result(outcome: Outcome, tier: str = "P1", **kwargs: object) -> ContractResult:
    return ContractResult(
        id=f"rest/{outcome}-{tier}",
        category="rest",
        name=f"{outcome} {tier}",
        tier=tier,  # type: ignore[arg-type]
        outcome=outcome,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("outcomes", "expected", "allowed"),
    [
        ([(Outcome.PASSED, "P1"), (Outcome.SKIPPED, "P1")], 0, 0),
        ([(Outcome.PASSED, "P1"), (Outcome.FAILED, "P2")], 1, 1),
        ([(Outcome.FAILED, "P1"), (Outcome.INCONCLUSIVE, "P1")], 1, 1),
        ([(Outcome.PASSED, "P1"), (Outcome.INCONCLUSIVE, "P1")], 4, 0),
        ([(Outcome.PASSED, "P1"), (Outcome.INCONCLUSIVE, "P2")], 0, 0),
        ([], 4, 0),
    ],
)
def test_exit_code_rules(outcomes: list[tuple[Outcome, str]], expected: int, allowed: int) -> None:
    results = [result(o, t) for o, t in outcomes]
    assert exit_code(results) == expected
    assert exit_code(results, allow_inconclusive=True) == allowed


def test_junit_maps_outcomes_and_survives_hostile_text() -> None:
    """Inconclusive P1 is an error, never a quiet skip; fuzzed control characters stay valid."""
    results = [
        result(Outcome.FAILED, findings=(Finding("bad \x01 value \ud800", repro="curl -X GET x"),)),
        result(Outcome.INCONCLUSIVE, reason="credentials rejected: 401"),
        result(Outcome.INCONCLUSIVE, "P2", reason="time budget exhausted"),
        result(Outcome.SKIPPED, reason="needs two users"),
        result(Outcome.PASSED),
    ]
    root = ET.fromstring(junit_xml(results, redact=lambda s: s.replace("curl", "CURL")))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "5",
        "1",
        "1",
        "2",
    )
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["failed P1"].find("failure")
    assert failure is not None
    assert failure.get("message") == "bad \\u0001 value \\ud800"
    assert "reproduce: CURL -X GET x" in (failure.text or "")
    error = cases["inconclusive P1"].find("error")
    assert error is not None
    assert error.get("message") == "inconclusive: credentials rejected: 401"
    skipped = cases["inconclusive P2"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "inconclusive: time budget exhausted"


def test_planted_tokens_never_leave_the_process_in_a_full_failing_run(
    tmp_path: Path, reference_factory: Start
) -> None:
    """Every category with findings (REST repro, SSE transcript, WS frames and handshakes)."""
    import base64

    server = reference_factory("response-drift", "events-out-of-order", "ws-accepts-query-token")
    alice, bob = mint_token("alice", server.config), mint_token("bob", server.config)
    forms = {
        alice,
        bob,
        alice.rsplit(".", 1)[1],  # the signature alone
        base64.urlsafe_b64encode(alice.encode()).decode().rstrip("="),  # subprotocol form
        server.config.signing_key,
    }
    report = tmp_path / "junit.xml"
    done = chatcontract(
        "run",
        "--base-url",
        server.url,
        "--max-examples",
        "3",
        "--junit-xml",
        str(report),
        cwd=tmp_path,
        env={
            "CHATCONTRACT_TOKEN_ALICE": alice,
            "CHATCONTRACT_TOKEN_BOB": bob,
            "CHATCONTRACT_SIGNING_KEY": server.config.signing_key,
        },
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    xml = report.read_text()
    for category in ("rest", "sse", "websocket"):
        assert f'classname="{category}"' in xml
    assert "tool_completed" in done.stdout  # the SSE/WS ordering finding is reported
    for output in (done.stdout, done.stderr, xml):
        for secret in forms:
            assert secret not in output


def test_a_spec_with_only_stream_routes_is_checked(tmp_path: Path) -> None:
    """A team whose API is SSE only still gets every stream contract judged."""
    import yaml

    document = yaml.safe_load((Path(__file__).parents[1] / "openapi.yaml").read_text())
    streams = ("/api/chat/stream", "/api/agents/stream")
    document["paths"] = {p: item for p, item in document["paths"].items() if p in streams}
    spec = tmp_path / "sse-only.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    done = chatcontract("run", "--spec", str(spec), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "11 contracts: 11 passed" in done.stdout
    assert "POST /api/agents/stream resumes after Last-Event-ID" in done.stdout
