"""Run-to-run diff: every category exactly, per tier, over owned results only."""

from __future__ import annotations

import pytest

from chatcontract.errors import ConfigError
from chatcontract.report.diff import DIFF_KINDS, RunDiff, diff_reports, fail_on_exit
from chatcontract.report.json_report import report_to_dict
from chatcontract.report.model import Outcome, RunReport
from tests.report import assert_valid, meta, result, staging_report

F, P, U, S = Outcome.FAILED, Outcome.PASSED, Outcome.INCONCLUSIVE, Outcome.SKIPPED


def _report(*outcomes: tuple[str, Outcome, str], sha: str = "ab" * 32) -> RunReport:
    return RunReport(
        meta(spec_sha256=sha, started_at="2025-09-06T08:00:00Z"),
        tuple(result(i, o, tier=t) for i, o, t in outcomes),
    )


BASELINE = _report(
    ("c/fixed", F, "P1"),
    ("c/still", F, "P1"),
    ("c/broke", P, "P2"),
    ("c/skip-then-fail", S, "P1"),
    ("c/pass-then-unjudged", P, "P1"),
    ("c/fail-then-unjudged", F, "P2"),
    ("c/unjudged-both", U, "P1"),
    ("c/fail-then-skip", F, "P2"),
    ("c/steady", P, "P1"),
    ("c/gone", F, "P2"),
    ("c/gone-too", P, "P1"),
)
CURRENT = _report(
    ("c/new-fail", F, "P1"),
    ("c/fixed", P, "P1"),
    ("c/still", F, "P1"),
    ("c/broke", F, "P2"),
    ("c/skip-then-fail", F, "P1"),
    ("c/pass-then-unjudged", U, "P1"),
    ("c/fail-then-unjudged", U, "P2"),
    ("c/unjudged-both", U, "P1"),
    ("c/fail-then-skip", S, "P2"),
    ("c/steady", P, "P1"),
    ("c/new-pass", P, "P2"),
)


def _ids(diff: RunDiff, kind: str) -> list[str]:
    return [e.id for e in diff.entries(kind)]


def test_every_diff_list_holds_exactly_its_contracts_in_plan_order() -> None:
    diff = diff_reports(BASELINE, CURRENT)
    assert _ids(diff, "fixed") == ["c/fixed"]
    assert _ids(diff, "new_failures") == ["c/new-fail", "c/broke", "c/skip-then-fail"]
    assert _ids(diff, "still_failing") == ["c/still"]
    assert _ids(diff, "new_contracts") == ["c/new-fail", "c/new-pass"]
    assert _ids(diff, "gone") == ["c/gone", "c/gone-too"]
    assert _ids(diff, "became_inconclusive") == ["c/pass-then-unjudged", "c/fail-then-unjudged"]


def test_entries_carry_both_outcomes_and_absence_as_none() -> None:
    diff = diff_reports(BASELINE, CURRENT)
    assert (diff.new_failures[0].before, diff.new_failures[0].after) == (None, F)
    assert (diff.new_failures[1].before, diff.new_failures[1].after) == (P, F)
    assert (diff.gone[0].before, diff.gone[0].after) == (F, None)
    assert diff.gone[0].tier == "P2", "a gone contract keeps its baseline tier"


def test_counts_per_tier_add_up_to_the_lists() -> None:
    diff = diff_reports(BASELINE, CURRENT)
    by_tier = diff.by_tier()
    assert by_tier["P1"] == {
        "fixed": 1,
        "new_failures": 2,
        "still_failing": 1,
        "new_contracts": 1,
        "gone": 1,
        "became_inconclusive": 1,
    }
    assert by_tier["P2"] == {
        "fixed": 0,
        "new_failures": 1,
        "still_failing": 0,
        "new_contracts": 1,
        "gone": 1,
        "became_inconclusive": 1,
    }
    for kind in DIFF_KINDS:
        assert by_tier["P1"][kind] + by_tier["P2"][kind] == diff.count(kind)


def test_a_tier_change_counts_under_the_current_tier() -> None:
    baseline = _report(("c/x", F, "P2"))
    current = _report(("c/x", F, "P1"))
    assert diff_reports(baseline, current).count("still_failing", "P1") == 1


def test_a_run_compared_with_itself_changes_nothing() -> None:
    diff = diff_reports(CURRENT, CURRENT)
    assert not diff.changed
    assert _ids(diff, "still_failing") == ["c/new-fail", "c/still", "c/broke", "c/skip-then-fail"]
    assert not diff.spec_changed


def test_prerequisites_are_not_counted_from_the_shard_that_borrowed_them() -> None:
    """A shard's prerequisite is its owner's to report: no phantom new failure or gone."""
    baseline = _report(("c/a", P, "P1"), ("c/borrowed", P, "P1"))
    current = RunReport(
        CURRENT.meta,
        (result("c/a"), result("c/borrowed", F)),
        prerequisites=frozenset({"c/borrowed"}),
    )
    diff = diff_reports(baseline, current)
    assert _ids(diff, "new_failures") == []
    assert _ids(diff, "gone") == ["c/borrowed"]
    diff_back = diff_reports(current, baseline)
    assert _ids(diff_back, "new_contracts") == ["c/borrowed"]


def test_the_diff_records_its_baseline_and_a_spec_change() -> None:
    diff = diff_reports(BASELINE, _report(("c/fixed", P, "P1"), sha="cd" * 32))
    assert diff.spec_changed
    assert diff.baseline_spec_sha256 == "ab" * 32
    assert diff.baseline_started_at == "2025-09-06T08:00:00Z"
    assert diff.baseline_tool_version == "0.1.0"


def test_fail_on_new_ignores_known_failures_and_any_counts_them() -> None:
    known = diff_reports(CURRENT, CURRENT)
    assert not fail_on_exit(known, "new", CURRENT)
    assert fail_on_exit(known, "any", CURRENT)
    fresh = diff_reports(BASELINE, CURRENT)
    assert fail_on_exit(fresh, "new", CURRENT)


def test_fail_on_any_passes_a_clean_run() -> None:
    clean = _report(("c/a", P, "P1"), ("c/b", U, "P1"), ("c/c", S, "P2"))
    assert not fail_on_exit(diff_reports(BASELINE, clean), "any", clean)
    assert not fail_on_exit(diff_reports(BASELINE, clean), "new", clean)


def test_fail_on_any_ignores_a_borrowed_prerequisite_failure() -> None:
    current = RunReport(meta(), (result("c/a"), result("c/b", F)), frozenset({"c/b"}))
    assert not fail_on_exit(diff_reports(current, current), "any", current)


def test_an_unknown_fail_on_mode_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="fail-on mode 'all'"):
        fail_on_exit(RunDiff(), "all", CURRENT)  # type: ignore[arg-type]


def test_an_unknown_list_name_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown diff list"):
        RunDiff().entries("baseline_started_at")


def test_the_diff_section_of_the_json_report_matches_the_diff() -> None:
    diff = diff_reports(BASELINE, CURRENT)
    document = report_to_dict(CURRENT, diff)
    assert_valid(document)
    section = document["diff"]
    for kind in DIFF_KINDS:
        assert [e["id"] for e in section[kind]] == _ids(diff, kind)
    assert section["by_tier"] == diff.by_tier()
    assert section["gone"][0] == {
        "id": "c/gone",
        "name": "gone",
        "category": "c",
        "tier": "P2",
        "before": "failed",
        "after": None,
    }


def test_staging_against_itself_keeps_every_failure_as_still_failing() -> None:
    report = staging_report()
    assert len(diff_reports(report, report).still_failing) == 4
