"""The JSON report: valid against its shipped schema, exact round trip, one-line errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from chatcontract.errors import ConfigError
from chatcontract.report.diff import diff_reports
from chatcontract.report.json_report import (
    SCHEMA_VERSION,
    read_report,
    report_schema,
    report_to_dict,
    write_json,
)
from chatcontract.report.merge import merge_reports
from chatcontract.report.model import Finding, Outcome, RunReport, RunStatus, TranscriptEntry
from tests.report import assert_valid, meta, result, shard, staging_report


def _reports() -> dict[str, RunReport]:
    whole = staging_report()
    shards = [shard(whole, k, 3, duration=100.0) for k in (1, 2, 3)]
    return {
        "staging": whole,
        "empty": RunReport(meta(spec_sha256="", started_at=""), ()),
        "interrupted": staging_report(status=RunStatus.INTERRUPTED, planned=40),
        "shard-1": shards[0],
        "merged": merge_reports(shards),
    }


@pytest.mark.parametrize("name", sorted(_reports()))
def test_every_report_matches_the_shipped_schema(name: str) -> None:
    """The schema documents what we write: nothing we produce may fall outside it."""
    assert_valid(report_to_dict(_reports()[name]))


def test_a_report_with_a_diff_matches_the_schema() -> None:
    current = staging_report()
    baseline = RunReport(current.meta, (*current.results[:4], result("rest/gone/contract")))
    document = report_to_dict(current, diff_reports(baseline, current))
    assert_valid(document)
    assert document["diff"]["by_tier"]["P1"]["gone"] == 1
    assert [e["id"] for e in document["diff"]["gone"]] == ["rest/gone/contract"]


def test_the_schema_is_a_valid_2020_12_schema_with_descriptions() -> None:
    schema = report_schema()
    assert jsonschema_rs.meta.is_valid(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name in ("meta", "result", "finding", "diff"):
        assert schema["$defs"][name]["description"]
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("name", sorted(_reports()))
def test_writing_then_reading_gives_the_same_report(name: str, tmp_path: Path) -> None:
    report = _reports()[name]
    assert read_report(write_json(tmp_path / "report.json", report)) == report


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """Unicode, None repros, warnings, transcripts, prerequisites, shard and versions survive."""
    finding = Finding(
        "réponse «vide» \u2028 ok",
        location="event #3 (tool_completed) /payload/step_number",
        severity="warning",
        repro=None,
        transcript=(TranscriptEntry("note", 0.1 + 0.2, "∅"),),
        code="event-schema",
    )
    report = RunReport(
        meta(
            shard=(2, 3),
            selection=("tier=P1", "shard=2/3"),
            faults=("staging-2025-09",),
            status=RunStatus.TIME_BUDGET,
            seed=-7,
        ),
        (
            result("sse/a/b", Outcome.FAILED, findings=(finding,), metrics={"n": 3}),
            result("inventory/x/implemented", tier="P2", tier_source="default"),
        ),
        prerequisites=frozenset({"inventory/x/implemented"}),
    )
    back = read_report(write_json(tmp_path / "r.json", report, diff_reports(report, report)))
    assert back == report
    assert back.results[0].findings[0].transcript[0].offset == 0.1 + 0.2
    assert back.meta.shard == (2, 3)
    assert back.owned == report.owned


def test_summary_counts_owned_results_per_tier_and_outcome() -> None:
    report = shard(staging_report(), 1, 3, duration=1.0)
    summary = report_to_dict(report)["summary"]
    assert summary["total"] == len(report.owned) == 4
    assert summary["by_outcome"] == {"passed": 2, "failed": 1, "inconclusive": 0, "skipped": 1}
    assert summary["by_tier"]["P2"] == {"passed": 1, "failed": 0, "inconclusive": 0, "skipped": 1}


def test_unmeasured_figures_are_left_out_rather_than_written_as_null() -> None:
    report = RunReport(meta(), (result("rest/a/b", metrics={"x": float("nan"), "y": 1.5}),))
    document = report_to_dict(report)
    assert document["results"][0]["metrics"] == {"y": 1.5}
    assert_valid(document)


def _broken(tmp_path: Path, change: Any) -> Path:
    document = report_to_dict(staging_report())
    change(document)
    path = tmp_path / "broken.json"
    path.write_bytes(orjson.dumps(document))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        read_report(path)
    message = str(raised.value)
    assert "\n" not in message, "one line, never a traceback"
    assert message.startswith(f"{path}: ")
    error = raised.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__, "no chained traceback"
    return message


def test_a_truncated_file_is_refused_in_one_line_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "truncated.json"
    path.write_bytes(write_json(tmp_path / "ok.json", staging_report()).read_bytes()[:300])
    message = _error(path)
    assert "line " in message
    assert "not JSON" in message


def test_a_bad_outcome_is_refused_naming_its_pointer(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["results"][2]["outcome"] = "mostly-passed"

    message = _error(_broken(tmp_path, change))
    assert ": /results/2/outcome: " in message


def test_a_missing_field_is_refused_naming_its_parent(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        del document["meta"]["target"]

    message = _error(_broken(tmp_path, change))
    assert ": /meta: " in message
    assert "target" in message


def test_a_pointer_escapes_slashes_in_keys(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["results"][0]["details"]["a/b~c"] = 3

    assert ": /results/0/details/a~1b~0c: " in _error(_broken(tmp_path, change))


def test_another_schema_version_is_refused_by_name(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["schema_version"] = 99

    message = _error(_broken(tmp_path, change))
    assert ": /schema_version: schema version 99; this chatcontract reads 1" in message


def test_duplicate_contract_ids_are_refused(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["results"][3]["id"] = document["results"][1]["id"]

    assert ": /results/3/id: duplicate contract id" in _error(_broken(tmp_path, change))


def test_a_prerequisite_must_be_among_the_results(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["prerequisites"] = ["nowhere/at/all"]

    assert ": /prerequisites/0: 'nowhere/at/all' is not among" in _error(_broken(tmp_path, change))


def test_a_non_object_document_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    assert _error(path).startswith(f"{path}: /: ")


def test_a_missing_file_is_refused_in_one_line(tmp_path: Path) -> None:
    message = _error(tmp_path / "absent.json")
    assert "cannot read" in message


def test_a_huge_bad_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["results"][0]["findings"] = "x" * 5000

    assert len(_error(_broken(tmp_path, change))) < 400


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old")
    write_json(path, staging_report())
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert orjson.loads(path.read_bytes())["schema_version"] == SCHEMA_VERSION
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_results_keep_plan_order_and_outcome_strings() -> None:
    report = staging_report()
    document = report_to_dict(report)
    assert [r["id"] for r in document["results"]] == [r.id for r in report.results]
    assert document["results"][8]["outcome"] == "inconclusive"
    assert document["meta"]["shard"] is None
    shard_meta = report_to_dict(replace(report, meta=meta(shard=(1, 3))))["meta"]
    assert shard_meta["shard"] == {"index": 1, "count": 3}
