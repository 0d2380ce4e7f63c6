"""The console reporter: what a person (or a CI log) sees while a run goes on.

Three modes, chosen by :func:`console_mode`:

* ``live`` (a terminal, ``CI`` unset): a rich progress bar over the plan,
  each failure printed above it the moment it is judged, a table at the end;
* ``plain`` (no terminal, or ``CI`` set): one line per judged contract as it
  finishes, so a CI log shows progress and survives a killed job;
* ``quiet`` (``-q``): only failures, then the summary.

It subscribes to the runner's events and never drives the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from chatcontract.events import ContractFinished, Event, RunFinished, RunStarted
from chatcontract.report.model import (
    UNREACHED_DETAIL,
    ContractResult,
    Outcome,
    RunReport,
    RunStatus,
)

__all__ = ["ConsoleMode", "ConsoleReporter", "console_mode", "first_line", "summary_counts"]

ConsoleMode = Literal["live", "plain", "quiet"]

_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.INCONCLUSIVE: "bold yellow",
    Outcome.SKIPPED: "dim",
}
_MAX_FINDINGS_SHOWN = 3


def console_mode(
    console: Console, *, quiet: bool = False, environ: Mapping[str, str] | None = None
) -> ConsoleMode:
    """``quiet`` when asked, ``plain`` without a terminal or under CI, else ``live``."""
    env = os.environ if environ is None else environ
    if quiet:
        return "quiet"
    if not console.is_terminal or env.get("CI"):
        return "plain"
    return "live"


def _condensed(text: str, limit: int = 400) -> str:
    """One line: the console shows the gist, the reports keep every line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def first_line(result: ContractResult, limit: int = 160) -> str:
    """The first failure, else the reason, else the first warning: one line."""
    if result.failures:
        text = result.failures[0].line()
    elif result.reason:
        text = result.reason
    elif result.warnings:
        text = "warning: " + result.warnings[0].line()
    else:
        text = ""
    return _condensed(text, limit)


def summary_counts(results: Sequence[ContractResult]) -> str:
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    return ", ".join(f"{counts[o]} {o.value}" for o in Outcome)


class ConsoleReporter:
    """Prints progress and the end-of-run summary; the verdict line is the CLI's."""

    def __init__(self, console: Console, mode: ConsoleMode = "plain") -> None:
        self.console = console
        self.mode = mode
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, ContractFinished):
            self._finished(event.result)
        elif isinstance(event, RunFinished):
            self._stop_progress()
            self._summary(event.report)

    def _started(self, event: RunStarted) -> None:
        runnable = len(event.plan.runnable)
        selection = ", ".join(event.meta.selection)
        line = f"{runnable} contracts planned" + (f" ({selection})" if selection else "")
        self.console.print(Text(line))
        if self.mode == "live":
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task("checking", total=runnable)
            self._progress.start()

    def _finished(self, result: ContractResult) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=_condensed(result.name, 60))
        show = self.mode == "plain" or result.outcome is Outcome.FAILED
        if not show:
            return
        outcome = Text(f"{result.outcome.value.upper():<13}", style=_STYLE[result.outcome])
        line = Text.assemble(outcome, f"{result.tier}  {result.name}")
        detail = first_line(result)
        if detail:
            line.append(f"  — {detail}", style="dim" if result.outcome is Outcome.PASSED else "")
        # One contract, one line: a CI log is grepped, not read at 120 columns.
        self.console.print(line, soft_wrap=True)

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _summary(self, report: RunReport) -> None:
        results = report.results
        if self.mode == "live":
            self._table(results)
        for r in (r for r in results if r.outcome is Outcome.FAILED):
            self.console.print(Text(f"\nFAILED {r.name} [{r.id}]", style="bold red"))
            for finding in r.failures[:_MAX_FINDINGS_SHOWN]:
                self.console.print(Text(f"  - {_condensed(finding.line())}"))
                if finding.repro:
                    repro = "\n      ".join(finding.repro.splitlines())
                    self.console.print(Text(f"    reproduce: {repro}", style="cyan"))
            if len(r.failures) > _MAX_FINDINGS_SHOWN:
                more = len(r.failures) - _MAX_FINDINGS_SHOWN
                self.console.print(Text(f"  ... and {more} more"))
        meta = report.meta
        self.console.print(
            Text(f"\n{len(results)} contracts: {summary_counts(results)} in {meta.duration:.1f} s")
        )
        if meta.status is not RunStatus.COMPLETE:
            unreached = sum(
                1 for r in results if r.outcome is Outcome.INCONCLUSIVE and _unreached(r)
            )
            self.console.print(
                Text(
                    f"RUN {meta.status.value.upper()}: {unreached} contract(s) not reached; "
                    "everything judged before is reported",
                    style="bold yellow",
                )
            )
        p1 = [r for r in results if r.outcome is Outcome.INCONCLUSIVE and r.tier == "P1"]
        if p1:
            reasons = sorted({r.reason for r in p1 if r.reason})
            self.console.print(
                Text(
                    f"INCONCLUSIVE: {len(p1)} P1 contract(s) could not be judged; this run "
                    f"proves nothing about them. {reasons[0] if reasons else ''}".rstrip(),
                    style="bold yellow",
                )
            )
        if not results:
            self.console.print(Text("INCONCLUSIVE: no contract was judged", style="bold yellow"))

    def _table(self, results: Sequence[ContractResult]) -> None:
        table = Table(show_lines=False, pad_edge=False, expand=False)
        table.add_column("outcome", no_wrap=True)
        table.add_column("tier", no_wrap=True)
        table.add_column("contract", overflow="fold")
        table.add_column("first finding / reason", overflow="fold")
        for r in results:
            outcome = Text(r.outcome.value.upper(), style=_STYLE[r.outcome])
            table.add_row(outcome, r.tier, Text(r.name), Text(first_line(r)))
        self.console.print(table)


def _unreached(result: ContractResult) -> bool:
    return UNREACHED_DETAIL in result.details
