"""Run-to-run diff: which contracts got fixed, broke, kept failing, appeared or went away.

Contracts are matched by id (stable across runs) over the results each report
*owns*: a prerequisite that ran in a shard only to unblock another contract is
counted from the shard that owns it, never twice. Lists are in plan order of
the current run (``gone``: of the baseline), so two diffs of the same reports
are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chatcontract.errors import ConfigError
from chatcontract.report.model import ContractResult, Outcome, RunReport, Tier

__all__ = ["DIFF_KINDS", "DiffEntry", "RunDiff", "diff_reports", "fail_on_exit"]

DIFF_KINDS = (
    "fixed",
    "new_failures",
    "still_failing",
    "new_contracts",
    "gone",
    "became_inconclusive",
)
"""The lists of a :class:`RunDiff`, in the order reports show them."""

TIERS: tuple[Tier, ...] = ("P1", "P2")


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One contract in a diff list, with its outcome on both sides."""

    id: str
    name: str
    category: str
    tier: Tier
    """The current tier; the baseline's for a contract that is gone."""
    before: Outcome | None
    """``None``: absent in the baseline."""
    after: Outcome | None
    """``None``: absent now."""


@dataclass(frozen=True, slots=True)
class RunDiff:
    """The current run compared with a baseline. A contract may sit in two lists:
    a new contract that fails is in ``new_contracts`` and ``new_failures``."""

    fixed: tuple[DiffEntry, ...] = ()
    """Failed in the baseline, passed now."""
    new_failures: tuple[DiffEntry, ...] = ()
    """Failed now; absent or not failed in the baseline."""
    still_failing: tuple[DiffEntry, ...] = ()
    new_contracts: tuple[DiffEntry, ...] = ()
    """Absent in the baseline, any outcome now."""
    gone: tuple[DiffEntry, ...] = ()
    """In the baseline, absent now."""
    became_inconclusive: tuple[DiffEntry, ...] = ()
    """Passed, failed or skipped in the baseline; inconclusive now."""
    baseline_started_at: str = ""
    baseline_spec_sha256: str = ""
    baseline_tool_version: str = ""
    spec_changed: bool = False
    """The two runs checked different spec documents (their sha256 differ)."""

    def entries(self, kind: str) -> tuple[DiffEntry, ...]:
        """The list named ``kind`` (one of :data:`DIFF_KINDS`)."""
        if kind not in DIFF_KINDS:
            raise ValueError(f"unknown diff list {kind!r}; expected one of {DIFF_KINDS}")
        entries: tuple[DiffEntry, ...] = getattr(self, kind)
        return entries

    def count(self, kind: str, tier: Tier | None = None) -> int:
        """How many entries ``kind`` holds, of ``tier`` or of every tier."""
        return sum(1 for e in self.entries(kind) if tier is None or e.tier == tier)

    def by_tier(self) -> dict[Tier, dict[str, int]]:
        """``{"P1": {"fixed": 1, "new_failures": 0, ...}, "P2": {...}}``."""
        return {tier: {kind: self.count(kind, tier) for kind in DIFF_KINDS} for tier in TIERS}

    @property
    def changed(self) -> bool:
        """Anything but ``still_failing`` is non-empty."""
        return any(self.entries(kind) for kind in DIFF_KINDS if kind != "still_failing")


def _entry(before: ContractResult | None, after: ContractResult | None) -> DiffEntry:
    shown = after or before
    assert shown is not None  # every caller passes at least one side
    return DiffEntry(
        id=shown.id,
        name=shown.name,
        category=shown.category,
        tier=shown.tier,
        before=before.outcome if before else None,
        after=after.outcome if after else None,
    )


def _index(results: Iterable[ContractResult]) -> dict[str, ContractResult]:
    return {r.id: r for r in results}


def diff_reports(baseline: RunReport, current: RunReport) -> RunDiff:
    """Compare the owned results of ``current`` with those of ``baseline``, by contract id."""
    before = _index(baseline.owned)
    after = _index(current.owned)
    lists: dict[str, list[DiffEntry]] = {kind: [] for kind in DIFF_KINDS}
    for result in after.values():
        old = before.get(result.id)
        entry = _entry(old, result)
        was_failed = old is not None and old.outcome is Outcome.FAILED
        if old is None:
            lists["new_contracts"].append(entry)
        if result.outcome is Outcome.FAILED:
            lists["still_failing" if was_failed else "new_failures"].append(entry)
        elif result.outcome is Outcome.PASSED and was_failed:
            lists["fixed"].append(entry)
        elif (
            result.outcome is Outcome.INCONCLUSIVE
            and old is not None
            and old.outcome is not Outcome.INCONCLUSIVE
        ):
            lists["became_inconclusive"].append(entry)
    lists["gone"] = [_entry(old, None) for old in before.values() if old.id not in after]
    return RunDiff(
        fixed=tuple(lists["fixed"]),
        new_failures=tuple(lists["new_failures"]),
        still_failing=tuple(lists["still_failing"]),
        new_contracts=tuple(lists["new_contracts"]),
        gone=tuple(lists["gone"]),
        became_inconclusive=tuple(lists["became_inconclusive"]),
        baseline_started_at=baseline.meta.started_at,
        baseline_spec_sha256=baseline.meta.spec_sha256,
        baseline_tool_version=baseline.meta.tool_version,
        spec_changed=baseline.meta.spec_sha256 != current.meta.spec_sha256,
    )


def fail_on_exit(diff: RunDiff, mode: Literal["new", "any"], current: RunReport) -> bool:
    """Whether the run's exit should say *violated*.

    ``new``: only failures the baseline did not have count (adopting chatcontract
    on an API with known gaps). ``any``: every owned failure counts, as without a
    baseline.
    """
    if mode == "new":
        return bool(diff.new_failures)
    if mode == "any":
        return any(r.outcome is Outcome.FAILED for r in current.owned)
    raise ConfigError(f"invalid fail-on mode {mode!r}: use 'new' or 'any'")
