"""What the ``inventory`` and ``rest`` categories will judge for a spec, listed without I/O.

The ids here are the ids :mod:`chatcontract.rest.inventory`,
:mod:`chatcontract.rest.contracts` and :mod:`chatcontract.rest.isolation`
report; ``tests/test_plan.py`` runs the categories and compares.
"""

from __future__ import annotations

from chatcontract.context import RunSettings
from chatcontract.plan import PlannedContract
from chatcontract.rest.isolation import isolation_id, isolation_name, isolation_plan
from chatcontract.rest.results import STATEFUL_ID
from chatcontract.rest.samples import operation_links
from chatcontract.runner import planner
from chatcontract.spec import Operation, Spec

__all__ = ["inventory_id", "plan_inventory", "plan_rest", "rest_targets"]

# Rough seconds of work per contract, for progress displays and shard balance.
_PROBE_COST = 0.1
_FUZZ_COST = 2.0
_ISOLATION_COST = 0.5


def inventory_id(op: Operation) -> str:
    """The id of "``op`` is implemented": the prerequisite of every other contract on it."""
    return f"inventory/{op.label}"


def _answers_more_than_a_stream(op: Operation) -> bool:
    """A stream operation whose success may also be a plain body (``stream: false``)."""
    return any(
        code.startswith("2") and any(m != "text/event-stream" for m in media)
        for code, media in op.responses.items()
    )


def rest_targets(spec: Spec) -> tuple[Operation, ...]:
    """What schemathesis checks: every REST operation, and every stream operation that can
    also answer with a plain body (OpenAI-style ``stream: true|false``): its JSON answer and
    its error responses are REST contracts; its stream is the ``sse`` category's."""
    return tuple(
        op
        for op in spec.operations
        if op.kind == "rest" or (op.kind == "stream" and _answers_more_than_a_stream(op))
    )


@planner("inventory")
def plan_inventory(spec: Spec, settings: RunSettings) -> list[PlannedContract]:
    return [
        PlannedContract(
            id=inventory_id(op),
            category="inventory",
            name=f"{op.label} is implemented",
            tier=op.tier,
            target=op.label,
            cost=_PROBE_COST,
            tier_source=op.tier_source,
        )
        for op in spec.operations
    ]


@planner("rest")
def plan_rest(spec: Spec, settings: RunSettings) -> list[PlannedContract]:
    ops = rest_targets(spec)
    planned = [
        PlannedContract(
            id=f"rest/{op.label}",
            category="rest",
            name=f"{op.label} keeps its REST contract",
            tier=op.tier,
            target=op.label,
            requires=(inventory_id(op),),
            cost=_FUZZ_COST,
            tier_source=op.tier_source,
        )
        for op in ops
    ]
    linked = [op for op in spec.rest_operations if operation_links(spec, op)]
    if linked:
        planned.append(
            PlannedContract(
                id=STATEFUL_ID,
                category="rest",
                name="sequences along the spec's links keep the contract",
                tier="P1",
                target="links",
                requires=tuple(inventory_id(op) for op in linked),
                cost=_FUZZ_COST * len(linked),
            )
        )
    for producer in isolation_plan(spec, spec.rest_operations):
        for target in producer.targets:
            op = target.op
            planned.append(
                PlannedContract(
                    id=isolation_id(op),
                    category="rest",
                    name=isolation_name(op),
                    tier=op.tier,
                    target=op.label,
                    requires=(inventory_id(producer.op), inventory_id(op)),
                    cost=_ISOLATION_COST,
                    tier_source=op.tier_source,
                )
            )
    return planned
