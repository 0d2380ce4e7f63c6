"""What a run tells its reporters, in order: started, contract started/finished, finished.

The runner emits these; reporters (console, JUnit, JSON, Markdown, the pytest
plugin) subscribe and never drive the run. Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatcontract.plan import Plan, PlannedContract
from chatcontract.report.model import ContractResult, RunMeta, RunReport

__all__ = [
    "ContractFinished",
    "ContractStarted",
    "Event",
    "Reporter",
    "RunFinished",
    "RunStarted",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    plan: Plan
    meta: RunMeta


@dataclass(frozen=True, slots=True)
class ContractStarted:
    contract: PlannedContract


@dataclass(frozen=True, slots=True)
class ContractFinished:
    result: ContractResult
    """Redacted."""
    prerequisite: bool = False
    """It ran only because a selected contract needed it."""


@dataclass(frozen=True, slots=True)
class RunFinished:
    report: RunReport


Event = RunStarted | ContractStarted | ContractFinished | RunFinished


class Reporter(Protocol):
    """Receives every event of a run; must not raise (a reporter never stops a run)."""

    def handle(self, event: Event) -> None: ...
