"""The chat API's contract suite, written with chatcontract's pytest plugin.

    pytest contracts/                                   # against the embedded reference server
    pytest contracts/ --chatcontract-base-url URL       # against a deployment
    pytest contracts/ --chatcontract-faults staging-2025-09   # watch it catch the 2025 report

Each category runs once per session; a test fails with every contract that does
not hold, by name, and never passes a contract it could not judge.
"""

from __future__ import annotations

import pytest

from chatcontract.pytest_plugin import ContractRun, assert_contracts_hold


def test_every_specified_endpoint_is_implemented(chatcontract_results: ContractRun) -> None:
    """A spec'd route answering like an unknown route fails by name (the report's 404s)."""
    assert_contracts_hold(chatcontract_results.category("inventory"))


def test_rest_operations_keep_their_contract(chatcontract_results: ContractRun) -> None:
    """schemathesis' examples, coverage, fuzzing and stateful phases, with real tokens."""
    assert_contracts_hold(chatcontract_results.category("rest"))


def test_streams_keep_their_event_contracts(chatcontract_results: ContractRun) -> None:
    """Per-event schemas, sequences, deadlines, resume and isolation of both SSE routes."""
    assert_contracts_hold(chatcontract_results.category("sse"))


def test_websocket_keeps_its_contract(chatcontract_results: ContractRun) -> None:
    """Handshake auth matrix, frames, flows, hygiene, limits, isolation, fuzzing."""
    assert_contracts_hold(chatcontract_results.category("websocket"))


@pytest.mark.parametrize("category", ["inventory", "rest", "sse", "websocket"])
def test_no_category_is_silently_empty(chatcontract_results: ContractRun, category: str) -> None:
    """A category that judged nothing must not look like a pass."""
    assert chatcontract_results.category(category), f"{category} produced no result"
