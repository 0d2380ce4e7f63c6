"""Merging shard reports: every owned result once, conflicts refused by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chatcontract.errors import ConfigError
from chatcontract.report.json_report import report_to_dict, write_json
from chatcontract.report.merge import merge_files, merge_reports
from chatcontract.report.model import Outcome, RunReport, RunStatus
from tests.report import assert_valid, shard, staging_report


def _shards(whole: RunReport) -> list[RunReport]:
    return [shard(whole, k, 3, duration=d) for k, d in ((1, 90.0), (2, 120.5), (3, 60.0))]


def test_three_shards_merge_into_the_unsharded_report() -> None:
    whole = staging_report(duration=120.5)
    shards = _shards(whole)
    assert all(s.owned for s in shards), "the fixture must spread contracts over every shard"
    assert any(s.prerequisites for s in shards), "and borrow a prerequisite across shards"
    merged = merge_reports(shards, order=[r.id for r in whole.results])
    assert merged == whole
    assert_valid(report_to_dict(merged))


def test_without_the_plan_results_come_in_order_of_first_appearance() -> None:
    whole = staging_report()
    shards = _shards(whole)
    merged = merge_reports(shards)
    assert sorted(r.id for r in merged.results) == sorted(r.id for r in whole.results)
    assert len({r.id for r in merged.results}) == len(merged.results)
    expected = list(dict.fromkeys(r.id for s in shards for r in s.results))
    assert [r.id for r in merged.results] == expected
    assert merge_reports(shards) == merged, "deterministic"
    assert merged.prerequisites == frozenset()


def test_order_is_independent_of_the_order_shards_are_given_in() -> None:
    whole = staging_report(duration=120.5)
    order = [r.id for r in whole.results]
    assert merge_reports(_shards(whole)[::-1], order=order) == whole


def test_a_contract_owned_by_two_reports_is_refused_naming_both() -> None:
    whole = staging_report()
    first, second, _ = _shards(whole)
    stolen = replace(second, results=(*second.results, first.owned[0]))
    with pytest.raises(ConfigError) as raised:
        merge_reports([first, stolen], sources=["a/shard-1.json", "b/shard-2.json"])
    message = str(raised.value)
    assert "a/shard-1.json and b/shard-2.json both own contract" in message
    assert repr(first.owned[0].id) in message


def test_default_source_names_say_position_and_shard() -> None:
    whole = staging_report()
    with pytest.raises(ConfigError, match=r"report #1 \(unsharded report\) and report #2"):
        merge_reports([whole, replace(whole, meta=replace(whole.meta, seed=1))])


def test_reports_of_different_specs_are_refused() -> None:
    first, second, _ = _shards(staging_report())
    other = replace(second, meta=replace(second.meta, spec_sha256="cd" * 32))
    with pytest.raises(ConfigError, match="different specs") as raised:
        merge_reports([first, other], sources=["one.json", "two.json"])
    assert "one.json and two.json" in str(raised.value)


def test_the_same_shard_twice_is_refused() -> None:
    first, _, _ = _shards(staging_report())
    empty = replace(first, results=(), prerequisites=frozenset())
    with pytest.raises(ConfigError, match="are both shard 1/3"):
        merge_reports([first, empty])


def test_shards_of_different_counts_are_refused() -> None:
    whole = staging_report()
    with pytest.raises(ConfigError, match="different shard counts"):
        merge_reports([shard(whole, 1, 3, duration=1.0), shard(whole, 2, 2, duration=1.0)])


def test_nothing_to_merge_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="no reports"):
        merge_reports([])


def test_a_prerequisite_is_used_only_when_no_report_owns_it() -> None:
    whole = staging_report()
    first, second, third = _shards(whole)
    borrowed = sorted(first.prerequisites)
    assert borrowed
    assert all(b in {r.id for r in third.owned} for b in borrowed)

    partial = merge_reports([first, second])
    assert partial.prerequisites == frozenset(borrowed)
    assert {r.id for r in partial.owned} == {r.id for r in (*first.owned, *second.owned)}

    owner_says = replace(third.owned[0], outcome=Outcome.PASSED, reason="owner")
    third = replace(
        third, results=tuple(owner_says if r.id == owner_says.id else r for r in third.results)
    )
    merged = merge_reports([first, second, third])
    assert merged.prerequisites == frozenset()
    by_id = {r.id: r for r in merged.results}
    assert by_id[owner_says.id].reason == "owner", "the owner's result wins over the borrowed one"


def test_metadata_takes_the_worst_status_longest_duration_and_earliest_start() -> None:
    first, second, third = _shards(staging_report())
    second = replace(second, meta=replace(second.meta, status=RunStatus.INTERRUPTED))
    third = replace(
        third,
        meta=replace(third.meta, status=RunStatus.TIME_BUDGET, started_at="2025-09-07T13:09:58Z"),
    )
    merged = merge_reports([first, second, third]).meta
    assert merged.status is RunStatus.INTERRUPTED
    assert merged.duration == 120.5
    assert merged.started_at == "2025-09-07T13:09:58Z"
    assert merged.shard is None
    assert merged.selection == ()
    assert merged.planned == sum(len(s.owned) for s in (first, second, third))


def test_aborted_is_worse_than_every_other_status() -> None:
    first, second, _ = _shards(staging_report())
    second = replace(second, meta=replace(second.meta, status=RunStatus.ABORTED))
    first = replace(first, meta=replace(first.meta, status=RunStatus.INTERRUPTED))
    assert merge_reports([first, second]).meta.status is RunStatus.ABORTED


def test_merge_files_reads_reports_and_names_files_in_errors(tmp_path: Path) -> None:
    whole = staging_report(duration=120.5)
    paths = [write_json(tmp_path / f"shard-{i}.json", s) for i, s in enumerate(_shards(whole))]
    assert merge_files(paths).results == merge_reports(_shards(whole)).results
    clash = write_json(tmp_path / "clash.json", replace(_shards(whole)[0], meta=whole.meta))
    with pytest.raises(ConfigError, match=f"{paths[0]} and {clash} both own"):
        merge_files([paths[0], clash])
