"""Shared pieces of the WebSocket checker tests: credentials, contexts, short deadlines."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

import chatcontract.ws.contracts  # noqa: F401  (registers the category)
from chatcontract.context import RunContext, RunSettings
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.tokens import mint_token
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.runner import run_contracts
from chatcontract.spec import Spec, WebSocketDeadlines, load_spec
from chatcontract.ws.client import WsTarget

SHORT = WebSocketDeadlines(handshake=2.0, first_frame=2.0, idle=1.5, total=10.0)
"""Deadlines for tests: long enough for a loaded CI core, short enough to keep the suite fast."""


class MintedCredentials:
    """The Credentials protocol over the reference server's own minting."""

    def __init__(
        self, config: ServerConfig, users: tuple[str, ...] = ("alice", "bob"), **claims: Any
    ) -> None:
        self.config = config
        self._users = users
        self._claims = claims
        self.given: list[str] = []

    @property
    def users(self) -> tuple[str, ...]:
        return self._users

    async def token(self, user: str | None = None) -> str:
        token = mint_token(user or self._users[0], self.config, **self._claims)
        self.given.append(token)
        return token

    def secrets(self) -> Iterable[str]:
        return list(self.given)


_SPEC = load_spec()


def spec_with(deadlines: WebSocketDeadlines = SHORT, *, base: Spec = _SPEC, **changes: Any) -> Spec:
    """``base`` (the bundled spec) with the /ws contract's deadlines and other fields replaced."""
    ws = dataclasses.replace(base.websockets[0], deadlines=deadlines, **changes)
    return dataclasses.replace(base, websockets=(ws,))


def make_ctx(
    base_url: str,
    credentials: Any,
    *,
    spec: Spec | None = None,
    **settings: Any,
) -> RunContext:
    defaults: dict[str, Any] = {"seed": 7, "max_examples": 8, "target_is_reference": True}
    return RunContext(
        spec or spec_with(), base_url, credentials, RunSettings(**{**defaults, **settings})
    )


def reference_ctx(server: Any, **settings: Any) -> RunContext:
    settings.setdefault("signing_key", server.config.signing_key)
    return make_ctx(server.url, MintedCredentials(server.config), **settings)


def target_of(ctx: RunContext) -> WsTarget:
    return WsTarget.of(ctx, ctx.spec.websockets[0])


def run_websocket(ctx: RunContext) -> dict[str, ContractResult]:
    results = asyncio.run(run_contracts(ctx, ["websocket"]))
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in results}


def not_passed(results: dict[str, ContractResult]) -> dict[str, str]:
    """What did not pass, shown readably when an assertion fails."""
    return {
        key: f"{r.outcome.value}: {r.reason} {[f.line() for f in r.findings]}"
        for key, r in results.items()
        if r.outcome is not Outcome.PASSED
    }


def messages(result: ContractResult) -> str:
    return "\n".join(f.line() for f in result.findings)
