"""The plan: every contract the spec implies, listed and selected before any request."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatcontract.errors import ConfigError
from chatcontract.plan import Plan, PlannedContract, Selection, parse_shard, shard_of
from chatcontract.runner import build_plan
from chatcontract.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec(ROOT / "openapi.yaml")
PLAN = build_plan(SPEC)


def test_the_chat_api_plan_lists_every_category_with_unique_ids() -> None:
    ids = [c.id for c in PLAN.contracts]
    assert len(ids) == len(set(ids))
    assert [c.category for c in PLAN.contracts] == sorted(
        (c.category for c in PLAN.contracts),
        key=["inventory", "rest", "sse", "websocket"].index,
    )
    assert "inventory/POST /api/chat/stream" in ids
    assert "sse/POST /api/chat/stream/sequence:agent-run" in ids
    assert "websocket/GET /ws/auth/header/expired" in ids
    assert "rest/stateful-links" in ids


def test_every_contract_on_a_route_needs_the_route() -> None:
    for contract in PLAN.contracts:
        if contract.category in ("rest", "sse", "websocket") and contract.target.startswith(
            ("GET ", "POST ", "PUT ", "DELETE ")
        ):
            needed = contract.requires + contract.requires_any
            assert f"inventory/{contract.target}" in needed, contract.id
    isolation = PLAN.by_id("sse/isolation")
    assert isolation is not None
    assert set(isolation.requires_any) == {
        "inventory/POST /api/chat/stream",
        "inventory/POST /api/agents/stream",
    }


def test_selection_by_tier_glob_and_category_keeps_prerequisites() -> None:
    p1 = PLAN.select(Selection(tiers=frozenset({"P1"})))
    assert p1.selected
    assert all(PLAN.by_id(i).tier == "P1" for i in p1.selected)
    only = PLAN.select(Selection(only=("sse/POST /api/chat/stream/*",)))
    assert only.selected == {
        "sse/POST /api/chat/stream/events",
        "sse/POST /api/chat/stream/sequence:chat-stream",
        "sse/POST /api/chat/stream/sequence:agent-run",
        "sse/POST /api/chat/stream/deadlines",
    }
    assert only.prerequisites == {"inventory/POST /api/chat/stream"}
    assert [c.category for c in only.runnable] == ["inventory"] + ["sse"] * 4
    ws = PLAN.select(Selection(only=("websocket/GET /ws/fuzz",)))
    assert ws.prerequisites == {"inventory/GET /ws", "websocket/GET /ws/auth/positive-control"}
    cats = PLAN.select(Selection(categories=frozenset({"inventory"})))
    assert {c.category for c in cats.runnable} == {"inventory"}


def test_an_only_that_matches_nothing_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="matches no planned contract"):
        PLAN.select(Selection(only=("sse/no-such-*",)))


def test_shards_cover_every_contract_exactly_once() -> None:
    shards = [PLAN.select(Selection(shard=(k, 3))) for k in (1, 2, 3)]
    selected = [i for shard in shards for i in shard.selected]
    assert sorted(selected) == sorted(c.id for c in PLAN.contracts)
    assert all(shard.selected for shard in shards)
    # stable across processes and machines: a hash of the id, not of Python's hash seed
    assert shard_of("inventory/GET /health", 3) == shard_of("inventory/GET /health", 3)
    for shard in shards:
        for contract_id in shard.selected:
            contract = PLAN.by_id(contract_id)
            assert contract is not None
            assert set(contract.requires) <= shard.needed


@pytest.mark.parametrize("value", ["0/3", "4/3", "1", "a/b", "2/0", ""])
def test_bad_shards_are_one_line_usage_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="invalid --shard"):
        parse_shard(value)


def test_duplicate_ids_are_refused() -> None:
    one = PlannedContract("x/y", "x", "y", "P1", "t")
    with pytest.raises(ValueError, match="share the id"):
        Plan.of([one, one])


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return copy.deepcopy(loaded)


def test_two_carriers_of_one_kind_get_distinct_ids() -> None:
    """Two header carriers once shared one id; the plan refuses duplicates now."""
    document = _document()
    auth = document["paths"]["/ws"]["get"]["x-websocket"]["auth"]
    auth["carriers"].append({"in": "header", "name": "X-Api-Token"})
    plan = build_plan(load_spec(document))
    ids = {c.id for c in plan.contracts}
    assert "websocket/GET /ws/auth/header-authorization/expired" in ids
    assert "websocket/GET /ws/auth/header-x-api-token/expired" in ids


def test_names_never_read_none() -> None:
    document = _document()
    ws = document["paths"]["/ws"]["get"]["x-websocket"]
    ws.pop("limits", None)
    ws.pop("heartbeat", None)
    plan = build_plan(load_spec(document))
    assert not [c.name for c in plan.contracts if "None" in c.name]
