"""Combine shard reports (``--shard k/N``) into the report of the whole run.

Each contract is reported once, from the shard that owns it. A prerequisite a
shard ran only to unblock its own contracts is used when no shard owns that id
(e.g. its owner shard was not merged), and stays marked as a prerequisite.
Reports of different specs, or two reports owning one contract, are refused:
a merged report that silently double-counts is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chatcontract.errors import ConfigError
from chatcontract.report.json_report import read_report
from chatcontract.report.model import ContractResult, RunMeta, RunReport, RunStatus

__all__ = ["merge_files", "merge_reports"]

_SEVERITY = (RunStatus.COMPLETE, RunStatus.TIME_BUDGET, RunStatus.INTERRUPTED, RunStatus.ABORTED)
"""Run statuses from best to worst: the merged run is as unfinished as its worst shard."""


def _describe(report: RunReport, index: int) -> str:
    shard = report.meta.shard
    label = f"shard {shard[0]}/{shard[1]}" if shard else "unsharded report"
    return f"report #{index + 1} ({label})"


def _check_compatible(reports: Sequence[RunReport], sources: Sequence[str]) -> None:
    first = reports[0].meta
    for report, source in zip(reports[1:], sources[1:], strict=True):
        if report.meta.spec_sha256 != first.spec_sha256:
            raise ConfigError(
                f"cannot merge {sources[0]} and {source}: they checked different specs "
                f"(sha256 {first.spec_sha256[:12] or '?'} vs {report.meta.spec_sha256[:12] or '?'})"
            )
    counts = {r.meta.shard[1] for r in reports if r.meta.shard}
    if len(counts) > 1:
        shown = ", ".join(f"{s} ({_shard(r)})" for r, s in zip(reports, sources, strict=True))
        raise ConfigError(f"cannot merge shards of different shard counts: {shown}")
    seen: dict[tuple[int, int], str] = {}
    for report, source in zip(reports, sources, strict=True):
        shard = report.meta.shard
        if shard and shard in seen:
            raise ConfigError(f"{seen[shard]} and {source} are both shard {shard[0]}/{shard[1]}")
        if shard:
            seen[shard] = source


def _shard(report: RunReport) -> str:
    shard = report.meta.shard
    return f"{shard[0]}/{shard[1]}" if shard else "unsharded"


def merge_reports(
    reports: Sequence[RunReport],
    *,
    sources: Sequence[str] | None = None,
    order: Sequence[str] = (),
) -> RunReport:
    """One report of every owned result in ``reports``, each exactly once.

    ``sources`` names the reports in errors (their file paths; by default their
    position and shard). Results come in the order of ``order`` (the plan's ids,
    when the caller has the plan), then in order of first appearance across
    ``reports``. Metadata is the first report's, with no shard, the worst status,
    the longest duration, the earliest start and the planned counts summed.
    """
    if not reports:
        raise ConfigError("nothing to merge: no reports given")
    if sources is not None and len(sources) != len(reports):
        raise ValueError(f"{len(sources)} source names for {len(reports)} reports")
    names = list(sources) if sources else [_describe(r, i) for i, r in enumerate(reports)]
    _check_compatible(reports, names)

    owners: dict[str, tuple[ContractResult, str]] = {}
    fallback: dict[str, ContractResult] = {}
    appearance: dict[str, None] = dict.fromkeys(order)
    for report, source in zip(reports, names, strict=True):
        for result in report.results:
            appearance.setdefault(result.id, None)
            if result.id in report.prerequisites:
                fallback.setdefault(result.id, result)
            elif result.id in owners:
                other = owners[result.id][1]
                raise ConfigError(f"{other} and {source} both own contract {result.id!r}")
            else:
                owners[result.id] = (result, source)

    results: list[ContractResult] = []
    for contract_id in appearance:
        if contract_id in owners:
            results.append(owners[contract_id][0])
        elif contract_id in fallback:
            results.append(fallback[contract_id])
    prerequisites = frozenset(fallback) - frozenset(owners)
    return RunReport(
        meta=_merged_meta(reports),
        results=tuple(results),
        prerequisites=prerequisites,
    )


def _merged_meta(reports: Sequence[RunReport]) -> RunMeta:
    metas = [r.meta for r in reports]
    starts = [m.started_at for m in metas if m.started_at]
    return replace(
        metas[0],
        shard=None,
        status=max((m.status for m in metas), key=_SEVERITY.index),
        duration=max(m.duration for m in metas),
        # ISO 8601 UTC strings of one format sort as the instants they name.
        started_at=min(starts) if starts else "",
        selection=tuple(s for s in metas[0].selection if not s.startswith("shard=")),
        planned=sum(m.planned for m in metas),
    )


def merge_files(paths: Sequence[str | Path]) -> RunReport:
    """Read the JSON reports at ``paths`` and merge them; errors name the files."""
    return merge_reports([read_report(p) for p in paths], sources=[str(p) for p in paths])
