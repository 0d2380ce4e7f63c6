"""The run plan: every contract a spec implies, listed before anything is sent.

Each category says which contracts it will judge for a spec (``plan``), each
with a stable unique id, its tier, the operation or channel it is about, the
contracts it needs first (the route must exist, the credentials must work)
and a rough cost. Selection (``--tier``, ``--only``, ``--category``,
``--shard``) happens on the plan, before any request; the runner then hands
each category the ids it must judge.

Pure: no I/O, no checker imports.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from chatcontract.errors import ConfigError
from chatcontract.report.model import Tier

__all__ = ["Plan", "PlannedContract", "Selection", "parse_shard"]


@dataclass(frozen=True, slots=True)
class PlannedContract:
    """One contract the run intends to judge."""

    id: str
    category: str
    name: str
    tier: Tier
    target: str
    """The operation (``POST /api/chat/stream``) or channel (``GET /ws``) it is about."""
    requires: tuple[str, ...] = ()
    """Ids of contracts that must hold first; a dependent of a failed one is *skipped: blocked*."""
    requires_any: tuple[str, ...] = ()
    """Ids of which at least one must hold (some stream route exists); blocked when all fail."""
    uses: tuple[str, ...] = ()
    """Ids whose verdict this one reads (a positive control): they run too, but never block."""
    cost: float = 1.0
    """Rough seconds of work, for progress displays and shard balance reports."""
    tier_source: Literal["spec", "default"] = "spec"


@dataclass(frozen=True, slots=True)
class Selection:
    """How a run narrows its plan. Empty fields select everything."""

    tiers: frozenset[str] = frozenset()
    """``{"P1"}`` for ``--tier p1``; empty: every tier."""
    only: tuple[str, ...] = ()
    """Ids or shell-style globs (``sse/*``, ``*isolation*``)."""
    categories: frozenset[str] = frozenset()
    shard: tuple[int, int] | None = None
    """``(k, n)``, 1-based: keep the contracts whose id hashes to shard k of n."""

    def describe(self) -> tuple[str, ...]:
        parts: list[str] = []
        if self.tiers:
            parts.append("tier=" + ",".join(sorted(self.tiers)))
        parts += [f"only={pattern}" for pattern in self.only]
        if self.categories:
            parts.append("category=" + ",".join(sorted(self.categories)))
        if self.shard:
            parts.append(f"shard={self.shard[0]}/{self.shard[1]}")
        return tuple(parts)

    def keeps(self, contract: PlannedContract) -> bool:
        if self.tiers and contract.tier not in self.tiers:
            return False
        if self.categories and contract.category not in self.categories:
            return False
        if self.only and not any(_matches(contract.id, p) for p in self.only):
            return False
        return self.shard is None or shard_of(contract.id, self.shard[1]) == self.shard[0]


def _matches(contract_id: str, pattern: str) -> bool:
    # fnmatchcase: ids contain "[" rarely, but "/" and spaces often; both are literal.
    return contract_id == pattern or fnmatch.fnmatchcase(contract_id, pattern)


def shard_of(contract_id: str, count: int) -> int:
    """The 1-based shard of ``contract_id`` among ``count``: a hash, stable across machines."""
    digest = hashlib.sha256(contract_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; a :class:`ConfigError` naming the value otherwise."""
    k, sep, n = value.partition("/")
    if sep and k.strip().isdigit() and n.strip().isdigit():
        shard = int(k), int(n)
        if 1 <= shard[0] <= shard[1]:
            return shard
    raise ConfigError(f"invalid --shard {value!r}: use K/N with 1 <= K <= N, e.g. 2/3")


@dataclass(frozen=True, slots=True)
class Plan:
    """Every planned contract of a run, in run order, ids unique."""

    contracts: tuple[PlannedContract, ...]
    selected: frozenset[str] = field(default_factory=frozenset)
    """Ids the selection kept: these are reported."""
    needed: frozenset[str] = field(default_factory=frozenset)
    """Ids that run: the selected ones and, transitively, their prerequisites."""

    @classmethod
    def of(cls, contracts: Iterable[PlannedContract]) -> Plan:
        """All of ``contracts``, selected; duplicate ids are a bug of ours (ValueError)."""
        found = tuple(contracts)
        seen: set[str] = set()
        for contract in found:
            if contract.id in seen:
                raise ValueError(f"two planned contracts share the id {contract.id!r}")
            seen.add(contract.id)
        ids = frozenset(seen)
        return cls(found, ids, ids)

    def by_id(self, contract_id: str) -> PlannedContract | None:
        for contract in self.contracts:
            if contract.id == contract_id:
                return contract
        return None

    def select(self, selection: Selection) -> Plan:
        """Keep what ``selection`` keeps; prerequisites of kept contracts still run."""
        selected = {c.id for c in self.contracts if selection.keeps(c)}
        if selection.only and not selected:
            shown = ", ".join(selection.only)
            raise ConfigError(f"--only {shown} matches no planned contract (see chatcontract plan)")
        index = {c.id: c for c in self.contracts}
        needed = set(selected)
        todo = list(selected)
        while todo:
            contract = index.get(todo.pop())
            found = (contract.requires + contract.requires_any + contract.uses) if contract else ()
            for required in found:
                if required in index and required not in needed:
                    needed.add(required)
                    todo.append(required)
        return Plan(self.contracts, frozenset(selected), frozenset(needed))

    @property
    def runnable(self) -> tuple[PlannedContract, ...]:
        """The contracts that run, in plan order."""
        return tuple(c for c in self.contracts if c.id in self.needed)

    @property
    def prerequisites(self) -> frozenset[str]:
        """Ids that run only because a selected contract needs them."""
        return self.needed - self.selected

    def categories(self) -> Sequence[str]:
        return tuple(dict.fromkeys(c.category for c in self.runnable))
