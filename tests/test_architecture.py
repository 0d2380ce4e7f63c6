"""Import rules from ARCHITECTURE.md, enforced: cores stay pure, layers point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chatcontract"
IO_MODULES = {"asyncio", "httpx", "websockets", "uvicorn", "starlette", "socket", "schemathesis"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from chatcontract import rest` imports chatcontract.rest through __init__.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _files(sub: str) -> list[Path]:
    target = PACKAGE / sub
    return [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))


@pytest.mark.parametrize(
    "core",
    [
        "sequence.py",
        "sse/parser.py",
        "sse/checker.py",
        "ws/frames.py",
        "ws/tokens.py",
        "ws/strategies.py",
        "spec",
        "schemas.py",
        "redact.py",
        "plan.py",
        "events.py",
        "links.py",
        "presentation.py",
        "ws/stalls.py",
        "report/model.py",
        "report/diff.py",
        "report/merge.py",
        "report/markdown.py",
    ],
)
def test_sans_io_cores_import_no_io_library(core: str) -> None:
    """The parsers, checkers and the spec model must run without any I/O stack."""
    for path in _files(core):
        if path.name == "source.py":
            continue  # reading a spec from a URL is the spec layer's one I/O edge
        bad = {m for m in _imports(path) if m.split(".")[0] in IO_MODULES}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "spec",
            ("chatcontract.rest", "chatcontract.sse", "chatcontract.ws", "chatcontract.report"),
        ),
        (
            "report",
            (
                "chatcontract.rest",
                "chatcontract.sse",
                "chatcontract.ws",
                "chatcontract.reference",
                "chatcontract.runner",
                "chatcontract.launch",
                "chatcontract.cli",
            ),
        ),
        # The runner never knows what a category checks; the plan and events are data.
        (
            "runner.py",
            ("chatcontract.rest", "chatcontract.sse", "chatcontract.ws", "chatcontract.reference"),
        ),
        ("plan.py", ("chatcontract.runner", "chatcontract.rest", "chatcontract.sse")),
        ("events.py", ("chatcontract.runner", "chatcontract.rest", "chatcontract.sse")),
        # Checkers never reach into each other's internals.
        ("sse", ("chatcontract.rest", "chatcontract.ws", "chatcontract.reference")),
        ("ws", ("chatcontract.rest", "chatcontract.sse", "chatcontract.reference")),
        ("rest", ("chatcontract.sse", "chatcontract.ws", "chatcontract.reference")),
        # Run-wide services are typed in the context, not owned by a checker.
        ("context.py", ("chatcontract.rest", "chatcontract.sse", "chatcontract.ws")),
        ("budget.py", ("chatcontract.rest", "chatcontract.sse", "chatcontract.ws")),
        (
            "reference",
            ("chatcontract.rest", "chatcontract.sse", "chatcontract.ws", "chatcontract.runner"),
        ),
        ("sequence.py", ("chatcontract.sse", "chatcontract.ws", "chatcontract.rest")),
    ],
)
def test_layers_import_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    for path in _files(layer):
        bad = {m for m in _imports(path) if m.startswith(forbidden)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_no_module_is_a_monolith() -> None:
    """Small modules: the worst file of every anchor project is its biggest."""
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines < 800, f"{path.relative_to(PACKAGE)} has {lines} lines"
