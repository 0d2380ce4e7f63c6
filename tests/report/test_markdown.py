"""The Markdown report: the status report, generated, honest and safe to paste anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from chatcontract.redact import Redactor
from chatcontract.report.diff import diff_reports
from chatcontract.report.markdown import markdown_report, not_reached, write_markdown
from chatcontract.report.model import Finding, Outcome, RunReport, RunStatus, TranscriptEntry
from tests.report import ROUTE_MISSING, meta, missing, result, shard, staging_report


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section."""
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _html(text: str) -> str:
    """Rendered as GitHub does (CommonMark plus GFM tables)."""
    return str(MarkdownIt("commonmark").enable("table").render(text))


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def _assert_tables_are_well_formed(text: str) -> None:
    """Every row of a table has as many cells as its header: no message broke a table."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = _unescaped_pipes(lines[i - 1])
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert _unescaped_pipes(lines[j]) == width, lines[j]
                j += 1


def test_the_title_names_the_target_and_the_date() -> None:
    first = markdown_report(staging_report()).splitlines()[0]
    assert first == "# Chat API: https://staging.example.com (2025-09-07 13:10 UTC)"


def test_the_verdict_counts_failures_and_never_inconclusive_as_passed() -> None:
    text = markdown_report(staging_report())
    assert "**Verdict: violated.** 4 of 9 judged contracts failed (4 P1, 0 P2)." in text
    rates = _section(text, "Pass rate by tier")
    assert "| **P1** | 2 / 6 | 33.3% | 4 | 1 | 1 |" in rates
    assert "| **P2** | 3 / 3 | 100.0% | 0 | 0 | 1 |" in rates
    assert "| **all** | 5 / 9 | 55.6% | 4 | 1 | 2 |" in rates


def test_an_unjudged_p1_contract_makes_the_verdict_inconclusive() -> None:
    report = RunReport(
        meta(),
        (
            result("ws/a/ok"),
            result("ws/a/auth", Outcome.INCONCLUSIVE, reason="credentials rejected"),
        ),
    )
    text = markdown_report(report)
    assert "**Verdict: inconclusive.**" in text
    assert "**P1** a auth: credentials rejected" in _section(text, "Inconclusive (1)")


def test_a_clean_run_holds() -> None:
    text = markdown_report(RunReport(meta(), (result("rest/a/b"), result("rest/a/c", tier="P2"))))
    assert "**Verdict: holds.** All 2 judged contracts passed." in text
    assert "## Failures" not in text
    assert "## Missing endpoints" not in text


def test_missing_endpoints_are_listed_by_route_with_their_first_finding() -> None:
    report = RunReport(
        meta(),
        (
            missing("POST /api/chat/stream"),
            result("inventory/GET /health/implemented", operation="GET /health"),
            missing("POST /api/agents/stream"),
            missing("GET /api/agents/stream", tier="P2"),
        ),
    )
    section = _section(markdown_report(report), "Missing endpoints (3)")
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [
        "GET /api/agents/stream",
        "POST /api/agents/stream",
        "POST /api/chat/stream",
    ]
    assert "GET /health" not in section
    assert "answered like an unknown route (404 {'detail': 'Not Found'})" in rows[0]


def test_each_failure_shows_findings_repro_and_transcript() -> None:
    section = _section(markdown_report(staging_report()), "Failures (4)")
    assert "- `deadline-idle` at `frame #3`: no terminal event before the idle deadline" in section
    assert "- **warning** `slow`: slow answer" in section
    assert (
        "```sh\nchatcontract run --only 'websocket/GET /ws/flow/start-agent' --seed 42\n```"
        in section
    )
    assert '+0.012s received {"type": "agent_started", "run_id": "r1"}' in section
    assert "+0.254s received line one\\nline two" in section, "one transcript entry, one line"
    for route in ("POST /api/chat/stream", "POST /api/agents/stream"):
        path = route.split(" ", 1)[1]
        assert f"Bearer $CHATCONTRACT_TOKEN' https://staging.example.com{path}\n```" in section
        assert f"### {route} is implemented" in section


def test_long_transcripts_and_many_findings_are_cut_with_a_pointer_to_the_json() -> None:
    transcript = tuple(TranscriptEntry("received", i / 10, "x" * 500) for i in range(30))
    findings = tuple(Finding(f"problem {i}", transcript=transcript) for i in range(25))
    text = markdown_report(
        RunReport(meta(), (result("sse/a/b", Outcome.FAILED, findings=findings),))
    )
    assert "problem 9" in text
    assert "problem 10" not in text
    assert "and 15 more findings in the JSON report" in text
    assert "… 22 more lines in the JSON report" in text
    assert max(len(line) for line in text.splitlines()) < 200


def test_a_fence_inside_a_repro_does_not_close_the_block() -> None:
    finding = Finding("bad", repro="echo '```' && echo ````")
    text = markdown_report(
        RunReport(meta(), (result("rest/a/b", Outcome.FAILED, findings=(finding,)),))
    )
    assert "`````sh\necho '```' && echo ````\n`````" in text


def test_pipes_and_backticks_are_escaped_inside_table_cells() -> None:
    """A message from the server must not add a column or open a code span."""
    report = RunReport(
        meta(),
        (
            result(
                "inventory/GET /a|b/implemented",
                Outcome.FAILED,
                operation="GET /a|b`c",
                findings=(Finding("got `x | y` | z"),),
            ),
            result("rest/a/b", Outcome.SKIPPED, reason="no | links `here`"),
            result("rest/a/c", metrics={"p|q": 0.5}, name="n|m"),
        ),
    )
    text = markdown_report(report)
    _assert_tables_are_well_formed(text)
    assert "| ``GET /a\\|b`c`` | P1 | got \\`x \\| y\\` \\| z |" in text
    assert "| no \\| links \\`here\\` | 1 | a b |" in text
    assert "| n\\|m | `p\\|q` | 0.5 |" in text
    html = _html(text)
    assert "<td><code>GET /a|b`c</code></td>\n<td>P1</td>\n<td>got `x | y` | z</td>" in html
    assert "<td>no | links `here`</td>" in html
    assert "<td>n|m</td>\n<td><code>p|q</code></td>" in html
    # Outside a table a backslash inside a code span is literal: pipes stay bare there.
    assert "<code>inventory/GET /a|b/implemented</code>" in html


def test_markup_in_messages_is_escaped_not_rendered() -> None:
    finding = Finding("token <redacted> in **bold** [link](http://x) & <script>")
    text = markdown_report(
        RunReport(meta(), (result("rest/a/b", Outcome.FAILED, findings=(finding,)),))
    )
    assert "token \\<redacted\\> in \\*\\*bold\\*\\* \\[link\\](http://x) \\& \\<script\\>" in text
    assert "<script>" not in text
    html = _html(text)
    assert "token &lt;redacted&gt; in **bold** [link](http://x) &amp; &lt;script&gt;" in html
    assert "<strong>bold" not in html


def test_skips_are_grouped_by_reason_and_counted_not_listed_when_many() -> None:
    skipped = tuple(
        result(f"sse/route-{i}/first-event", Outcome.SKIPPED, reason="blocked: route missing")
        for i in range(12)
    )
    lone = result("ws/x/limits", Outcome.SKIPPED, reason="no limits in the spec")
    section = _section(markdown_report(RunReport(meta(), (*skipped, lone))), "Skipped (13)")
    assert "| blocked: route missing | 12 |  |" in section
    assert "| no limits in the spec | 1 | x limits |" in section
    assert "route-3" not in section


def test_latency_figures_appear_where_measured() -> None:
    section = _section(markdown_report(staging_report()), "Latency and measured figures")
    assert "| GET api threads response-schema | `elapsed_seconds` | 231 ms |" in section
    assert "| GET api threads response-schema | `requests` | 12 |" in section
    assert "| GET ws flow start-agent | `first_frame_seconds` | 12 ms |" in section
    assert "## Latency" not in markdown_report(RunReport(meta(), (result("rest/a/b"),)))


def test_the_diff_section_counts_per_tier_and_lists_changes() -> None:
    current = staging_report()
    baseline = RunReport(
        meta(spec_sha256="cd" * 32),
        (
            *current.results[:3],
            result("rest/POST /api/threads/status-conformance"),
            result("websocket/GET /ws/flow/start-agent", Outcome.FAILED),
            result("rest/old/one", Outcome.FAILED, tier="P2"),
        ),
    )
    text = markdown_report(current, diff_reports(baseline, current))
    section = _section(text, "Changes since the baseline")
    assert "| New failures | 1 | 0 | 1 |" in section
    assert "| Still failing | 3 | 0 | 3 |" in section
    assert "| Gone | 0 | 1 | 1 |" in section
    assert "**The spec changed** since the baseline" in section
    assert "**New failures**\n\n- **P1** POST api threads status-conformance" in section
    assert "- **P2** old one (`rest/old/one`): failed → absent" in section
    assert "<summary>Still failing (3)</summary>" in section
    _assert_tables_are_well_formed(text)
    assert "## Changes since" not in markdown_report(current)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (RunStatus.INTERRUPTED, "interrupted: 5 contracts not reached"),
        (RunStatus.TIME_BUDGET, "time-budget: 5 contracts not reached (the time budget ran out"),
        (RunStatus.ABORTED, "aborted: 5 contracts not reached (the target became unreachable"),
    ],
)
def test_an_unfinished_run_says_how_many_contracts_it_did_not_reach(
    status: RunStatus, words: str
) -> None:
    report = staging_report(status=status, planned=17)
    assert not_reached(report) == 5
    assert words in markdown_report(report)
    assert "not reached" not in markdown_report(staging_report())


@pytest.mark.parametrize(
    "reason",
    [
        "interrupted before this was judged",
        "time budget reached (60 s) before this was judged",
        "aborted: connection refused by staging.example.com",
        "not reached: budget",
    ],
)
def test_unreached_contracts_recorded_as_inconclusive_are_counted_once(reason: str) -> None:
    """The runner accounts for every planned contract; each unreached one counts once."""
    results = (
        result("a/b/c"),
        result("a/b/d", Outcome.INCONCLUSIVE, reason=reason),
        result("a/b/e", Outcome.INCONCLUSIVE, reason="credentials rejected: HTTP 403"),
    )
    report = RunReport(meta(status=RunStatus.TIME_BUDGET, planned=4), results)
    assert not_reached(report) == 2
    assert "time-budget: 2 contracts not reached" in markdown_report(report)


def test_a_shard_report_shows_only_what_it_owns() -> None:
    whole = staging_report()
    part = shard(whole, 1, 3, duration=1.0)
    text = markdown_report(part)
    for borrowed in part.prerequisites:
        assert borrowed not in text
    assert "shard 1/3" in text


def test_nothing_but_the_report_reaches_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret beyond what the results contain: the reporter reads no environment."""
    monkeypatch.setenv("CHATCONTRACT_TOKEN", "s3cr3t-token-value")
    monkeypatch.setenv("CHATCONTRACT_CLIENT_SECRET", "client-secret-value")
    text = markdown_report(staging_report())
    assert "s3cr3t-token-value" not in text
    assert "client-secret-value" not in text
    assert "$CHATCONTRACT_TOKEN" in text, "placeholders from the results stay"


