"""The chat API's contract suite, written with chatcontract's pytest plugin.

    pytest contracts/                                   # against the embedded reference server
    pytest contracts/ -m p1                             # only the P1 contracts
    pytest contracts/ -k "sse or websocket"             # only streams and the WebSocket
    pytest contracts/ --chatcontract-base-url URL       # against a deployment
    pytest contracts/ --chatcontract-faults staging-2025-09   # watch it catch the 2025 report

One pytest item per contract of the spec's plan, named by its contract id and
marked with its tier and category. The collected contracts run once, together;
a contract that does not hold fails by name with its evidence, one that could
not be judged fails as inconclusive, one that does not apply is skipped.
"""

from __future__ import annotations

from chatcontract.pytest_plugin import assert_contract_holds
from chatcontract.report.model import ContractResult


def test_contract(chatcontract_result: ContractResult) -> None:
    assert_contract_holds(chatcontract_result)
