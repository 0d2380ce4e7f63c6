"""Building contexts and running categories against real servers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import chatcontract.rest.contracts
import chatcontract.rest.inventory
from chatcontract.auth import credentials_from_env
from chatcontract.context import RunContext, RunSettings
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import run_contracts
from chatcontract.spec import Spec, load_spec

__all__ = ["by_outcome", "context", "run", "spec"]

# Importing them registers the two categories under test.
_REGISTERED = (chatcontract.rest.inventory, chatcontract.rest.contracts)
_SPEC: list[Spec] = []


def spec() -> Spec:
    if not _SPEC:
        _SPEC.append(load_spec())
    return _SPEC[0]


def context(base_url: str, env: Mapping[str, str] | None = None, **settings: Any) -> RunContext:
    """A context with credentials from ``env`` only (default: the reference's defaults).

    These servers are the reference or stand-ins for it, so its test secret is
    the fallback (``target_is_reference``); ``env`` overrides it.
    """
    credentials = credentials_from_env(
        spec(), base_url, env=dict(env or {}), target_is_reference=True
    )
    ctx = RunContext(spec(), base_url, credentials, RunSettings(**settings))
    for secret in credentials.secrets():
        ctx.redactor.add(secret)
    return ctx


def run(ctx: RunContext, *categories: str) -> list[ContractResult]:
    return asyncio.run(run_contracts(ctx, list(categories)))


def by_outcome(results: list[ContractResult], outcome: Outcome) -> set[str]:
    return {r.id for r in results if r.outcome is outcome}