def test_redact_is_applied_to_every_string_as_a_second_net() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    leaky = Finding(
        f"echoed {jwt}",
        repro=f"curl -H 'Authorization: Bearer {jwt}' https://x",
        transcript=(TranscriptEntry("sent", 0.0, f'{{"token": "{jwt}"}}'),),
        location="hunter2-secret",
    )
    report = RunReport(
        meta(), (result("rest/a/b", Outcome.FAILED, findings=(leaky,), reason="hunter2-secret"),)
    )
    text = markdown_report(report, redact=Redactor(["hunter2-secret"]))
    assert jwt not in text
    assert "hunter2-secret" not in text


def test_two_hundred_contracts_stay_readable() -> None:
    results = [
        result(f"rest/op-{i}/status", metrics={"elapsed_seconds": i / 100}) for i in range(150)
    ]
    results += [
        result(f"sse/op-{i}/first", Outcome.SKIPPED, reason="blocked: route missing")
        for i in range(30)
    ]
    results += [
        result(f"ws/op-{i}/auth", Outcome.INCONCLUSIVE, reason="credentials rejected")
        for i in range(20)
    ]
    text = markdown_report(RunReport(meta(planned=200), tuple(results)))
    assert "<summary>Passed (150)</summary>" in text
    assert "<summary>Inconclusive contracts (20)</summary>" in text
    assert "<summary>150 figures</summary>" in text
    assert "| blocked: route missing | 30 |  |" in text
    assert text.count("<details>") == text.count("</details>")
    assert len(text) < 40_000


def test_write_markdown_writes_the_same_text(tmp_path: Path) -> None:
    report = staging_report()
    path = write_markdown(tmp_path / "summary.md", report)
    assert path.read_text(encoding="utf-8") == markdown_report(report)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_route_missing_fixture_is_the_status_reports_404() -> None:
    assert "404" in ROUTE_MISSING
