"""Concrete requests for spec operations: examples, parameters and links, without I/O.

The inventory asks each operation one realistic question. Lookups should hit
real objects, so values produced by earlier answers (through the spec's
``links``, e.g. ``createThread`` -> ``thread_id``) win over examples, and
examples win over placeholders. A body is the spec's example, else an
instance generated from its schema (:func:`chatcontract.bodies.body_for`);
an operation without a ``requestBody`` is sent none.

The link and parameter logic lives in :mod:`chatcontract.links`, shared with
the WebSocket checker; its names stay importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatcontract.links import (
    Link,
    Parameter,
    Sample,
    build_sample,
    evaluate_link,
    operation_links,
    operation_parameters,
    request_properties,
)
from chatcontract.spec import Operation

__all__ = [
    "Link",
    "Parameter",
    "Sample",
    "build_sample",
    "evaluate_link",
    "inventory_order",
    "operation_links",
    "operation_parameters",
    "request_properties",
]


def inventory_order(operations: Iterable[Operation], producers: Iterable[str]) -> list[Operation]:
    """Producers first (their answers feed links), deletions last (they destroy objects)."""
    ops = list(operations)
    makers = set(producers)

    def rank(op: Operation) -> int:
        if op.operation_id in makers:
            return 0
        return 2 if op.method.upper() == "DELETE" else 1

    return sorted(ops, key=rank)
