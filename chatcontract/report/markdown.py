"""The Markdown report: the status report a team used to write by hand, generated.

GitHub-flavoured Markdown fit for ``$GITHUB_STEP_SUMMARY`` or a pull-request
comment. It leads with what a release decision needs (a verdict, pass rates
per tier that never count an unjudged contract as passed, the spec'd routes
the server does not implement) and then gives every failure its evidence:
findings, a reproduction command, a transcript excerpt. Long lists collapse
into ``<details>`` so a 200-contract run stays readable.

Only owned results are shown (a shard's prerequisites are reported by their
owner). Every string from the report passes through ``redact`` (results are
already redacted by the runner; this is the second net) and is escaped, so a
message can neither break a table nor inject markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from chatcontract.report.diff import DIFF_KINDS, DiffEntry, RunDiff
from chatcontract.report.model import (
    UNREACHED_DETAIL,
    ContractResult,
    Finding,
    Outcome,
    RunReport,
    RunStatus,
    Tier,
)

__all__ = ["markdown_report", "not_reached", "write_markdown"]

TIERS: tuple[Tier, ...] = ("P1", "P2")
COLLAPSE_AFTER = 15
"""Lists longer than this go into a ``<details>`` block."""
MAX_FINDINGS = 10
"""Findings shown per failed contract; the JSON report has all of them."""
MAX_TRANSCRIPT = 8
"""Transcript lines shown per failed contract."""
MAX_SKIP_NAMES = 3
"""A skip reason lists its contracts by name only when it has at most this many."""

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")
_BACKTICKS = re.compile(r"`+")
# How the runner words the reason of a contract a run ended before
# (runner.execute: "interrupted before this was judged", "time budget reached (60 s)
# before this was judged", "aborted: <why>"). The model has no field for it yet.
_UNREACHED = re.compile(r"^(?:not reached|aborted:)|before this was judged$", re.IGNORECASE)
_STATUS_WORDS = {
    RunStatus.TIME_BUDGET: "the time budget ran out",
    RunStatus.INTERRUPTED: "the run was interrupted",
    RunStatus.ABORTED: "the target became unreachable",
}
_DIFF_TITLES = {
    "fixed": "Fixed",
    "new_failures": "New failures",
    "still_failing": "Still failing",
    "new_contracts": "New contracts",
    "gone": "Gone",
    "became_inconclusive": "Became inconclusive",
}


def _identity(text: str) -> str:
    return text


def not_reached(report: RunReport) -> int:
    """How many planned contracts the run did not reach: the runner records each as
    *inconclusive* saying so; planned ones with no result at all count too."""
    owned = report.owned
    missing = max(report.meta.planned - len(owned), 0)
    marked = sum(
        1
        for r in owned
        if r.outcome is Outcome.INCONCLUSIVE
        and (UNREACHED_DETAIL in r.details or _UNREACHED.search(r.reason))
    )
    return missing + marked


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m {seconds:02d}s"


def _figure(name: str, value: float) -> str:
    return _seconds(value) if name.endswith("seconds") else f"{value:g}"


def _route_key(result: ContractResult) -> tuple[str, str]:
    method, _, path = (result.operation or result.name).partition(" ")
    return (path, method) if path else (method, "")


class _Writer:
    """Accumulates lines; every string from the report goes through one of its escapers."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def text(self, value: str) -> str:
        """Inline text: one line, Markdown and HTML specials escaped."""
        return _SPECIAL.sub(r"\\\1", " ".join(self.redact(value).split()))

    def code(self, value: str, *, cell: bool = False) -> str:
        """An inline code span; ``cell``: inside a table row."""
        flat = " ".join(self.redact(value).split())
        if not flat:
            return ""
        longest = max((len(m) for m in _BACKTICKS.findall(flat)), default=0)
        fence = "`" * (longest + 1)
        padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
        span = f"{fence}{padded}{fence}"
        # GFM splits table rows on every unescaped pipe, even inside code spans (and
        # removes the backslash there); elsewhere a backslash in a code span is literal.
        return span.replace("|", "\\|") if cell else span

    def fence(self, body: str, info: str = "") -> None:
        text = self.redact(body)
        longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
        marker = "`" * max(3, longest + 1)
        self.add(f"{marker}{info}", *text.splitlines(), marker, "")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(row) + " |" for row in rows))
        self.add("")

    def open_details(self, summary: str, when: bool = True) -> None:
        if when:
            self.add("<details>", f"<summary>{summary}</summary>", "")

    def close_details(self, when: bool = True) -> None:
        if when:
            self.add("</details>", "")


