"""The pytest plugin as a team uses it: a real pytest process, real reference server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE = """
from chatcontract.pytest_plugin import assert_contracts_hold

def test_inventory(chatcontract_results):
    assert_contracts_hold(chatcontract_results.category("inventory"))

def test_reference_factory_is_available(reference_factory):
    assert reference_factory("stream-stall").url.startswith("http://127.0.0.1:")
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_team_suite.py").write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


def test_a_clean_reference_passes_the_team_suite(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout


def test_a_missing_route_fails_the_team_suite_by_name(tmp_path: Path) -> None:
    """A broken contract is a pytest failure (ContractViolation is an AssertionError)."""
    proc = _pytest(tmp_path, "--chatcontract-faults", "chat-stream-missing")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "ContractViolation" in proc.stdout
    assert "FAILED POST /api/chat/stream is implemented" in proc.stdout
    assert "POST /api/agents/stream is implemented" not in proc.stdout


ITEMS = """
from chatcontract.pytest_plugin import assert_contract_holds

def test_contract(chatcontract_result):
    assert_contract_holds(chatcontract_result)
"""


def _items(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_items.py").write_text(ITEMS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", *args],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
        check=False,
    )


def test_the_plan_becomes_one_item_per_contract_with_tier_and_category_markers(
    tmp_path: Path,
) -> None:
    from chatcontract.runner import build_plan
    from chatcontract.spec import bundled_spec_path, load_spec

    plan = build_plan(load_spec(bundled_spec_path()))
    p1 = [c.id for c in plan.contracts if c.tier == "P1"]
    proc = _items(tmp_path, "--collect-only", "-q", "-m", "p1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    collected = [line for line in proc.stdout.splitlines() if "::test_contract[" in line]
    assert len(collected) == len(p1)
    assert "test_items.py::test_contract[inventory/GET /health]" in collected
    sse = _items(tmp_path, "--collect-only", "-q", "-m", "sse and p1")
    assert sum("::test_contract[sse/" in line for line in sse.stdout.splitlines()) == len(
        [i for i in p1 if i.startswith("sse/")]
    )


def test_selected_items_run_once_against_the_reference_and_skips_say_why(tmp_path: Path) -> None:
    proc = _items(
        tmp_path, "-q", "-rs", "-k", "inventory or heartbeat", "--chatcontract-max-examples", "2"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "21 passed, 1 skipped" in proc.stdout
    assert "websocket/GET /ws/heartbeat: a heartbeat every 30.0 s" in proc.stdout


def test_a_configuration_problem_is_one_line(tmp_path: Path) -> None:
    proc = _items(tmp_path, "-q", "--chatcontract-spec", str(tmp_path / "missing.yaml"))
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert "During handling" not in output
    assert "chatcontract: " in output
    assert "missing.yaml: /: no such file" in output
