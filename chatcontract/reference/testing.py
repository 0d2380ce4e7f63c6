"""pytest fixtures for the reference server (the plugin registers them).

``reference_server`` is a clean server for one test; ``reference_factory``
starts servers with fault profiles or other settings, all stopped when the
test ends::

    def test_catches_leak(reference_factory):
        server = reference_factory("cross-user-leak", event_delay_seconds=0.05)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from chatcontract.reference.server import RunningReference, running_reference

__all__ = [
    "ReferenceFactory",
    "reference_factory",
    "reference_server",
]


class ReferenceFactory(Protocol):
    def __call__(self, *faults: str, **overrides: Any) -> RunningReference: ...


@pytest.fixture
def reference_server() -> Iterator[RunningReference]:
    """A clean reference server on 127.0.0.1 (port 0), stopped after the test."""
    with running_reference() as server:
        yield server


@pytest.fixture
def reference_factory() -> Iterator[ReferenceFactory]:
    """Start reference servers with fault profiles and ServerConfig overrides."""
    with contextlib.ExitStack() as stack:

        def start(*faults: str, **overrides: Any) -> RunningReference:
            if faults:
                overrides["faults"] = frozenset(faults) | overrides.get("faults", frozenset())
            return stack.enter_context(running_reference(**overrides))

        yield start