def _header(w: _Writer, report: RunReport) -> None:
    meta = report.meta
    started = meta.started_at
    if len(started) >= 16 and started[10] == "T":
        started = f"{started[:10]} {started[11:16]} UTC"
    title = meta.spec_title or "Contract report"
    w.add(
        f"# {w.text(title)}: {w.text(meta.target)}" + (f" ({w.text(started)})" if started else "")
    )
    w.add("")
    facts = [f"spec {w.code(meta.spec_source)}"]
    if meta.spec_sha256:
        facts.append(f"sha256 {w.code(meta.spec_sha256[:12])}")
    facts += [f"seed {meta.seed}", f"took {_seconds(meta.duration)}"]
    facts.append(f"chatcontract {w.text(meta.tool_version)}")
    if meta.shard:
        facts.append(f"shard {meta.shard[0]}/{meta.shard[1]}")
    if meta.selection:
        facts.append("selection " + ", ".join(w.code(s) for s in meta.selection))
    if meta.faults:
        facts.append("faults " + ", ".join(w.code(f) for f in meta.faults))
    w.add(" · ".join(facts), "")


def _verdict(w: _Writer, report: RunReport) -> None:
    owned = report.owned
    failed = [r for r in owned if r.outcome is Outcome.FAILED]
    unjudged_p1 = [r for r in owned if r.outcome is Outcome.INCONCLUSIVE and r.tier == "P1"]
    judged = sum(1 for r in owned if r.outcome in (Outcome.PASSED, Outcome.FAILED))
    if failed:
        tiers = ", ".join(f"{sum(1 for r in failed if r.tier == t)} {t}" for t in TIERS)
        line = (
            f"**Verdict: violated.** {len(failed)} of {judged} judged contracts failed ({tiers})."
        )
    elif unjudged_p1:
        line = (
            f"**Verdict: inconclusive.** No contract failed, but {len(unjudged_p1)} P1 "
            "contracts could not be judged."
        )
    elif judged:
        line = f"**Verdict: holds.** All {judged} judged contracts passed."
    else:
        line = "**Verdict: nothing judged.** No contract could be judged."
    w.add(line, "")
    if report.meta.status is not RunStatus.COMPLETE:
        status = report.meta.status
        w.add(
            f"> **Run incomplete.** {status.value}: {not_reached(report)} contracts not reached "
            f"({_STATUS_WORDS[status]}; they are not counted as passed).",
            "",
        )


def _pass_rates(w: _Writer, owned: Sequence[ContractResult]) -> None:
    w.add("## Pass rate by tier", "")
    rows = []
    for label, tier in (*((t, t) for t in TIERS), ("all", None)):
        chosen = [r for r in owned if tier is None or r.tier == tier]
        count = {o: sum(1 for r in chosen if r.outcome is o) for o in Outcome}
        judged = count[Outcome.PASSED] + count[Outcome.FAILED]
        rows.append(
            (
                f"**{label}**",
                f"{count[Outcome.PASSED]} / {judged}",
                _percent(count[Outcome.PASSED], judged),
                str(count[Outcome.FAILED]),
                str(count[Outcome.INCONCLUSIVE]),
                str(count[Outcome.SKIPPED]),
            )
        )
    w.table(("tier", "passed / judged", "rate", "failed", "inconclusive", "skipped"), rows)
    w.add("Inconclusive and skipped contracts are never counted as passed.", "")
    defaulted = [r for r in owned if r.tier_source == "default"]
    if defaulted:
        w.add(
            f"{len(defaulted)} of {len(owned)} contracts have no `x-tier` in the spec and "
            "count as P1 by default; the others take their tier from the spec.",
            "",
        )


def _first_message(result: ContractResult) -> str:
    findings = result.failures or result.findings
    return findings[0].message if findings else result.reason


