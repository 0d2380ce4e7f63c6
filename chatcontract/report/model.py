"""The result model every checker produces and every reporter consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

__all__ = ["ContractResult", "Finding", "Outcome", "TranscriptEntry"]


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
