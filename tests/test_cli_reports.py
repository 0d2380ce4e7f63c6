"""`chatcontract run` as a team schedules it: reports, baselines, shards, interrupts, pacing.

Every test runs the real command line in a subprocess against a real server on
loopback and reads what it wrote.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from chatcontract.reference.app import create_app
from chatcontract.reference.config import ServerConfig
from chatcontract.report.json_report import read_report, report_schema

from .rest.servers import serving

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "openapi.yaml")
VALIDATOR = jsonschema_rs.validator_for(report_schema())


def chatcontract(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCONTRACT_", "CI"))}
    clean.update({"COLUMNS": "200", "NO_COLOR": "1"}, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "chatcontract", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    VALIDATOR.validate(document)
    return document


def _outcomes(document: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in document["results"]}


@pytest.mark.timeout(180)
def test_the_status_report_is_generated_in_every_format(tmp_path: Path) -> None:
    """The 2025 report, generated: two missing stream routes, the WebSocket 403 unjudged."""
    done = chatcontract(
        "run",
        "--spec",
        SPEC,
        "--faults",
        "staging-2025-09",
        "--max-examples",
        "3",
        "--markdown",
        "r.md",
        "--json",
        "r.json",
        "--junit-xml",
        "r.xml",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    missing = {"inventory/POST /api/chat/stream", "inventory/POST /api/agents/stream"}
    document = _json(tmp_path / "r.json")
    outcomes = _outcomes(document)
    assert {i for i, o in outcomes.items() if o == "failed"} == missing
    ws = {i: o for i, o in outcomes.items() if i.startswith("websocket/")}
    assert ws["websocket/GET /ws/auth/no-token"] == "passed"
    unjudged = [r for r in document["results"] if r["outcome"] == "inconclusive"]
    assert unjudged
    assert all("credentials rejected" in r["reason"] for r in unjudged)
    assert {r["id"] for r in unjudged} <= set(ws)

    xml = ET.parse(tmp_path / "r.xml").getroot()
    failed = {c.get("name") for c in xml.iter("testcase") if c.find("failure") is not None}
    assert len(failed) == 2
    assert all("stream is implemented" in (name or "") for name in failed)

    markdown = (tmp_path / "r.md").read_text()
    assert "## Missing endpoints (2)" in markdown
    assert "`POST /api/chat/stream`" in markdown
    assert "`POST /api/agents/stream`" in markdown
    assert "credentials rejected" in markdown
    assert markdown.count("### ") >= 2  # each failure has its own section with evidence


@pytest.mark.timeout(180)
def test_a_baseline_lists_exactly_the_new_failures(tmp_path: Path) -> None:
    common = ["run", "--spec", SPEC, "--category", "inventory", "--category", "sse"]
    clean = chatcontract(*common, "--json", "clean.json", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-2000:]
    broken = chatcontract(
        *common,
        "--faults",
        "chat-stream-missing",
        "--baseline",
        "clean.json",
        "--json",
        "broken.json",
        "--markdown",
        "broken.md",
        "--fail-on",
        "new",
        cwd=tmp_path,
    )
    assert broken.returncode == 1, broken.stdout[-3000:]
    diff = _json(tmp_path / "broken.json")["diff"]
    assert [e["id"] for e in diff["new_failures"]] == ["inventory/POST /api/chat/stream"]
    assert diff["fixed"] == []
    assert diff["still_failing"] == []
    assert "NEW FAILURE P1 POST /api/chat/stream is implemented" in broken.stdout
    assert "inventory/POST /api/chat/stream" in (tmp_path / "broken.md").read_text()
    # The same fault against its own baseline: still failing, nothing new.
    again = chatcontract(
        *common,
        "--faults",
        "chat-stream-missing",
        "--baseline",
        "broken.json",
        "--fail-on",
        "new",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert "NO NEW FAILURES (--fail-on new)" in again.stdout


@pytest.mark.timeout(240)
def test_three_shards_merged_equal_one_unsharded_run(tmp_path: Path) -> None:
    common = ["run", "--spec", SPEC, "--category", "inventory", "--category", "sse"]
    whole = chatcontract(*common, "--json", "whole.json", cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout[-3000:]
    for k in (1, 2, 3):
        shard = chatcontract(*common, "--shard", f"{k}/3", "--json", f"s{k}.json", cwd=tmp_path)
        assert shard.returncode == 0, shard.stdout[-3000:]
    merged = chatcontract(
        "report",
        "merge",
        "s1.json",
        "s2.json",
        "s3.json",
        "--json",
        "merged.json",
        "--junit-xml",
        "merged.xml",
        "--markdown",
        "merged.md",
        cwd=tmp_path,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    shards = [read_report(tmp_path / f"s{k}.json") for k in (1, 2, 3)]
    owned = [r.id for s in shards for r in s.owned]
    assert len(owned) == len(set(owned))  # each contract in exactly one shard
    whole_doc, merged_doc = _json(tmp_path / "whole.json"), _json(tmp_path / "merged.json")
    assert [r["id"] for r in merged_doc["results"]] == [r["id"] for r in whole_doc["results"]]
    assert _outcomes(merged_doc) == _outcomes(whole_doc)
    cases = list(ET.parse(tmp_path / "merged.xml").getroot().iter("testcase"))
    assert len(cases) == len(whole_doc["results"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_keeps_what_was_judged_and_exits_128_plus_the_signal(
    tmp_path: Path, signal_number: int, code: int
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCONTRACT_", "CI"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatcontract",
            "run",
            "--spec",
            SPEC,
            "--junit-xml",
            "partial.xml",
            "--json",
            "partial.json",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until contracts are being judged (the plain console prints one line each).
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        judged = 0
        while judged < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            judged += line.startswith(("PASSED", "FAILED", "SKIPPED", "INCONCLUSIVE"))
        assert judged == 3
        time.sleep(1.0)
        proc.send_signal(signal_number)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert took < 2 + 3, took  # 2 s promised, generous slack for a shared machine
    document = _json(tmp_path / "partial.json")
    assert document["meta"]["status"] == "interrupted"
    outcomes = _outcomes(document)
    assert sum(o == "passed" for o in outcomes.values()) >= 3
    assert any(r["reason"].startswith("interrupted") for r in document["results"]), (
        "unreached contracts are listed as not judged"
    )
    cases = list(ET.parse(tmp_path / "partial.xml").getroot().iter("testcase"))
    assert len(cases) == len(outcomes)
    assert "INTERRUPTED" in out


class _Arrivals:
    """ASGI middleware: when did each HTTP request and WebSocket handshake arrive?"""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[float, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            self.seen.append((time.monotonic(), scope["type"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def counted_reference() -> Iterator[tuple[str, _Arrivals]]:
    app = _Arrivals(create_app(ServerConfig().replace(host="127.0.0.1", port=0)))
    with serving(app, lifespan="on") as url:
        yield url, app


@pytest.mark.timeout(180)
def test_rate_limit_paces_streams_and_handshakes_too(
    tmp_path: Path, counted_reference: tuple[str, _Arrivals]
) -> None:
    url, arrivals = counted_reference
    secret = ServerConfig().client_secret
    done = chatcontract(
        "run",
        "--spec",
        SPEC,
        "--base-url",
        url,
        "--rate-limit",
        "5/s",
        "--only",
        "sse/POST /api/agents/stream/*",
        "--only",
        "websocket/GET /ws/auth/*",
        cwd=tmp_path,
        env={"CHATCONTRACT_CLIENT_SECRET": secret},
    )
    assert done.returncode in (0, 4), done.stdout[-3000:] + done.stderr[-2000:]
    paced = [t for t, kind, path in arrivals.seen if path in ("/ws", "/api/agents/stream")]
    kinds = {kind for _, kind, path in arrivals.seen if path in ("/ws", "/api/agents/stream")}
    assert kinds == {"http", "websocket"}
    assert len(paced) >= 10
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    # 5/s: one every 0.2 s; a little jitter between the pacer and the server's clock.
    assert min(gaps) >= 0.15, sorted(gaps)[:5]


def test_an_unwritable_report_path_fails_before_any_request(tmp_path: Path) -> None:
    done = chatcontract(
        "run", "--spec", SPEC, "--junit-xml", "missing/folder/r.xml", cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "chatcontract: cannot write --junit-xml missing/folder/r.xml: "
        "folder missing/folder does not exist"
    )
    assert done.stdout == ""