def _missing_endpoints(w: _Writer, owned: Sequence[ContractResult]) -> None:
    missing = [r for r in owned if r.category == "inventory" and r.outcome is Outcome.FAILED]
    if not missing:
        return
    w.add(f"## Missing endpoints ({len(missing)})", "")
    rows = (
        (w.code(r.operation or r.name, cell=True), r.tier, w.text(_first_message(r)))
        for r in sorted(missing, key=_route_key)
    )
    w.table(("route", "tier", "finding"), rows)


def _finding_line(w: _Writer, finding: Finding) -> str:
    parts = ["**warning**"] if finding.severity == "warning" else []
    if finding.code:
        parts.append(w.code(finding.code))
    if finding.location:
        parts.append(f"at {w.code(finding.location)}")
    where = " ".join(parts)
    return f"- {where}: {w.text(finding.message)}" if where else f"- {w.text(finding.message)}"


def _transcript(finding: Finding, limit: int = MAX_TRANSCRIPT, width: int = 160) -> str:
    lines = []
    for entry in finding.transcript[:limit]:
        content = entry.content.replace("\r", "\\r").replace("\n", "\\n")
        if len(content) > width:
            content = content[: width - 1] + "…"
        lines.append(f"+{entry.offset:.3f}s {entry.direction:<8} {content}")
    hidden = len(finding.transcript) - limit
    if hidden > 0:
        lines.append(f"… {hidden} more lines in the JSON report")
    return "\n".join(lines)


def _failure(w: _Writer, result: ContractResult) -> None:
    w.add(f"### {w.text(result.name)}", "")
    facts = [f"**{result.tier}**", w.code(result.id)]
    if result.operation:
        facts.append(w.code(result.operation))
    w.add(" · ".join(facts), "")
    shown = result.findings[:MAX_FINDINGS]
    if not shown:
        w.add(f"- {w.text(result.reason or 'failed without a finding')}")
    w.add(*(_finding_line(w, f) for f in shown))
    if len(result.findings) > MAX_FINDINGS:
        w.add(f"- … and {len(result.findings) - MAX_FINDINGS} more findings in the JSON report")
    w.add("")
    repros = list(dict.fromkeys(f.repro for f in shown if f.repro))
    if repros:
        w.add("Reproduce:", "")
        w.fence("\n".join(repros[:3]), "sh")
    evidence = next((f for f in shown if f.transcript), None)
    if evidence is not None:
        w.open_details("Transcript excerpt")
        w.fence(_transcript(evidence), "text")
        w.close_details()


def _failures(w: _Writer, owned: Sequence[ContractResult]) -> None:
    failed = [r for r in owned if r.outcome is Outcome.FAILED]
    if not failed:
        return
    w.add(f"## Failures ({len(failed)})", "")
    for result in sorted(failed, key=lambda r: TIERS.index(r.tier)):
        _failure(w, result)


def _contract_list(w: _Writer, title: str, items: Sequence[str]) -> None:
    collapse = len(items) > COLLAPSE_AFTER
    w.open_details(f"{title} ({len(items)})", collapse)
    w.add(*items, "")
    w.close_details(collapse)


def _inconclusive(w: _Writer, owned: Sequence[ContractResult]) -> None:
    unjudged = [r for r in owned if r.outcome is Outcome.INCONCLUSIVE]
    if not unjudged:
        return
    w.add(f"## Inconclusive ({len(unjudged)})", "")
    w.add("These contracts could not be judged: not a pass, not a failure.", "")
    items = [
        f"- **{r.tier}** {w.text(r.name)}: {w.text(r.reason or 'no reason given')}"
        for r in sorted(unjudged, key=lambda r: TIERS.index(r.tier))
    ]
    _contract_list(w, "Inconclusive contracts", items)


def _skipped(w: _Writer, owned: Sequence[ContractResult]) -> None:
    skipped = [r for r in owned if r.outcome is Outcome.SKIPPED]
    if not skipped:
        return
    w.add(f"## Skipped ({len(skipped)})", "")
    groups: dict[str, list[ContractResult]] = {}
    for result in skipped:
        groups.setdefault(result.reason or "no reason given", []).append(result)
    rows = []
    for reason, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        names = ", ".join(w.text(r.name) for r in members) if len(members) <= MAX_SKIP_NAMES else ""
        rows.append((w.text(reason), str(len(members)), names))
    w.table(("reason", "count", "contracts"), rows)


