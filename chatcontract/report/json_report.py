"""The versioned JSON report: a run's metadata and results, for machines and later runs.

The layout is ``report.schema.json`` (shipped in the package, JSON Schema
2020-12). ``read_report`` validates a file against it before building
anything, so a truncated or hand-edited report is refused with one line naming
the file and the JSON pointer of the first problem. Writing then reading a
report gives back an equal :class:`RunReport`; the ``summary`` and ``diff``
sections are derived and not read back.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from chatcontract.errors import ConfigError
from chatcontract.report.diff import DIFF_KINDS, DiffEntry, RunDiff
from chatcontract.report.model import (
    ContractResult,
    Finding,
    Outcome,
    RunMeta,
    RunReport,
    RunStatus,
    TranscriptEntry,
)

__all__ = ["SCHEMA_VERSION", "read_report", "report_schema", "report_to_dict", "write_json"]

SCHEMA_VERSION = 1
"""The ``schema_version`` this module writes and the only one it reads."""

_OUTCOMES = tuple(o.value for o in Outcome)


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report (a fresh copy)."""
    schema: dict[str, Any] = orjson.loads(_schema_bytes())
    return schema


@cache
def _schema_bytes() -> bytes:
    return resources.files("chatcontract.report").joinpath("report.schema.json").read_bytes()


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(report_schema())


# --- writing ---------------------------------------------------------------------------------


def _counts(results: tuple[ContractResult, ...]) -> dict[str, int]:
    return {o: sum(1 for r in results if r.outcome == o) for o in _OUTCOMES}


def _summary(report: RunReport) -> dict[str, Any]:
    owned = report.owned
    return {
        "total": len(owned),
        "by_outcome": _counts(owned),
        "by_tier": {t: _counts(tuple(r for r in owned if r.tier == t)) for t in ("P1", "P2")},
    }


def _meta(meta: RunMeta) -> dict[str, Any]:
    return {
        "tool_version": meta.tool_version,
        "spec_source": meta.spec_source,
        "spec_sha256": meta.spec_sha256,
        "spec_title": meta.spec_title,
        "target": meta.target,
        "seed": meta.seed,
        "started_at": meta.started_at,
        "duration": meta.duration,
        "status": meta.status.value,
        "shard": {"index": meta.shard[0], "count": meta.shard[1]} if meta.shard else None,
        "selection": list(meta.selection),
        "faults": list(meta.faults),
        "versions": dict(meta.versions),
        "planned": meta.planned,
    }


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "message": finding.message,
        "location": finding.location,
        "severity": finding.severity,
        "code": finding.code,
        "repro": finding.repro,
        "transcript": [
            {"direction": t.direction, "offset": t.offset, "content": t.content}
            for t in finding.transcript
        ],
    }


def _result(result: ContractResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "category": result.category,
        "name": result.name,
        "tier": result.tier,
        "tier_source": result.tier_source,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "duration": result.duration,
        "operation": result.operation,
        "details": dict(result.details),
        # JSON has no NaN or infinity (orjson would write null): a figure that was
        # never measured is left out rather than written as a lie.
        "metrics": {k: v for k, v in result.metrics.items() if math.isfinite(v)},
        "findings": [_finding(f) for f in result.findings],
    }


def _diff_entry(entry: DiffEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "name": entry.name,
        "category": entry.category,
        "tier": entry.tier,
        "before": entry.before.value if entry.before else None,
        "after": entry.after.value if entry.after else None,
    }


def _diff(diff: RunDiff) -> dict[str, Any]:
    section: dict[str, Any] = {
        "baseline": {
            "started_at": diff.baseline_started_at,
            "spec_sha256": diff.baseline_spec_sha256,
            "tool_version": diff.baseline_tool_version,
        }
    }
    for kind in DIFF_KINDS:
        section[kind] = [_diff_entry(e) for e in diff.entries(kind)]
    section["by_tier"] = diff.by_tier()
    return section


