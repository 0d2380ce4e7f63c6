"""The category registry and the loop that runs them.

Categories (inventory, rest, sse, websocket) register themselves with
:func:`category`; the runner never knows what a category checks. Reporters
receive results through ``on_result`` and never drive the run.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace

from chatcontract.context import RunContext
from chatcontract.errors import TargetUnreachable
from chatcontract.report.model import ContractResult, Finding, Outcome, TranscriptEntry

__all__ = ["BUILTIN_CATEGORY_MODULES", "Category", "categories", "category", "run_contracts"]

CategoryRun = Callable[[RunContext], AsyncIterator[ContractResult]]

BUILTIN_CATEGORY_MODULES: tuple[str, ...] = (
    "chatcontract.rest.inventory",
    "chatcontract.rest.contracts",
    "chatcontract.sse.contracts",
    "chatcontract.ws.contracts",
)
"""Modules whose import registers the built-in categories, in run order."""


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    order: int
    description: str
    run: CategoryRun


_REGISTRY: dict[str, Category] = {}


def category(name: str, *, order: int, description: str) -> Callable[[CategoryRun], CategoryRun]:
    """Register an async generator of results as a category of contracts."""

    def register(fn: CategoryRun) -> CategoryRun:
        _REGISTRY[name] = Category(name, order, description, fn)
        return fn

    return register


def categories() -> list[Category]:
    for module in BUILTIN_CATEGORY_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY.values(), key=lambda c: c.order)


def _redact_result(result: ContractResult, redact: Callable[[str], str]) -> ContractResult:
    def finding(f: Finding) -> Finding:
        return replace(
            f,
            message=redact(f.message),
            location=redact(f.location),
            repro=redact(f.repro) if f.repro else f.repro,
            transcript=tuple(
                TranscriptEntry(t.direction, t.offset, redact(t.content)) for t in f.transcript
            ),
        )

    return replace(
        result,
        name=redact(result.name),
        reason=redact(result.reason),
        findings=tuple(finding(f) for f in result.findings),
        details={k: redact(v) for k, v in result.details.items()},
    )


async def run_contracts(
    ctx: RunContext,
    selected: Iterable[str] | None = None,
    on_result: Callable[[ContractResult], None] | None = None,
) -> list[ContractResult]:
    """Run the selected categories (all by default) and return every result, redacted.

    :class:`TargetUnreachable` propagates (the caller exits 3); any other
    exception inside a category becomes an inconclusive result naming the bug,
    so the results gathered so far are never lost.
    """
    wanted = set(selected) if selected is not None else None
    results: list[ContractResult] = []

    def emit(result: ContractResult) -> None:
        if result.tier not in ctx.settings.tiers:
            return
        clean = _redact_result(result, ctx.redactor)
        results.append(clean)
        if on_result is not None:
            on_result(clean)

    for cat in categories():
        if wanted is not None and cat.name not in wanted:
            continue
        started = time.monotonic()
        try:
            async for result in cat.run(ctx):
                emit(result)
        except TargetUnreachable:
            raise
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            emit(
                ContractResult(
                    id=f"{cat.name}/internal-error",
                    category=cat.name,
                    name=f"{cat.name} checks ran to completion",
                    tier="P1",
                    outcome=Outcome.INCONCLUSIVE,
                    reason=(
                        f"chatcontract bug: {type(exc).__name__}: {exc} "
                        f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
                    ),
                    duration=time.monotonic() - started,
                )
            )
    return results