def _latency(w: _Writer, owned: Sequence[ContractResult]) -> None:
    rows = [
        (w.text(r.name), w.code(name, cell=True), _figure(name, value))
        for r in owned
        for name, value in r.metrics.items()
        if math.isfinite(value)
    ]
    if not rows:
        return
    w.add("## Latency and measured figures", "")
    collapse = len(rows) > COLLAPSE_AFTER
    w.open_details(f"{len(rows)} figures", collapse)
    w.table(("contract", "metric", "value"), rows)
    w.close_details(collapse)


def _diff_item(w: _Writer, entry: DiffEntry) -> str:
    before = entry.before.value if entry.before else "absent"
    after = entry.after.value if entry.after else "absent"
    return f"- **{entry.tier}** {w.text(entry.name)} ({w.code(entry.id)}): {before} → {after}"


def _diff(w: _Writer, diff: RunDiff) -> None:
    w.add("## Changes since the baseline", "")
    baseline = [f"chatcontract {w.text(diff.baseline_tool_version)}"]
    if diff.baseline_started_at:
        baseline.insert(0, f"started {w.text(diff.baseline_started_at)}")
    w.add("Baseline: " + ", ".join(baseline) + ".", "")
    if diff.spec_changed:
        w.add(
            f"**The spec changed** since the baseline (sha256 "
            f"{w.code(diff.baseline_spec_sha256[:12] or '?')} before).",
            "",
        )
    counts = diff.by_tier()
    rows = (
        (
            _DIFF_TITLES[kind],
            *(str(counts[t][kind]) for t in TIERS),
            str(diff.count(kind)),
        )
        for kind in DIFF_KINDS
    )
    w.table(("change", *TIERS, "all"), rows)
    for kind in DIFF_KINDS:
        entries = diff.entries(kind)
        if not entries:
            continue
        # Still-failing contracts are detailed under Failures already: keep them folded.
        folded = kind == "still_failing" or len(entries) > COLLAPSE_AFTER
        if not folded:
            w.add(f"**{_DIFF_TITLES[kind]}**", "")
        w.open_details(f"{_DIFF_TITLES[kind]} ({len(entries)})", folded)
        w.add(*(_diff_item(w, e) for e in entries), "")
        w.close_details(folded)


def _passed(w: _Writer, owned: Sequence[ContractResult]) -> None:
    passed = [r for r in owned if r.outcome is Outcome.PASSED]
    if not passed:
        return
    w.open_details(f"Passed ({len(passed)})")
    w.add(*(f"- **{r.tier}** {w.text(r.name)} ({w.code(r.id)})" for r in passed), "")
    w.close_details()


def markdown_report(
    report: RunReport,
    diff: RunDiff | None = None,
    *,
    redact: Callable[[str], str] = _identity,
) -> str:
    """The Markdown report of ``report`` (and of ``diff`` against a baseline)."""
    w = _Writer(redact)
    owned = report.owned
    _header(w, report)
    _verdict(w, report)
    _pass_rates(w, owned)
    _missing_endpoints(w, owned)
    _failures(w, owned)
    _inconclusive(w, owned)
    _skipped(w, owned)
    _latency(w, owned)
    if diff is not None:
        _diff(w, diff)
    _passed(w, owned)
    while w.lines and not w.lines[-1]:
        w.lines.pop()
    return "\n".join(w.lines) + "\n"


def write_markdown(
    path: str | Path,
    report: RunReport,
    diff: RunDiff | None = None,
    *,
    redact: Callable[[str], str] = _identity,
) -> Path:
    """Write :func:`markdown_report` to ``path`` (UTF-8), replacing it atomically.

    For ``$GITHUB_STEP_SUMMARY``, which other steps append to, write the string of
    :func:`markdown_report` in append mode instead.
    """
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(markdown_report(report, diff, redact=redact), encoding="utf-8")
    temporary.replace(target)
    return target