def report_to_dict(report: RunReport, diff: RunDiff | None = None) -> dict[str, Any]:
    """The JSON document of ``report`` (and of ``diff`` against a baseline), as plain data."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "meta": _meta(report.meta),
        "summary": _summary(report),
        "results": [_result(r) for r in report.results],
        "prerequisites": [r.id for r in report.results if r.id in report.prerequisites],
    }
    if diff is not None:
        document["diff"] = _diff(diff)
    return document


def write_json(path: str | Path, report: RunReport, diff: RunDiff | None = None) -> Path:
    """Write :func:`report_to_dict` to ``path`` (UTF-8, indented), replacing it atomically."""
    target = Path(path)
    data = orjson.dumps(report_to_dict(report, diff), option=orjson.OPT_INDENT_2) + b"\n"
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
    return target


# --- reading ---------------------------------------------------------------------------------


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"


def _short(message: str, width: int = 160) -> str:
    line = " ".join(message.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _problem(document: Any) -> tuple[str, str] | None:
    """The pointer and message of the first problem in ``document``, or None."""
    if isinstance(document, dict) and document.get("schema_version") not in (None, SCHEMA_VERSION):
        found = _short(repr(document["schema_version"]))
        return (
            "/schema_version",
            f"schema version {found}; this chatcontract reads {SCHEMA_VERSION}",
        )
    for error in _validator().iter_errors(document):
        return _pointer(list(error.instance_path)), _short(error.message)
    shard = document["meta"]["shard"]
    if shard and shard["index"] > shard["count"]:
        return "/meta/shard/index", f"shard {shard['index']} of only {shard['count']}"
    seen: set[str] = set()
    for index, result in enumerate(document["results"]):
        if result["id"] in seen:
            return f"/results/{index}/id", f"duplicate contract id {result['id']!r}"
        seen.add(result["id"])
    for index, prerequisite in enumerate(document["prerequisites"]):
        if prerequisite not in seen:
            return f"/prerequisites/{index}", f"{prerequisite!r} is not among the results"
    return None


def _read_meta(data: dict[str, Any]) -> RunMeta:
    shard = data["shard"]
    return RunMeta(
        tool_version=data["tool_version"],
        spec_source=data["spec_source"],
        spec_sha256=data["spec_sha256"],
        spec_title=data["spec_title"],
        target=data["target"],
        seed=data["seed"],
        started_at=data["started_at"],
        duration=data["duration"],
        status=RunStatus(data["status"]),
        shard=(shard["index"], shard["count"]) if shard else None,
        selection=tuple(data["selection"]),
        faults=tuple(data["faults"]),
        versions=data["versions"],
        planned=data["planned"],
    )


def _read_finding(data: dict[str, Any]) -> Finding:
    return Finding(
        message=data["message"],
        location=data["location"],
        severity=data["severity"],
        code=data["code"],
        repro=data["repro"],
        transcript=tuple(
            TranscriptEntry(t["direction"], t["offset"], t["content"]) for t in data["transcript"]
        ),
    )


def _read_result(data: dict[str, Any]) -> ContractResult:
    return ContractResult(
        id=data["id"],
        category=data["category"],
        name=data["name"],
        tier=data["tier"],
        tier_source=data["tier_source"],
        outcome=Outcome(data["outcome"]),
        reason=data["reason"],
        duration=data["duration"],
        operation=data["operation"],
        details=data["details"],
        metrics=data["metrics"],
        findings=tuple(_read_finding(f) for f in data["findings"]),
    )


def read_report(path: str | Path) -> RunReport:
    """The :class:`RunReport` stored at ``path`` by :func:`write_json`.

    Raises :class:`ConfigError` with one line, ``FILE: POINTER: PROBLEM``, when the
    file cannot be read, is not JSON or does not match the shipped schema.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the report: {error.strerror or error}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: line {error.lineno}, column {error.colno}: not JSON: {error.msg}"
        ) from None
    problem = _problem(document)
    if problem is not None:
        pointer, message = problem
        raise ConfigError(f"{path}: {pointer}: {message}")
    return RunReport(
        meta=_read_meta(document["meta"]),
        results=tuple(_read_result(r) for r in document["results"]),
        prerequisites=frozenset(document["prerequisites"]),
    )
