"""The result model every checker produces and every reporter consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

__all__ = [
    "UNREACHED_DETAIL",
    "ContractResult",
    "Finding",
    "Outcome",
    "RunMeta",
    "RunReport",
    "RunStatus",
    "Tier",
    "TranscriptEntry",
]

Tier = Literal["P1", "P2"]


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    """The contract could not be judged (e.g. credentials rejected): never a pass."""
    SKIPPED = "skipped"
    """Not applicable or not requested; says why in ``reason``."""


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One line of evidence: a frame or event sent or received, or a note."""

    direction: Literal["sent", "received", "note"]
    offset: float
    """Seconds since the start of the exchange."""
    content: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the server broke (or weakly kept) a contract."""

    message: str
    location: str = ""
    """Where: ``event #3 (tool_completed) /payload/step_number``, ``frame #2``, a JSON pointer."""
    severity: Literal["failure", "warning"] = "failure"
    repro: str | None = None
    """A command that reproduces it, secrets replaced by placeholders."""
    transcript: tuple[TranscriptEntry, ...] = ()
    code: str = ""
    """A stable finding code for diffs and dashboards: schemathesis' own check name
    (``not_a_server_error``, ``status_code_conformance``) for REST findings, ours
    (``route-missing``, ``event-schema``, ``deadline-idle``) elsewhere."""

    def line(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"


@dataclass(frozen=True, slots=True)
class ContractResult:
    """The verdict on one named contract."""

    id: str
    """Stable across runs, used by the run-to-run diff: ``category/subject/property``."""
    category: str
    name: str
    tier: Literal["P1", "P2"]
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    reason: str = ""
    duration: float = 0.0
    operation: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Measured figures in seconds or counts (``first_event_seconds``, ``elapsed_seconds``)."""
    tier_source: Literal["spec", "default"] = "spec"
    """Whether the tier came from the spec's ``x-tier`` or from the run's default."""

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "failure")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @classmethod
    def judged(
        cls,
        *,
        id: str,
        category: str,
        name: str,
        tier: Literal["P1", "P2"],
        findings: tuple[Finding, ...] | list[Finding] = (),
        duration: float = 0.0,
        operation: str | None = None,
        details: dict[str, str] | None = None,
    ) -> ContractResult:
        """A result whose outcome follows from its findings: failed iff any failure."""
        found = tuple(findings)
        failed = any(f.severity == "failure" for f in found)
        return cls(
            id=id,
            category=category,
            name=name,
            tier=tier,
            outcome=Outcome.FAILED if failed else Outcome.PASSED,
            findings=found,
            duration=duration,
            operation=operation,
            details=details or {},
        )

    def with_duration(self, seconds: float) -> ContractResult:
        return replace(self, duration=seconds)


UNREACHED_DETAIL = "unreached"
"""``details`` key the runner sets (to the run's status) on a contract it never reached."""


class RunStatus(StrEnum):
    """How a run ended; anything but ``complete`` means some planned contracts were not reached."""

    COMPLETE = "complete"
    TIME_BUDGET = "time-budget"
    """``--time-budget`` was reached; unreached contracts are *inconclusive*."""
    REQUEST_BUDGET = "request-budget"
    """``--request-budget`` was spent before every category could start."""
    INTERRUPTED = "interrupted"
    """SIGINT / SIGTERM; unreached contracts are *inconclusive*."""
    ABORTED = "aborted"
    """The target became unreachable mid-run; unreached contracts are *inconclusive*."""


@dataclass(frozen=True, slots=True)
class RunMeta:
    """Where a run's results come from: everything a report needs besides the results."""

    tool_version: str
    spec_source: str
    spec_sha256: str
    target: str
    """The base URL, secrets removed."""
    seed: int = 0
    started_at: str = ""
    """ISO 8601 UTC."""
    duration: float = 0.0
    status: RunStatus = RunStatus.COMPLETE
    spec_title: str = ""
    shard: tuple[int, int] | None = None
    """``(k, n)``: this report covers shard k of n (1-based)."""
    selection: tuple[str, ...] = ()
    """How the plan was narrowed, e.g. ``("tier=P1", "only=sse/*")``."""
    faults: tuple[str, ...] = ()
    """Fault profiles of the embedded reference server, when that was the target."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """Versions of python and of the libraries that judged (schemathesis, hypothesis, ...)."""
    planned: int = 0
    """How many contracts the selection planned (reported ones plus prerequisites excluded)."""


@dataclass(frozen=True, slots=True)
class RunReport:
    """One run: its metadata and every reported result, in plan order."""

    meta: RunMeta
    results: tuple[ContractResult, ...]
    prerequisites: frozenset[str] = frozenset()
    """Ids among ``results`` that ran only because a selected contract needed them
    (another shard owns them); merge and diff count them once, from their owner."""

    @property
    def owned(self) -> tuple[ContractResult, ...]:
        """The results this report is responsible for (prerequisites excluded)."""
        return tuple(r for r in self.results if r.id not in self.prerequisites)
