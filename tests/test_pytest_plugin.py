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
